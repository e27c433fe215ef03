package match

import "github.com/reach-sca/reach/internal/binfo"

// loc is where a compiled function's code is: Funcs[fn] itself when inl is
// negative, else the inlined copy Funcs[fn].Inlines[inl].
type loc struct {
	fn, inl int
}

// compiled is one compiled function name of the binary, with every place
// its code is: its own function, if it has one, and its inlined copies.
type compiled struct {
	name string
	locs []loc
}

// index maps the binary's functions, and the functions inlined into them,
// from package path and OSV symbol to their compiled forms. It is built
// once per binary so that matching thousands of entries costs a map lookup
// per symbol.
type index struct {
	byName map[string]*compiled
	byPkg  map[string]map[string][]*compiled
}

// newIndex indexes the functions of the packages keep accepts (all packages
// when keep is nil). Leaving out the packages no entry names keeps the index
// small: a large binary has hundreds of thousands of function names and
// inlined copies, of which matching needs a few hundred.
func newIndex(funcs []binfo.Func, keep func(pkg string) bool) *index {
	byName := make(map[string]*compiled)
	idx := &index{byName: byName, byPkg: make(map[string]map[string][]*compiled)}
	add := func(name string, l loc) {
		c := byName[name]
		if c == nil {
			pkg, sym := splitFuncName(name)
			if pkg == "" || (keep != nil && !keep(pkg)) {
				// Assembly trampolines and other names outside any
				// package, and packages no entry names.
				return
			}
			c = &compiled{name: name}
			byName[name] = c
			key := osvSymbol(sym)
			syms := idx.byPkg[pkg]
			if syms == nil {
				syms = make(map[string][]*compiled)
				idx.byPkg[pkg] = syms
			}
			syms[key] = append(syms[key], c)
		}
		c.locs = append(c.locs, l)
	}
	for i := range funcs {
		f := &funcs[i]
		add(f.Name, loc{fn: i, inl: -1})
		for j := range f.Inlines {
			add(f.Inlines[j].Func, loc{fn: i, inl: j})
		}
	}
	return idx
}

// symbol returns the compiled forms of the OSV symbol sym of package pkg.
func (x *index) symbol(pkg, sym string) []*compiled {
	return x.byPkg[pkg][normalizeOSVSymbol(sym)]
}

// pkg returns every compiled function of package pkg, for entries that
// declare a whole package vulnerable.
func (x *index) pkg(pkg string) []*compiled {
	var all []*compiled
	for _, cs := range x.byPkg[pkg] {
		all = append(all, cs...)
	}
	return all
}
