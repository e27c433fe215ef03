package match

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/binfo"
	"github.com/reach-sca/reach/internal/osv"
)

// fakeSites computes deterministic sites from function entries, and fails
// for functions whose name contains "broken".
type fakeSites struct{}

func (fakeSites) EntrySite(f *binfo.Func) (binfo.Site, error) {
	if strings.Contains(f.Name, "broken") {
		return binfo.Site{}, errors.New("no prologue")
	}
	return binfo.Site{Kind: binfo.SitePushBP, PC: f.Entry + 4, Offset: f.Entry + 4 - 0x400000}, nil
}

func (fakeSites) InlineSites(f *binfo.Func, i int) ([]binfo.Site, error) {
	if strings.Contains(f.Name, "broken") {
		return nil, errors.New("bad inline tree")
	}
	pc := f.Entry + 0x10*uint64(i+1)
	return []binfo.Site{{Kind: binfo.SiteInline, PC: pc, Offset: pc - 0x400000}}, nil
}

// bin builds a synthetic binary: linux/amd64, go1.21.0, the given deps
// ("path@version" or "path@version=>replacement@version", a replacement
// without "@" is a local directory) and functions. A function written
// "caller<inlined1,inlined2" has those calls inlined into it.
func bin(deps []string, funcs ...string) *binfo.Binary {
	b := &binfo.Binary{
		Path:      "/bin/synthetic",
		GoVersion: "go1.21.0",
		GOOS:      "linux",
		GOARCH:    "amd64",
		Main:      binfo.Module{Path: "example.com/app", Version: "(devel)"},
	}
	for _, d := range deps {
		orig, repl, replaced := strings.Cut(d, "=>")
		path, version, _ := strings.Cut(orig, "@")
		m := binfo.Module{Path: path, Version: version}
		if replaced {
			rpath, rversion, _ := strings.Cut(repl, "@")
			m.Replace = &binfo.Module{Path: rpath, Version: rversion}
		}
		b.Deps = append(b.Deps, m)
	}
	for i, spec := range funcs {
		name, inl, _ := strings.Cut(spec, "<")
		f := binfo.Func{Name: name, Entry: 0x401000 + 0x1000*uint64(i)}
		f.End = f.Entry + 0x800
		if inl != "" {
			for _, in := range strings.Split(inl, ",") {
				f.Inlines = append(f.Inlines, binfo.Inline{Func: in, Parent: -1})
			}
		}
		b.Funcs = append(b.Funcs, f)
	}
	return b
}

type imp struct {
	path    string
	symbols []string
	goos    []string
	goarch  []string
}

// entry builds an OSV entry for one module. ranges are "introduced<fixed"
// pairs such as "0<0.3.7" or "1.0.0<" (no fix).
func entry(id, module string, ranges []string, imports ...imp) *osv.Entry {
	a := osv.Affected{Module: osv.Module{Path: module, Ecosystem: osv.Ecosystem}}
	if len(ranges) > 0 {
		r := osv.Range{Type: osv.RangeTypeSemver}
		for _, s := range ranges {
			in, fix, _ := strings.Cut(s, "<")
			r.Events = append(r.Events, osv.RangeEvent{Introduced: in})
			if fix != "" {
				r.Events = append(r.Events, osv.RangeEvent{Fixed: fix})
			}
		}
		a.Ranges = []osv.Range{r}
	}
	if len(imports) > 0 {
		a.EcosystemSpecific = &osv.EcosystemSpecific{}
		for _, i := range imports {
			a.EcosystemSpecific.Packages = append(a.EcosystemSpecific.Packages,
				osv.Package{Path: i.path, Symbols: i.symbols, GOOS: i.goos, GOARCH: i.goarch})
		}
	}
	return &osv.Entry{ID: id, Affected: []osv.Affected{a}}
}

// summary renders a result as one line per finding and one indented line
// per symbol: "ID module@version fixed status" and
// "  pkg Name: target, target".
func summary(r *Result) []string {
	var out []string
	for _, f := range r.Findings {
		whole := ""
		if f.WholeModule {
			whole = " whole-module"
		}
		out = append(out, fmt.Sprintf("%s %s@%s fixed=%s %s%s", f.Entry.ID, f.Module, f.Version, f.FixedVersion, f.Status, whole))
		for _, s := range f.Symbols {
			var ts []string
			for _, t := range s.Funcs {
				ts = append(ts, t.Name)
			}
			scope := ""
			if s.Scope != "" {
				scope = " (" + string(s.Scope) + ")"
			}
			out = append(out, fmt.Sprintf("  %s %q%s: %s", s.Package, s.Name, scope, strings.Join(ts, ", ")))
		}
	}
	for _, u := range r.Unchecked {
		out = append(out, fmt.Sprintf("unchecked %s", u.Module))
	}
	return out
}

const (
	text     = "golang.org/x/text"
	language = "golang.org/x/text/language"
	pkg      = "example.com/lib/p"
)

