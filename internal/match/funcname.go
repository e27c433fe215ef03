package match

import (
	"strconv"
	"strings"

	"github.com/reach-sca/reach/internal/binfo"
)

// splitFuncName splits a compiled function name into its package path,
// unescaped, and the rest: see binfo.SplitFuncName.
func splitFuncName(name string) (pkg, sym string) { return binfo.SplitFuncName(name) }

// FuncPackage returns the package path of a compiled function name, as
// the pclntab spells it, unescaped: see binfo.FuncPackage.
func FuncPackage(name string) string { return binfo.FuncPackage(name) }

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
