package match

import (
	"strings"
	"testing"
)

func TestSplitFuncName(t *testing.T) {
	tests := []struct {
		name, pkg, sym string
	}{
		{"main.main", "main", "main"},
		{"fmt.Println", "fmt", "Println"},
		{"net/mail.ParseAddress", "net/mail", "ParseAddress"},
		{"gopkg.in/yaml%2ev2.Unmarshal", "gopkg.in/yaml.v2", "Unmarshal"},
		{"gopkg.in/yaml%2ev2.(*decoder).unmarshal", "gopkg.in/yaml.v2", "(*decoder).unmarshal"},
		{"golang.org/x/text/language.Parse", "golang.org/x/text/language", "Parse"},
		{"golang.org/x/text/language.Parse.func1", "golang.org/x/text/language", "Parse.func1"},
		{"example.com/p.(*List[go.shape.int]).Push", "example.com/p", "(*List[go.shape.int]).Push"},
		{"example.com/p.(*List[example.com/x.T]).Push", "example.com/p", "(*List[example.com/x.T]).Push"},
		{"p.Map[go.shape.struct { F example.com/x.T }]", "p", "Map[go.shape.struct { F example.com/x.T }]"},
		{"example.com/a/b.Map[go.shape.int,go.shape.string]", "example.com/a/b", "Map[go.shape.int,go.shape.string]"},
		{"example.com/p.List[go.shape.struct { F fmt.Stringer \"json:\\\"f[\\\"\" }].Len", "example.com/p", "List[go.shape.struct { F fmt.Stringer \"json:\\\"f[\\\"\" }].Len"},
		{"example.com/v2%2ex.T.M", "example.com/v2.x", "T.M"},
		{"example.com/bad%zz.F", "example.com/bad%zz", "F"},
		{"example.com/trail%2.F", "example.com/trail%2", "F"},
		{"_rt0_amd64_linux", "", "_rt0_amd64_linux"},
		{"", "", ""},
		{"type:.eq.[2]interface {}", "type:", "eq.[2]interface {}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkg, sym := splitFuncName(tt.name)
			if pkg != tt.pkg || sym != tt.sym {
				t.Errorf("splitFuncName(%q) = %q, %q; want %q, %q", tt.name, pkg, sym, tt.pkg, tt.sym)
			}
		})
	}
}

func TestOSVSymbol(t *testing.T) {
	tests := []struct {
		sym, want string
	}{
		{"Parse", "Parse"},
		{"Parse.func1", "Parse"},
		{"Parse.func1.2", "Parse"},
		{"Parse.gowrap1", "Parse"},
		{"Parse.deferwrap2", "Parse"},
		{"Parse-range1", "Parse"},
		{"Parse-range1.func2", "Parse"},
		{"Map[go.shape.int,go.shape.string]", "Map"},
		{"Map[...]", "Map"},
		{"Map[go.shape.int].func1", "Map"},
		{"Map[go.shape.struct { F example.com/x.T }]", "Map"},
		{"(*Decoder).Decode", "Decoder.Decode"},
		{"Decoder.Decode", "Decoder.Decode"},
		{"(*Decoder).Decode-fm", "Decoder.Decode"},
		{"Decoder.Decode-fm", "Decoder.Decode"},
		{"(*Decoder).Decode.func1", "Decoder.Decode"},
		{"(*Decoder).Decode.func1.1", "Decoder.Decode"},
		{"Decoder.Decode.func3", "Decoder.Decode"},
		{"(*List[go.shape.int]).Push", "List.Push"},
		{"(*List[...]).Push", "List.Push"},
		{"(*List[int]).Push-fm", "List.Push"},
		{"(*List[go.shape.struct { F fmt.Stringer \"json:\\\"f[\\\"\" }]).Push.func1", "List.Push"},
		{"List[go.shape.struct { F fmt.Stringer \"json:\\\"f.x\\\"\" }].Len", "List.Len"},
		{"(*Map[go.shape.string,go.shape.map[go.shape.int]func(example.com/x.T) (int, error)]).Get", "Map.Get"},
		{"init", "init"},
		{"init.0", "init#1"},
		{"init.2", "init#3"},
		{"init.0.func1", "init#1"},
		{"init.func1", "init"},
		{"(*T)", "T"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.sym, func(t *testing.T) {
			if got := osvSymbol(tt.sym); got != tt.want {
				t.Errorf("osvSymbol(%q) = %q, want %q", tt.sym, got, tt.want)
			}
		})
	}
}

