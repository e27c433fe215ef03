package binfo

import (
	"strconv"
	"strings"
)

// SplitFuncName splits a compiled function name, as the pclntab and the
// inline tree spell it, into its package path and the rest (the symbol):
//
//	gopkg.in/yaml%2ev2.Unmarshal                      gopkg.in/yaml.v2  Unmarshal
//	example.com/p.(*List[go.shape.int]).Push          example.com/p     (*List[go.shape.int]).Push
//	p.Map[go.shape.struct { F example.com/x.T }]      p                 Map[go.shape.struct { F example.com/x.T }]
//
// The linker escapes the dots (and a few other bytes) of the last element
// of the package path as %xx, so the package path ends at the first dot
// after its last slash; the slash cannot be one inside type arguments, so
// only the text before the first "[" counts. The package path is returned
// unescaped. A name without a dot has no package: ("", name).
func SplitFuncName(name string) (pkg, sym string) {
	head := name
	if i := strings.IndexByte(head, '['); i >= 0 {
		head = head[:i]
	}
	start := strings.LastIndexByte(head, '/') + 1
	dot := strings.IndexByte(head[start:], '.')
	if dot < 0 || start+dot == 0 {
		return "", name
	}
	dot += start
	return unescapePath(name[:dot]), name[dot+1:]
}

// FuncPackage returns the package path of a compiled function name, as
// the pclntab spells it, unescaped (see SplitFuncName): "" for a name
// without a package.
func FuncPackage(name string) string {
	pkg, _ := SplitFuncName(name)
	return pkg
}

// unescapePath undoes the linker's %xx escapes in a package path. A
// malformed escape is left as it is.
func unescapePath(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			if n, err := strconv.ParseUint(p[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}
