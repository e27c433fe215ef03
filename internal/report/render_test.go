package report

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/report -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is right):\n%s", name, diffLines(string(want), string(got)))
	}
}

// diffLines shows the first lines that differ.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			shown++
		}
	}
	return b.String()
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(i)) }

func fmtInt(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}

func render(t *testing.T, format string, r *Report) []byte {
	t.Helper()
	fn, err := Renderer(format)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := fn(&buf, r); err != nil {
		t.Fatalf("render %s: %v", format, err)
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	empty := &Report{Schema: Schema, Tool: Tool{Name: "reach", Version: "v0.1.0"}, Mode: "scan",
		Started: *ts(0), Finished: *ts(1),
		Binaries: []*Binary{{Path: "/srv/bin/clean", GoVersion: "go1.26.0", MainModule: "example.com/clean", Modules: []Module{}, Findings: []*Finding{}}}}
	reports := map[string]*Report{"full": fixtureReport(), "empty": empty}
	exts := map[string]string{"text": "txt", "json": "json", "sarif": "sarif", "openvex": "openvex.json"}
	for name, r := range reports {
		for _, format := range Formats {
			t.Run(name+"/"+format, func(t *testing.T) {
				golden(t, name+"."+exts[format]+".golden", render(t, format, r))
			})
		}
	}
}

// TestReplay renders every format from the JSON report read back, as a
// report saved by one command and rendered by another would be: the JSON
// must carry everything the other formats show.
func TestReplay(t *testing.T) {
	r := fixtureReport()
	back, err := ReadJSON(bytes.NewReader(render(t, "json", r)))
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			if got, want := render(t, format, back), render(t, format, r); !bytes.Equal(got, want) {
				t.Errorf("%s from the JSON report differs:\n%s", format, diffLines(string(want), string(got)))
			}
		})
	}
}

func TestReadJSONErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"not json", "reach"},
		{"other schema", `{"schema":"reach/v0"}`},
		{"no schema", `{}`},
		{"bad type", `{"schema":"reach/v1","binaries":{}}`},
		{"null binary", `{"schema":"reach/v1","binaries":[null]}`},
		{"null finding", `{"schema":"reach/v1","binaries":[{"findings":[null]}]}`},
		{"bad finding status", `{"schema":"reach/v1","binaries":[{"findings":[{"osv":"GO-1","status":"called"}]}]}`},
		{"null symbol", `{"schema":"reach/v1","binaries":[{"findings":[{"status":"linked","symbols":[null]}]}]}`},
		{"imported symbol", `{"schema":"reach/v1","binaries":[{"findings":[{"status":"linked","symbols":[{"status":"imported"}]}]}]}`},
		{"null callsite", `{"schema":"reach/v1","binaries":[{"findings":[{"status":"reached","symbols":[{"status":"reached","callsites":[null]}]}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ReadJSON(strings.NewReader(tt.in)); err == nil {
				t.Error("no error")
			}
		})
	}
}

func FuzzReadJSON(f *testing.F) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, fixtureReport()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"schema":"reach/v1","binaries":[null,{"findings":[null,{"symbols":[null]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadJSON(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever was read must render without panicking.
		for _, format := range Formats {
			fn, _ := Renderer(format)
			_ = fn(&bytes.Buffer{}, r)
		}
		r.Count(Linked)
		_ = r.Clone()
	})
}

func TestRendererUnknown(t *testing.T) {
	if _, err := Renderer("html"); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("err = %v, want ErrUnknownFormat", err)
	}
}

func TestTextWidth(t *testing.T) {
	out := string(render(t, "text", fixtureReport()))
	for i, l := range strings.Split(out, "\n") {
		// Paths and function names cannot be broken; prose must be.
		if len(l) > textWidth && !strings.Contains(l, "/") {
			t.Errorf("line %d is %d columns: %q", i+1, len(l), l)
		}
	}
	for _, want := range []string{
		"reach run: 2 reached, 1 not watched, 2 linked, 2 imported in 2 binaries",
		"Targets from 2025-03-14 09:10:00 UTC (/etc/reach/targets):\n  line 1: GO-2021-0113\n  line 2: net/http\n",
		"    not watched gopkg.in/yaml.v2.Unmarshal\n             watched 2025-03-14 09:00:00 UTC to 2025-03-14 09:10:00 UTC; not\n             watched: not selected by the targets in force\n",
		"    not watched gopkg.in/yaml.v2.decoder.unmarshal\n             never watched: not selected by the targets in force\n",
		"Note: vulnerability database cache is 13 days old",
		"upgrade with `go get golang.org/x/text@v0.3.7`",
		"upgrade Go to go1.19.1",
		"at /home/dev/app/api/lang.go:41",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q", want)
		}
	}
	// Reached comes first, then not watched, linked, imported last.
	ir, in, il, ii := strings.Index(out, "\nReached:"), strings.Index(out, "\nNot watched:"), strings.Index(out, "\nLinked:"), strings.Index(out, "\nImported:")
	if ir < 0 || in < ir || il < in || ii < il {
		t.Errorf("sections out of order: reached %d, not watched %d, linked %d, imported %d", ir, in, il, ii)
	}
}
