package report

import (
	"bytes"
	"strings"
	"testing"
)

// TestInferredRendering checks that the text report says which versions
// were inferred from source file paths, and that JSON carries the marks.
func TestInferredRendering(t *testing.T) {
	r := fixtureReport()
	b := r.Binaries[0]
	b.MainInferred = true
	b.Modules[0].Inferred = true // golang.org/x/text
	text := string(render(t, "text", r))
	for _, want := range []string{
		"example.com/app@v1.4.0 (main module inferred from function names)",
		"dependencies inferred from source file paths",
		"golang.org/x/text@v0.3.5 (version inferred from source file paths)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "gopkg.in/yaml.v2@v2.2.3 (version inferred") {
		t.Errorf("text report says yaml.v2's version, from the build information, is inferred:\n%s", text)
	}
	// SARIF and OpenVEX, which have no module line, say it of each
	// finding of the module, and of no other.
	for _, format := range []string{"sarif", "openvex"} {
		out := string(render(t, format, r))
		if want := "The version of golang.org/x/text was inferred from the source file paths"; !strings.Contains(out, want) {
			t.Errorf("%s report lacks %q:\n%s", format, want, out)
		}
		if strings.Contains(out, "The version of gopkg.in/yaml.v2 was inferred") {
			t.Errorf("%s report says yaml.v2's version, from the build information, is inferred:\n%s", format, out)
		}
	}
	js := render(t, "json", r)
	for _, want := range []string{`"main_module_inferred": true`, `"inferred": true`} {
		if !bytes.Contains(js, []byte(want)) {
			t.Errorf("JSON report lacks %s:\n%s", want, js)
		}
	}
	back, err := ReadJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	if m := back.Binaries[0].Module("golang.org/x/text"); m == nil || !m.Inferred || !back.Binaries[0].MainInferred {
		t.Errorf("inferred marks lost in a JSON round trip: %+v", back.Binaries[0])
	}
	if m := back.Binaries[0].Module("gopkg.in/yaml.v2"); m == nil || m.Inferred {
		t.Errorf("yaml.v2 marked inferred after a round trip: %+v", m)
	}
}
