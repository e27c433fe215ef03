package match

import (
	"strconv"
	"strings"
)

// splitFuncName splits a compiled function name, as the pclntab and the
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
func splitFuncName(name string) (pkg, sym string) {
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
// the pclntab spells it, unescaped (see splitFuncName): "" for a name
// without a package.
func FuncPackage(name string) string {
	pkg, _ := splitFuncName(name)
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

// osvSymbol returns the source-level function, spelled as OSV entries spell
// symbols, that the compiled symbol sym (the part of a function name after
// its package path) belongs to:
//
//	Parse, Parse[go.shape.int], Parse.func1, Parse.func1.2,
//	Parse.gowrap1, Parse-range1                               Parse
//	(*T).M, T.M, (*T[go.shape.int]).M, T[...].M, (*T).M-fm,
//	(*T).M.func1                                              T.M
//	init.0, init.0.func1                                      init#1
//
// Method wrappers the compiler generates ((*T).M for a value method, T.M-fm
// for a method value) map to the method itself. OSV symbols name the first
// init function of a package "init#1"; the compiler names it init.0.
func osvSymbol(sym string) string {
	parts := splitTop(sym)
	for i, p := range parts {
		parts[i] = bareName(p)
	}
	switch {
	case len(parts) == 0:
		return ""
	case strings.HasPrefix(sym, "("):
		// A method on a pointer receiver, or a wrapper of one.
		if len(parts) == 1 {
			return parts[0]
		}
		return parts[0] + "." + parts[1]
	case len(parts) == 1:
		return parts[0]
	case parts[0] == "init" && isDigits(parts[1]):
		n, err := strconv.Atoi(parts[1])
		if err != nil {
			return "init"
		}
		return "init#" + strconv.Itoa(n+1)
	case isClosure(parts[1]):
		return parts[0]
	}
	return parts[0] + "." + parts[1]
}

// normalizeOSVSymbol turns a symbol as an OSV entry lists it into the form
// osvSymbol returns. The Go database writes "Parse" and "T.M"; tolerate
// "(*T).M" and type parameters ("List[T].Push") as well.
func normalizeOSVSymbol(s string) string {
	parts := splitTop(s)
	for i, p := range parts {
		parts[i] = bareName(p)
	}
	return strings.Join(parts, ".")
}

// splitTop splits s at the dots that are not inside brackets, parentheses,
// braces or quoted strings.
func splitTop(s string) []string {
	var parts []string
	depth := 0
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[', '(', '{':
			depth++
		case ']', ')', '}':
			if depth > 0 {
				depth--
			}
		case '"':
			i = skipQuoted(s, i)
		case '.':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

// skipQuoted returns the index of the quote that closes the string opened
// at s[i], or len(s)-1 when it is not closed.
func skipQuoted(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return len(s) - 1
}

// bareName reduces one component of a compiled name to its identifier:
// "(*List[go.shape.int])" is List, "Push-fm" is Push, "main-range1" is main.
func bareName(p string) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '"':
			i = skipQuoted(p, i)
		case c == '[':
			depth++
		case c == ']':
			if depth > 0 {
				depth--
			}
		case depth > 0:
		case c == '(' || c == ')' || c == '*':
		case c == '-':
			// A compiler suffix: -fm, -rangeN, -tramp.
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// isClosure reports whether a name component is one the compiler gives to
// a function literal or a go/defer wrapper inside the enclosing function:
// func1, gowrap2, deferwrap3, or a bare number for nested literals.
func isClosure(p string) bool {
	for _, prefix := range []string{"func", "gowrap", "deferwrap"} {
		if n, ok := strings.CutPrefix(p, prefix); ok && isDigits(n) {
			return true
		}
	}
	return isDigits(p)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