func TestIsGeneratedName(t *testing.T) {
	tests := []struct {
		sym  string
		want bool
	}{
		{"Parse", false},
		{"Parse.func1", true},
		{"Parse.func1.2", true},
		{"Parse.gowrap1", true},
		{"Parse.deferwrap2", true},
		{"Parse-range1", true},
		{"Map[go.shape.int,go.shape.string]", false},
		{"Map[go.shape.int].func1", true},
		{"Map[go.shape.struct { F example.com/x-y.T }]", false},
		{"(*Decoder).Decode", false},
		{"Decoder.Decode", false},
		{"(*Decoder).Decode-fm", true},
		{"Decoder.Decode-fm", true},
		{"(*Decoder).Decode.func1", true},
		{"Decoder.Decode.func3", true},
		{"(*List[go.shape.int]).Push", false},
		{"(*List[int]).Push-fm", true},
		{"(*List[go.shape.struct { F fmt.Stringer \"json:\\\"f.x-y\\\"\" }]).Push", false},
		{"(*List[go.shape.struct { F fmt.Stringer \"json:\\\"f[\\\"\" }]).Push.func1", true},
		{"init", false},
		{"init.0", false},
		{"init.0.func1", true},
		{"init.func1", true},
	}
	for _, tt := range tests {
		t.Run(tt.sym, func(t *testing.T) {
			if got := isGeneratedName(tt.sym); got != tt.want {
				t.Errorf("isGeneratedName(%q) = %v, want %v", tt.sym, got, tt.want)
			}
		})
	}
}

func TestNormalizeOSVSymbol(t *testing.T) {
	for in, want := range map[string]string{
		"Parse":          "Parse",
		"Decoder.Decode": "Decoder.Decode",
		"(*T).M":         "T.M",
		"List[T].Push":   "List.Push",
		"init#1":         "init#1",
	} {
		if got := normalizeOSVSymbol(in); got != want {
			t.Errorf("normalizeOSVSymbol(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSplitFuncName(f *testing.F) {
	for _, s := range []string{
		"gopkg.in/yaml%2ev2.(*decoder).unmarshal",
		"p.Map[go.shape.struct { F example.com/x.T }]",
		"example.com/p.(*List[go.shape.struct { F fmt.Stringer \"json:\\\"f[\\\"\" }]).Push.func1",
		"example.com/p.init.0.func1",
		"main.main-range1",
		"%", "a/%2", "\"", "[",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		pkg, sym := splitFuncName(name)
		if pkg == "" {
			if sym != name {
				t.Fatalf("splitFuncName(%q) = %q, %q: no package but symbol changed", name, pkg, sym)
			}
		} else if !strings.HasSuffix(name, "."+sym) {
			t.Fatalf("splitFuncName(%q) = %q, %q: symbol is not the name's tail", name, pkg, sym)
		}
		key := osvSymbol(sym)
		if strings.ContainsAny(key, "[]()*") {
			// Brackets, parentheses and stars belong to type arguments and
			// receivers, which osvSymbol removes...
			if !strings.ContainsAny(sym, "\"") {
				// ...unless a malformed quote hid them.
				t.Fatalf("osvSymbol(%q) = %q still has type syntax", sym, key)
			}
		}
		// The key of a well-formed symbol is stable.
		if osvSymbol(key) != key && !strings.ContainsAny(sym, "\"-.") {
			t.Fatalf("osvSymbol(%q) = %q, but osvSymbol(%q) = %q", sym, key, key, osvSymbol(key))
		}
	})
}

func TestFuncPackage(t *testing.T) {
	for name, want := range map[string]string{
		"main.main":                                    "main",
		"gopkg.in/yaml%2ev2.Unmarshal":                 "gopkg.in/yaml.v2",
		"example.com/p.(*List[...]).Push":              "example.com/p",
		"p.Map[go.shape.struct { F example.com/x.T }]": "p",
		"runtime.goexit":                               "runtime",
		"go:buildid":                                   "",
		"net/http.(*conn).serve.func1":                 "net/http",
	} {
		if got := FuncPackage(name); got != want {
			t.Errorf("FuncPackage(%q) = %q, want %q", name, got, want)
		}
	}
}