func TestMatch(t *testing.T) {
	textDeps := []string{text + "@v0.3.5"}
	parseEntry := entry("GO-2021-0113", text, []string{"0<0.3.7"}, imp{path: language, symbols: []string{"MustParse", "Parse"}})
	withdrawn := entry("GO-2000-0001", text, []string{"0<"})
	withdrawn.Withdrawn = &time.Time{}
	two := entry("GO-2000-0002", "golang.org/x/net", []string{"0<0.20.0"}, imp{path: "golang.org/x/net/http2", symbols: []string{"Server.ServeConn"}})
	two.Affected = append(two.Affected, entry("", "stdlib", []string{"0<1.21.5"}, imp{path: "net/http", symbols: []string{"Serve"}}).Affected...)
	sameModule := entry("GO-2000-0003", text, []string{"0<0.3.6"}, imp{path: language, symbols: []string{"Parse"}})
	sameModule.Affected = append(sameModule.Affected, entry("", text, []string{"0.3.0<0.3.8"}, imp{path: "golang.org/x/text/unicode/norm", symbols: []string{"Iter.Next"}}).Affected...)

	tests := []struct {
		name    string
		bin     *binfo.Binary
		entries []*osv.Entry
		want    []string
	}{{
		name:    "affected version, plain function",
		bin:     bin(textDeps, language+".Parse", "main.main"),
		entries: []*osv.Entry{parseEntry},
		want: []string{
			"GO-2021-0113 golang.org/x/text@v0.3.5 fixed=v0.3.7 linked",
			`  golang.org/x/text/language "Parse": golang.org/x/text/language.Parse`,
			"unchecked example.com/app",
		},
	}, {
		name:    "fixed version",
		bin:     bin([]string{text + "@v0.3.7"}, language+".Parse"),
		entries: []*osv.Entry{parseEntry},
		want:    []string{"unchecked example.com/app"},
	}, {
		name:    "module absent",
		bin:     bin(nil, language+".Parse"),
		entries: []*osv.Entry{parseEntry},
		want:    []string{"unchecked example.com/app"},
	}, {
		name:    "withdrawn",
		bin:     bin(textDeps, language+".Parse"),
		entries: []*osv.Entry{withdrawn},
		want:    []string{"unchecked example.com/app"},
	}, {
		name:    "replacement's version is affected",
		bin:     bin([]string{text + "@v0.3.8=>" + text + "@v0.3.5"}, language+".Parse"),
		entries: []*osv.Entry{parseEntry},
		want: []string{
			"GO-2021-0113 golang.org/x/text@v0.3.5 fixed=v0.3.7 linked",
			`  golang.org/x/text/language "Parse": golang.org/x/text/language.Parse`,
			"unchecked example.com/app",
		},
	}, {
		name:    "replacement's version is fixed",
		bin:     bin([]string{text + "@v0.3.5=>example.com/fork@v0.3.9"}, language+".Parse"),
		entries: []*osv.Entry{parseEntry},
		want:    []string{"unchecked example.com/app"},
	}, {
		name:    "replaced by a local directory",
		bin:     bin([]string{text + "@v0.3.5=>../text"}, language+".Parse"),
		entries: []*osv.Entry{parseEntry},
		want:    []string{"unchecked example.com/app", "unchecked golang.org/x/text"},
	}, {
		name: "main module with a version",
		bin: func() *binfo.Binary {
			b := bin(nil, "example.com/app/api.(*Server).Upload")
			b.Main.Version = "v1.2.0"
			return b
		}(),
		entries: []*osv.Entry{entry("GO-2000-0004", "example.com/app", []string{"0<1.2.1"}, imp{path: "example.com/app/api", symbols: []string{"Server.Upload"}})},
		want: []string{
			"GO-2000-0004 example.com/app@v1.2.0 fixed=v1.2.1 linked",
			`  example.com/app/api "Server.Upload": example.com/app/api.(*Server).Upload`,
		},
	}, {
		name: "main package by import path, with Options.MainPackage",
		bin: func() *binfo.Binary {
			b := bin(nil, "main.main", "main.readConfig", "main.init.0", "example.com/app/cmd/tool.helper")
			b.Main.Version = "v1.0.0"
			return b
		}(),
		entries: []*osv.Entry{entry("GO-2000-0012", "example.com/app", []string{"0<"},
			imp{path: "example.com/app/cmd/app", symbols: []string{"init#1", "main", "readConfig"}},
			imp{path: "example.com/app/cmd/tool", symbols: []string{"main"}})},
		want: []string{
			"GO-2000-0012 example.com/app@v1.0.0 fixed= linked",
			`  example.com/app/cmd/app "init#1": main.init.0`,
			`  example.com/app/cmd/app "main": main.main`,
			`  example.com/app/cmd/app "readConfig": main.readConfig`,
		},
	}, {
		name:    "main module (devel) is not checked",
		bin:     bin(nil, "example.com/app/api.(*Server).Upload"),
		entries: []*osv.Entry{entry("GO-2000-0004", "example.com/app", []string{"0<"}, imp{path: "example.com/app/api", symbols: []string{"Server.Upload"}})},
		want:    []string{"unchecked example.com/app"},
	}, {
		name: "stdlib from the Go version",
		bin:  bin(nil, "net/mail.ParseAddress", "net/mail.(*addrParser).parseAddress"),
		entries: []*osv.Entry{entry("GO-2024-2609", "stdlib", []string{"0<1.21.8", "1.22.0-0<1.22.1"},
			imp{path: "net/mail", symbols: []string{"Address.String", "ParseAddress", "addrParser.parseAddress"}})},
		want: []string{
			"GO-2024-2609 stdlib@v1.21.0 fixed=v1.21.8 linked",
			`  net/mail "ParseAddress": net/mail.ParseAddress`,
			`  net/mail "addrParser.parseAddress": net/mail.(*addrParser).parseAddress`,
			"unchecked example.com/app",
		},
	}, {
		name: "stdlib of a fixed Go version",
		bin: func() *binfo.Binary {
			b := bin(nil, "net/mail.ParseAddress")
			b.GoVersion = "go1.22.1 X:boringcrypto"
			return b
		}(),
		entries: []*osv.Entry{entry("GO-2024-2609", "stdlib", []string{"0<1.21.8", "1.22.0-0<1.22.1"}, imp{path: "net/mail", symbols: []string{"ParseAddress"}})},
		want:    []string{"unchecked example.com/app"},
	}, {
		name: "unreadable Go version",
		bin: func() *binfo.Binary {
			b := bin(nil, "net/mail.ParseAddress")
			b.GoVersion = "devel +abc"
			return b
		}(),
		entries: []*osv.Entry{entry("GO-2024-2609", "stdlib", []string{"0<"}, imp{path: "net/mail", symbols: []string{"ParseAddress"}})},
		want:    []string{"unchecked example.com/app", "unchecked stdlib", "unchecked toolchain"},
	}, {
		name: "stdlib: a package with code in the binary is needed",
		bin:  bin(nil, "net/mail.(*Address).String", "net/http.Get"),
		entries: []*osv.Entry{
			entry("GO-2000-0020", "stdlib", []string{"0<1.21.8"}, imp{path: "net/mail", symbols: []string{"ParseAddress"}}),
			entry("GO-2000-0021", "stdlib", []string{"0<1.21.8"}, imp{path: "crypto/tls", symbols: []string{"Conn.Handshake"}}),
			entry("GO-2000-0022", "toolchain", []string{"0<1.21.8"}, imp{path: "cmd/go"}),
			entry("GO-2000-0023", "stdlib", []string{"0<1.21.8"}),
			entry("GO-2000-0024", "golang.org/x/text", []string{"0<"}, imp{path: language, symbols: []string{"Parse"}}),
		},
		want: []string{
			"GO-2000-0020 stdlib@v1.21.0 fixed=v1.21.8 imported",
			// No packages: the whole standard library, which every
			// binary has code of.
			"GO-2000-0023 stdlib@v1.21.0 fixed=v1.21.8 linked whole-module",
			`  stdlib "" (module): net/http.Get, net/mail.(*Address).String`,
			"unchecked example.com/app",
		},
	}, {
		name: "toolchain vulnerabilities of the go command",
		bin:  bin(nil, "cmd/go/internal/work.(*Builder).build"),
		entries: []*osv.Entry{
			entry("GO-2000-0022", "toolchain", []string{"0<1.21.8"}, imp{path: "cmd/go/internal/work", symbols: []string{"Builder.build"}}),
		},
		want: []string{
			"GO-2000-0022 toolchain@v1.21.0 fixed=v1.21.8 linked",
			`  cmd/go/internal/work "Builder.build": cmd/go/internal/work.(*Builder).build`,
			"unchecked example.com/app",
		},
	}, {
		name:    "import for another GOOS does not apply",
		bin:     bin(textDeps, language+".Parse"),
		entries: []*osv.Entry{entry("GO-2021-0113", text, []string{"0<"}, imp{path: language, symbols: []string{"Parse"}, goos: []string{"windows"}})},
		want:    []string{"unchecked example.com/app"},
	}, {
		name:    "import for another GOARCH does not apply",
		bin:     bin(textDeps, language+".Parse"),
		entries: []*osv.Entry{entry("GO-2021-0113", text, []string{"0<"}, imp{path: language, symbols: []string{"Parse"}, goarch: []string{"arm64", "386"}})},
		want:    []string{"unchecked example.com/app"},
	}, {
		name: "only the imports for this platform count",
		bin:  bin(textDeps, language+".Parse", "golang.org/x/text/cases.Fold"),
		entries: []*osv.Entry{entry("GO-2021-0113", text, []string{"0<"},
			imp{path: language, symbols: []string{"Parse"}, goos: []string{"linux", "darwin"}, goarch: []string{"amd64"}},
			imp{path: "golang.org/x/text/cases", symbols: []string{"Fold"}, goos: []string{"windows"}})},
		want: []string{
			"GO-2021-0113 golang.org/x/text@v0.3.5 fixed= linked",
			`  golang.org/x/text/language "Parse": golang.org/x/text/language.Parse`,
			"unchecked example.com/app",
		},
	}, {
		name:    "imported when no vulnerable symbol is in the binary",
		bin:     bin(textDeps, language+".MatchStrings", language+".ParseX", language+".(*Tag).Parse", "main.main"),
		entries: []*osv.Entry{parseEntry},
		want: []string{
			"GO-2021-0113 golang.org/x/text@v0.3.5 fixed=v0.3.7 imported",
			"unchecked example.com/app",
		},
	}, {
		// No symbol data: every package of the module is vulnerable. The
		// finding is linked by any code of the module; its targets are the
		// entry points: exported functions and methods (of unexported
		// types too), closures and method values; not init functions nor
		// unexported functions.
		name: "entry without packages is the whole module",
		bin: bin(textDeps, language+".Parse", language+".parse", language+".init", language+".init.0",
			language+".init.0.func1", "golang.org/x/text/internal/tag.(*index).Elem", "golang.org/x/text/internal/tag.index.next",
			language+".(*matcher).getBest-fm", language+".glob..func1", "golang.org/x/textual.Other"),
		entries: []*osv.Entry{entry("GO-2000-0005", text, []string{"0<0.4.0"})},
		want: []string{
			"GO-2000-0005 golang.org/x/text@v0.3.5 fixed=v0.4.0 linked whole-module",
			`  golang.org/x/text "" (module): golang.org/x/text/internal/tag.(*index).Elem, golang.org/x/text/language.(*matcher).getBest-fm, ` +
				"golang.org/x/text/language.Parse, golang.org/x/text/language.glob..func1, golang.org/x/text/language.init.0.func1",
			"unchecked example.com/app",
		},
	}, {
		name:    "whole module linked by its initialization alone, nothing to probe",
		bin:     bin(textDeps, language+".init", "main.main"),
		entries: []*osv.Entry{entry("GO-2000-0005", text, []string{"0<0.4.0"})},
		want: []string{
			"GO-2000-0005 golang.org/x/text@v0.3.5 fixed=v0.4.0 linked whole-module",
			`  golang.org/x/text "" (module): `,
			"unchecked example.com/app",
		},
	}, {
		name: "whole module without code in the binary is imported",
		// The code of a nested module is its own, not its parent's; a
		// path that only starts with the module's is another module.
		bin: bin([]string{"example.com/lib@v1.0.0", "example.com/lib/sub@v1.0.0", "example.com/libx@v1.0.0"},
			"example.com/lib/sub.F", "example.com/lib/sub/deep.G", "example.com/libx.H", "main.main"),
		entries: []*osv.Entry{entry("GO-2000-0025", "example.com/lib", []string{"0<1.1.0"})},
		want: []string{
			"GO-2000-0025 example.com/lib@v1.0.0 fixed=v1.1.0 imported whole-module",
			"unchecked example.com/app",
		},
	}, {
		name: "whole module: nested module's code belongs to it",
		bin: bin([]string{"example.com/lib@v1.0.0", "example.com/lib/sub@v1.0.0"},
			"example.com/lib/sub.F", "example.com/lib/sub/deep.G", "example.com/lib.H", "main.main"),
		entries: []*osv.Entry{entry("GO-2000-0026", "example.com/lib/sub", []string{"0<1.1.0"})},
		want: []string{
			"GO-2000-0026 example.com/lib/sub@v1.0.0 fixed=v1.1.0 linked whole-module",
			`  example.com/lib/sub "" (module): example.com/lib/sub.F, example.com/lib/sub/deep.G`,
			"unchecked example.com/app",
		},
	}, {
		name: "whole module and a symbol of another block: both, by scope",
		bin: bin([]string{"example.com/lib@v1.0.0"},
			"example.com/lib.F", "example.com/lib.G", "main.main"),
		entries: []*osv.Entry{func() *osv.Entry {
			e := entry("GO-2000-0027", "example.com/lib", []string{"0<1.1.0"}, imp{path: "example.com/lib", symbols: []string{"F"}})
			e.Affected = append(e.Affected, entry("", "example.com/lib", []string{"0<1.0.1"}).Affected...)
			e.Affected = append(e.Affected, entry("", "example.com/lib", []string{"0<1.0.1"}, imp{path: "example.com/lib"}).Affected...)
			return e
		}()},
		want: []string{
			"GO-2000-0027 example.com/lib@v1.0.0 fixed=v1.1.0 linked whole-module",
			`  example.com/lib "" (module): example.com/lib.F, example.com/lib.G`,
			`  example.com/lib "" (package): example.com/lib.F, example.com/lib.G`,
			`  example.com/lib "F": example.com/lib.F`,
			"unchecked example.com/app",
		},
	}, {
		name:    "no ranges affect every version, without a fix",
		bin:     bin(textDeps, language+".Parse"),
		entries: []*osv.Entry{entry("GO-2000-0006", text, nil, imp{path: language, symbols: []string{"Parse"}})},
		want: []string{
			"GO-2000-0006 golang.org/x/text@v0.3.5 fixed= linked",
			`  golang.org/x/text/language "Parse": golang.org/x/text/language.Parse`,
			"unchecked example.com/app",
		},
	}, {
		name: "closures, generic instantiations and inlined copies belong to the function",
		bin: bin([]string{"example.com/lib@v1.0.0"},
			pkg+".Parse.func1",
			pkg+".Parse.func1.2",
			pkg+".Parse[go.shape.int]",
			pkg+".ParseX",
			pkg+".(*T).Parse",
			"example.com/lib/p2.Parse",
			"main.main<"+pkg+".Parse,"+pkg+".ParseX",
			"main.run<"+pkg+".Parse.func1",
		),
		entries: []*osv.Entry{entry("GO-2000-0007", "example.com/lib", []string{"0<"}, imp{path: pkg, symbols: []string{"Parse"}})},
		want: []string{
			"GO-2000-0007 example.com/lib@v1.0.0 fixed= linked",
			`  example.com/lib/p "Parse": example.com/lib/p.Parse, example.com/lib/p.Parse.func1, example.com/lib/p.Parse.func1.2, example.com/lib/p.Parse[go.shape.int]`,
			"unchecked example.com/app",
		},
	}, {
		name: "methods on pointer and value receivers, wrappers and generic types",
		bin: bin([]string{"example.com/lib@v1.0.0"},
			pkg+".(*Parser).Parse",
			pkg+".Parser.Parse",
			pkg+".(*Parser).Parse-fm",
			pkg+".(*Parser).Parse.func1",
			pkg+".(*Parser[go.shape.struct { F example.com/x.T }]).Parse",
			pkg+".Parser[go.shape.int].Parse",
			pkg+".Parser.ParseAll",
			pkg+".(*Parser).ParseAll",
			pkg+".Parse",
			pkg+".(*Other).Parse",
			"example.com/lib/p2.(*Parser).Parse",
			"main.main<"+pkg+".(*Parser).Parse",
		),
		entries: []*osv.Entry{entry("GO-2000-0008", "example.com/lib", []string{"0<"}, imp{path: pkg, symbols: []string{"Parser.Parse"}})},
		want: []string{
			"GO-2000-0008 example.com/lib@v1.0.0 fixed= linked",
			`  example.com/lib/p "Parser.Parse": example.com/lib/p.(*Parser).Parse, example.com/lib/p.(*Parser).Parse-fm, example.com/lib/p.(*Parser).Parse.func1, example.com/lib/p.(*Parser[go.shape.struct { F example.com/x.T }]).Parse, example.com/lib/p.Parser.Parse, example.com/lib/p.Parser[go.shape.int].Parse`,
			"unchecked example.com/app",
		},
	}, {
		name: "a symbol found only inlined is linked",
		bin: bin(textDeps,
			"main.main<"+language+".Parse",
		),
		entries: []*osv.Entry{parseEntry},
		want: []string{
			"GO-2021-0113 golang.org/x/text@v0.3.5 fixed=v0.3.7 linked",
			`  golang.org/x/text/language "Parse": golang.org/x/text/language.Parse`,
			"unchecked example.com/app",
		},
	}, {
		name: "escaped package path",
		bin:  bin([]string{"gopkg.in/yaml.v2@v2.2.2"}, "gopkg.in/yaml%2ev2.Unmarshal", "gopkg.in/yaml%2ev2.(*decoder).unmarshal"),
		entries: []*osv.Entry{entry("GO-2000-0009", "gopkg.in/yaml.v2", []string{"0<2.2.8"},
			imp{path: "gopkg.in/yaml.v2", symbols: []string{"Unmarshal", "decoder.unmarshal"}})},
		want: []string{
			"GO-2000-0009 gopkg.in/yaml.v2@v2.2.2 fixed=v2.2.8 linked",
			`  gopkg.in/yaml.v2 "Unmarshal": gopkg.in/yaml%2ev2.Unmarshal`,
			`  gopkg.in/yaml.v2 "decoder.unmarshal": gopkg.in/yaml%2ev2.(*decoder).unmarshal`,
			"unchecked example.com/app",
		},
	}, {
		// Its targets are the package's entry points, as for a whole
		// module; its initialization and unexported functions link it.
		name: "a package without symbols is vulnerable as a whole",
		bin: bin([]string{"example.com/lib@v1.0.0"},
			pkg+".A", pkg+".(*T).B", "example.com/lib/p/sub.C", "example.com/lib/pp.D", "main.main<"+pkg+".E", pkg+".init", pkg+".helper"),
		entries: []*osv.Entry{
			entry("GO-2000-0010", "example.com/lib", []string{"0<"}, imp{path: pkg}),
			entry("GO-2000-0028", "example.com/lib", []string{"0<"}, imp{path: "example.com/lib/q"}, imp{path: "example.com/lib/p/sub"}),
		},
		want: []string{
			"GO-2000-0010 example.com/lib@v1.0.0 fixed= linked",
			`  example.com/lib/p "" (package): example.com/lib/p.(*T).B, example.com/lib/p.A, example.com/lib/p.E`,
			"GO-2000-0028 example.com/lib@v1.0.0 fixed= linked",
			`  example.com/lib/p/sub "" (package): example.com/lib/p/sub.C`,
			"unchecked example.com/app",
		},
	}, {
		name: "findings sorted by ID, symbols by package and name",
		bin:  bin(textDeps, language+".Parse", language+".MustParse", "golang.org/x/text/cases.Fold"),
		entries: []*osv.Entry{
			entry("GO-2022-0002", text, []string{"0<"}, imp{path: language, symbols: []string{"Parse", "MustParse"}}, imp{path: "golang.org/x/text/cases", symbols: []string{"Fold"}}),
			entry("GO-2022-0001", text, []string{"0<"}, imp{path: language, symbols: []string{"Parse"}}),
		},
		want: []string{
			"GO-2022-0001 golang.org/x/text@v0.3.5 fixed= linked",
			`  golang.org/x/text/language "Parse": golang.org/x/text/language.Parse`,
			"GO-2022-0002 golang.org/x/text@v0.3.5 fixed= linked",
			`  golang.org/x/text/cases "Fold": golang.org/x/text/cases.Fold`,
			`  golang.org/x/text/language "MustParse": golang.org/x/text/language.MustParse`,
			`  golang.org/x/text/language "Parse": golang.org/x/text/language.Parse`,
			"unchecked example.com/app",
		},
	}, {
		name:    "entry for two modules names the linked one",
		bin:     bin([]string{"golang.org/x/net@v0.10.0"}, "net/http.Serve", "main.main"),
		entries: []*osv.Entry{two},
		want: []string{
			"GO-2000-0002 stdlib@v1.21.0 fixed=v1.21.5 linked",
			`  net/http "Serve": net/http.Serve`,
			"unchecked example.com/app",
		},
	}, {
		name:    "entry for two modules, both linked, lists all symbols",
		bin:     bin([]string{"golang.org/x/net@v0.10.0"}, "net/http.Serve", "golang.org/x/net/http2.(*Server).ServeConn"),
		entries: []*osv.Entry{two},
		want: []string{
			"GO-2000-0002 golang.org/x/net@v0.10.0 fixed=v0.20.0 linked",
			`  golang.org/x/net/http2 "Server.ServeConn": golang.org/x/net/http2.(*Server).ServeConn`,
			`  net/http "Serve": net/http.Serve`,
			"unchecked example.com/app",
		},
	}, {
		name:    "blocks of one module: symbols only from affecting blocks, fix above all",
		bin:     bin([]string{text + "@v0.3.6"}, language+".Parse", "golang.org/x/text/unicode/norm.(*Iter).Next"),
		entries: []*osv.Entry{sameModule},
		want: []string{
			"GO-2000-0003 golang.org/x/text@v0.3.6 fixed=v0.3.8 linked",
			`  golang.org/x/text/unicode/norm "Iter.Next": golang.org/x/text/unicode/norm.(*Iter).Next`,
			"unchecked example.com/app",
		},
	}, {
		name:    "nil entries are ignored",
		bin:     bin(textDeps, language+".Parse"),
		entries: []*osv.Entry{nil, {ID: "GO-2000-0011"}},
		want:    []string{"unchecked example.com/app"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Match(context.Background(), tt.bin, tt.entries, &Options{Sites: fakeSites{}, MainPackage: "example.com/app/cmd/app"})
			if err != nil {
				t.Fatal(err)
			}
			got := summary(res)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
}

func TestMatchSites(t *testing.T) {
	b := bin([]string{"example.com/lib@v1.0.0"},
		pkg+".(*Parser).Parse",                          // 0x401000: own code
		"main.main<"+pkg+".(*Parser).Parse,fmt.Println", // 0x402000: inline 0
		"main.run<fmt.Sprint,"+pkg+".Parser.Parse",      // 0x403000: inline 1
		"main.broken<"+pkg+".(*Parser).Parse",           // 0x404000: sites fail
	)
	e := entry("GO-2000-0008", "example.com/lib", []string{"0<"}, imp{path: pkg, symbols: []string{"Parser.Parse"}})
	res, err := Match(context.Background(), b, []*osv.Entry{e}, &Options{Sites: fakeSites{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 || len(res.Findings[0].Symbols) != 1 {
		t.Fatalf("got %v, want one finding with one symbol", summary(res))
	}
	var got []string
	for _, tg := range res.Findings[0].Symbols[0].Funcs {
		for _, s := range tg.Sites {
			got = append(got, fmt.Sprintf("%s %s %#x %#x in %s", tg.Name, s.Kind, s.PC, s.Offset, s.In))
		}
		if tg.SiteErr != nil {
			got = append(got, fmt.Sprintf("%s error: %v", tg.Name, tg.SiteErr))
		}
	}
	want := []string{
		"example.com/lib/p.(*Parser).Parse push-bp 0x401004 0x1004 in example.com/lib/p.(*Parser).Parse",
		"example.com/lib/p.(*Parser).Parse inline 0x402010 0x2010 in main.main",
		"example.com/lib/p.(*Parser).Parse error: sites of example.com/lib/p.(*Parser).Parse inlined into main.broken: bad inline tree",
		"example.com/lib/p.Parser.Parse inline 0x403020 0x3020 in main.run",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}

	res, err = Match(context.Background(), b, []*osv.Entry{e}, &Options{SkipSites: true})
	if err != nil {
		t.Fatal(err)
	}
	if ts := res.Findings[0].Symbols[0].Funcs; len(ts[0].Sites) != 0 || ts[0].SiteErr != nil {
		t.Errorf("SkipSites: got sites %v, error %v", ts[0].Sites, ts[0].SiteErr)
	}
}

// The same compiled function named by two entries gets the same sites in
// both, computed once.
func TestMatchSitesShared(t *testing.T) {
	b := bin([]string{text + "@v0.3.5"}, language+".Parse", "main.main<"+language+".Parse")
	e1 := entry("GO-2000-0001", text, []string{"0<"}, imp{path: language, symbols: []string{"Parse"}})
	e2 := entry("GO-2000-0002", text, []string{"0<"}, imp{path: language, symbols: []string{"Parse"}})
	cf := &countingSites{}
	res, err := Match(context.Background(), b, []*osv.Entry{e1, e2}, &Options{Sites: cf})
	if err != nil {
		t.Fatal(err)
	}
	if cf.entry != 1 || cf.inline != 1 {
		t.Errorf("computed %d entry and %d inline sites, want 1 and 1", cf.entry, cf.inline)
	}
	for _, f := range res.Findings {
		if n := len(f.Symbols[0].Funcs[0].Sites); n != 2 {
			t.Errorf("%s: %d sites, want 2", f.Entry.ID, n)
		}
	}
}

type countingSites struct {
	fakeSites
	entry, inline int
}

func (c *countingSites) EntrySite(f *binfo.Func) (binfo.Site, error) {
	c.entry++
	return c.fakeSites.EntrySite(f)
}

func (c *countingSites) InlineSites(f *binfo.Func, i int) ([]binfo.Site, error) {
	c.inline++
	return c.fakeSites.InlineSites(f, i)
}

func TestMatchErrors(t *testing.T) {
	if _, err := Match(context.Background(), nil, nil, nil); !errors.Is(err, ErrNoBinary) {
		t.Errorf("nil binary: got %v, want ErrNoBinary", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Match(ctx, bin(nil), []*osv.Entry{entry("GO-1", text, nil)}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v, want context.Canceled", err)
	}
}

func TestMatchDoesNotModifyEntries(t *testing.T) {
	e := entry("GO-2021-0113", text, []string{"0<0.3.7"}, imp{path: language, symbols: []string{"Parse"}, goos: []string{"linux"}})
	e.Affected[0].Ranges[0].Events = []osv.RangeEvent{{Fixed: "0.3.7"}, {Introduced: "0"}}
	before := fmt.Sprintf("%+v", *e.Affected[0].EcosystemSpecific)
	_, err := Match(context.Background(), bin([]string{text + "@v0.3.5"}, language+".Parse"), []*osv.Entry{e}, &Options{SkipSites: true})
	if err != nil {
		t.Fatal(err)
	}
	if e.Affected[0].Ranges[0].Events[0].Fixed != "0.3.7" || fmt.Sprintf("%+v", *e.Affected[0].EcosystemSpecific) != before {
		t.Errorf("Match modified its entry: %+v", e.Affected[0])
	}
}

func TestMatchMainPackageNeedsOption(t *testing.T) {
	b := bin(nil, "main.main", "main.readConfig")
	b.Main.Version = "v1.0.0"
	e := entry("GO-2000-0012", "example.com/app", []string{"0<"}, imp{path: "example.com/app/cmd/app", symbols: []string{"main", "readConfig"}})
	res, err := Match(context.Background(), b, []*osv.Entry{e}, &Options{SkipSites: true})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(summary(res), "\n")
	if want := "GO-2000-0012 example.com/app@v1.0.0 fixed= imported"; got != want {
		t.Errorf("without MainPackage: got\n%s\nwant\n%s", got, want)
	}
}

// TestMatchSitesWholeModule checks the sites of a whole-module symbol: the
// entry of each entry point, and its copies inlined into code outside the
// module only; a symbol-level entry for the same function keeps every copy.
func TestMatchSitesWholeModule(t *testing.T) {
	b := bin([]string{"example.com/lib@v1.0.0"},
		pkg+".Exported",                          // 0x401000: own code
		pkg+".caller<"+pkg+".Exported",           // 0x402000: a copy inside the module
		"main.main<"+pkg+".Exported",             // 0x403000: a copy in outside code
		"main.run<"+pkg+".Wrap,"+pkg+".Exported", // 0x404000: Exported inlined into the copy of Wrap
	)
	b.Funcs[3].Inlines[1].Parent = 0
	whole := entry("GO-2000-0030", "example.com/lib", []string{"0<"})
	named := entry("GO-2000-0031", "example.com/lib", []string{"0<"}, imp{path: pkg, symbols: []string{"Exported"}})
	res, err := Match(context.Background(), b, []*osv.Entry{whole, named}, &Options{Sites: fakeSites{}})
	if err != nil {
		t.Fatal(err)
	}
	sites := func(f *Finding) []string {
		var got []string
		for _, s := range f.Symbols {
			for _, tg := range s.Funcs {
				for _, st := range tg.Sites {
					got = append(got, fmt.Sprintf("%s %s %#x in %s", tg.Name, st.Kind, st.PC, st.In))
				}
			}
		}
		return got
	}
	if len(res.Findings) != 2 {
		t.Fatalf("got %v", summary(res))
	}
	want := []string{
		"example.com/lib/p.Exported push-bp 0x401004 in example.com/lib/p.Exported",
		"example.com/lib/p.Exported inline 0x403010 in main.main",
		"example.com/lib/p.Wrap inline 0x404010 in main.run",
	}
	if got := sites(res.Findings[0]); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("whole module: got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	want = []string{
		"example.com/lib/p.Exported push-bp 0x401004 in example.com/lib/p.Exported",
		"example.com/lib/p.Exported inline 0x402010 in example.com/lib/p.caller",
		"example.com/lib/p.Exported inline 0x403010 in main.main",
		"example.com/lib/p.Exported inline 0x404020 in main.run",
	}
	if got := sites(res.Findings[1]); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("symbol: got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	s := res.Findings[0].Symbols[0]
	for pkg, want := range map[string]bool{pkg: true, "example.com/lib": false, "main": false, "example.com/libx": false} {
		if s.Covers(pkg) != want {
			t.Errorf("Covers(%q) = %v, want %v", pkg, !want, want)
		}
	}
	if res.Findings[1].Symbols[0].Covers(pkg) {
		t.Error("a named symbol covers a package")
	}
}

func TestIsEntryPoint(t *testing.T) {
	for sym, want := range map[string]bool{
		"Parse":                      true,
		"parse":                      false,
		"(*T).Do":                    true,
		"(*t).Do":                    true, // through an interface
		"(*T).do":                    false,
		"T.Do":                       true,
		"Map[go.shape.int]":          true,
		"(*List[go.shape.int]).Push": true,
		"(*list[go.shape.int]).push": false,
		"parse.func1":                true, // a function value
		"parse.func1.2":              true,
		"(*t).serve-fm":              true,
		"glob..func1":                true,
		"init.func3":                 true,
		"init.0.func1":               true,
		"init.0.gowrap1":             true,
		"init":                       false,
		"init.0":                     false,
		"init.12":                    false,
		"parse.deferwrap1":           true,
		"All-range1":                 true,
		"ÉtéFunc":                    true,
		"_private":                   false,
	} {
		if got := isEntryPoint(sym); got != want {
			t.Errorf("isEntryPoint(%q) = %v, want %v", sym, got, want)
		}
	}
	for name, want := range map[string]bool{"p.init": true, "p.init.0": true, "p.init.0.func1": false, "p.initx": false, "example.com/a%2eb.init.3": true, "p.F": false} {
		if IsInit(name) != want {
			t.Errorf("IsInit(%q) = %v, want %v", name, !want, want)
		}
	}
}

// TestModulePaths checks that the modules whose entries are fetched are
// the ones Match checks: dependencies at a version, inferred ones too,
// stdlib and toolchain; not a main module without a version, nor one
// replaced by a local directory.
func TestModulePaths(t *testing.T) {
	bin := &binfo.Binary{
		GoVersion: "go1.21.0",
		Main:      binfo.Module{Path: "example.com/app", Version: "(devel)"},
		Deps: []binfo.Module{
			{Path: "golang.org/x/text", Version: "v0.3.5", Inferred: true},
			{Path: "example.com/local", Version: "v1.0.0", Replace: &binfo.Module{Path: "../local"}},
			{Path: "gopkg.in/yaml.v2", Version: "v2.2.2", Replace: &binfo.Module{Path: "example.com/fork", Version: "v2.2.3"}},
		},
	}
	other := &binfo.Binary{GoVersion: "go1.22.1", Main: binfo.Module{Path: "example.com/tool", Version: "v1.2.0"}}
	got := ModulePaths(bin, other)
	want := []string{"example.com/tool", "golang.org/x/text", "gopkg.in/yaml.v2", osv.ModuleStdlib, osv.ModuleToolchain}
	if !slices.Equal(got, want) {
		t.Errorf("ModulePaths = %q, want %q", got, want)
	}
}
