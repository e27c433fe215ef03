package oracle

// The cases: real projects' own test suites, fetched through the module
// proxy at versions with vulnerable code, built with the local toolchain
// and with go1.21.0 (whose standard library has many vulnerabilities,
// net/http's among them). Which vulnerable code they run is not written
// here: coverage says.

// CICases is the bounded set the package's test runs: two projects' own
// test suites. yaml.v2 calls its own vulnerable functions (local
// toolchain). chi v5.2.1 is net/http-heavy, built with go1.21.0 (the
// vulnerable standard library), and its version has an entry without
// symbol data, which makes the whole module vulnerable.
func CICases() []Case {
	return []Case{
		{Name: "yaml.v2", Module: "gopkg.in/yaml.v2@v2.2.2", Package: "gopkg.in/yaml.v2", Test: true},
		{Name: "chi-go1.21", Module: "github.com/go-chi/chi/v5@v5.2.1", Package: "github.com/go-chi/chi/v5", Test: true, Toolchain: "go1.21.0"},
	}
}

// AllCases is the full set bench/oracle runs from the repository root: the
// CI cases, more suites, the same code as PIE, stripped and with the other
// toolchain, and a program of testdata/progs.
func AllCases() []Case {
	return append(CICases(),
		Case{Name: "yaml.v2-go1.21-pie", Module: "gopkg.in/yaml.v2@v2.2.2", Package: "gopkg.in/yaml.v2", Test: true, Toolchain: "go1.21.0", PIE: true},
		Case{Name: "x-text-language", Module: "golang.org/x/text@v0.3.5", Package: "golang.org/x/text/language", Test: true},
		Case{Name: "x-text-language-go1.21-stripped", Module: "golang.org/x/text@v0.3.5", Package: "golang.org/x/text/language", Test: true, Toolchain: "go1.21.0", Stripped: true},
		Case{Name: "chi", Module: "github.com/go-chi/chi/v5@v5.2.1", Package: "github.com/go-chi/chi/v5", Test: true},
		Case{Name: "chi-middleware-go1.21", Module: "github.com/go-chi/chi/v5@v5.0.10", Package: "github.com/go-chi/chi/v5/middleware", Test: true, Toolchain: "go1.21.0"},
		Case{Name: "mux-go1.21", Module: "github.com/gorilla/mux@v1.8.0", Package: "github.com/gorilla/mux", Test: true, Toolchain: "go1.21.0"},
		Case{Name: "httprouter-go1.21", Module: "github.com/julienschmidt/httprouter@v1.3.0", Package: "github.com/julienschmidt/httprouter", Test: true, Toolchain: "go1.21.0"},
		Case{Name: "jwt", Module: "github.com/golang-jwt/jwt@v3.2.2+incompatible", Package: "github.com/golang-jwt/jwt", Test: true},
		Case{Name: "textyaml-go1.21", Dir: "testdata/progs/textyaml", Package: ".", Toolchain: "go1.21.0"},
	)
}
