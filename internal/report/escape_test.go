package report

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"golang.org/x/text@v0.3.5", "golang.org/x/text@v0.3.5"},
		{"héllo, 世界 ✓ \ufffd", "héllo, 世界 ✓ \ufffd"},
		{"clear\x1b[2Jscreen", `clear\x1b[2Jscreen`},
		{"title\x1b]0;pwned\x07", `title\x1b]0;pwned\a`},
		{"line\nforged\r\tend", `line\nforged\r\tend`},
		{"del\x7f nul\x00", `del\x7f nul\x00`},
		{"c1 csi \u009b31m", `c1 csi \u009b31m`},
		{"bidi \u202egnp.exe\u202c \u2066x\u2069", `bidi \u202egnp.exe\u202c \u2066x\u2069`},
		{"separators \u2028\u2029 zero\u200bwidth", `separators \u2028\u2029 zero\u200bwidth`},
		{"tag \U000e0041", `tag \U000e0041`},
		{"bad utf-8 \xff\xc3", `bad utf-8 \xff\xc3`},
	} {
		if got := Printable(tt.in); got != tt.want {
			t.Errorf("Printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := PrintableLines("a\x1b\nb\u202e\n"); got != "a\\x1b\nb\\u202e\n" {
		t.Errorf("PrintableLines = %q", got)
	}
}

// hostile is what a database or a binary could hold to act on the
// terminal that shows a report: clear the screen, set the window title,
// forge a line, reverse text, and CSI as a C1 control.
const hostile = "x\x1b[2J\x1b]0;title\x07\rforged\nreach scan: 0 reached\u202egnp.exe\u009b31m\xff end"

// unsafeOnTerminal returns a description of the first character in out
// that could act on a terminal, or "".
func unsafeOnTerminal(out []byte) string {
	for i := 0; i < len(out); {
		r, size := utf8.DecodeRune(out[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return "invalid UTF-8 byte"
		case r == '\n':
		case r < 0x20 || r == 0x7f || (0x80 <= r && r < 0xa0):
			return "control character " + strings.TrimSpace(Printable(string(r)))
		case r >= 0x80 && !printable(r):
			return "format character " + Printable(string(r))
		}
		i += size
	}
	return ""
}

// TestHostileStrings renders a report whose every string from a database,
// a binary or a file is hostile, in every format: no output may hold a
// character that acts on a terminal, the text report may not gain a line,
// and the JSON formats must keep the strings intact.
func TestHostileStrings(t *testing.T) {
	r := fixtureReport()
	r.DB.Source = hostile
	r.Notes = append(r.Notes, hostile)
	for _, b := range r.Binaries {
		b.Path += hostile
		b.MainModule += hostile
		b.GoVersion += hostile
		for _, f := range b.Findings {
			f.Summary = hostile
			f.Aliases = append(f.Aliases, hostile)
			f.Module += hostile
			f.Version += hostile
			for _, s := range f.Symbols {
				s.Name += hostile
				for _, c := range s.Callsites {
					c.Function += hostile
					c.File += hostile
				}
			}
		}
	}
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			out := render(t, format, r)
			if what := unsafeOnTerminal(out); what != "" {
				t.Errorf("output holds a %s", what)
			}
			if format == "text" {
				for _, l := range strings.Split(string(out), "\n") {
					if strings.HasPrefix(l, "reach scan: 0 reached") || strings.HasPrefix(l, "forged") {
						t.Errorf("forged line: %q", l)
					}
				}
				if !strings.Contains(string(out), `x\x1b[2J\x1b]0;title\a`) {
					t.Errorf("the escape sequences are not shown escaped:\n%s", out)
				}
				return
			}
			if !json.Valid(out) {
				t.Fatal("not valid JSON")
			}
			// The escaped characters are still there for programs.
			want := strings.ToValidUTF8(hostile, "\ufffd")
			if !strings.Contains(jsonStrings(t, out), want) {
				t.Errorf("the hostile string does not survive a JSON round trip")
			}
		})
	}
}

// jsonStrings returns every string value in the JSON document js, joined
// by newlines.
func jsonStrings(t *testing.T, js []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			b.WriteString(v + "\n")
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return b.String()
}

// TestSARIFMarkdownInjection checks that a summary cannot add links,
// images or HTML to the markdown a code-scanning page renders.
func TestSARIFMarkdownInjection(t *testing.T) {
	r := fixtureReport()
	evil := "see [this](https://evil.example) ![](https://evil.example/t.png) <img src=x onerror=alert(1)> **bold**\n# heading"
	for _, b := range r.Binaries {
		for _, f := range b.Findings {
			f.Summary = evil
			f.Module = "example.com/m` [x](https://evil.example) `"
		}
	}
	var log struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Rules []struct {
						Help struct{ Markdown string }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(render(t, "sarif", r), &log); err != nil {
		t.Fatal(err)
	}
	rules := log.Runs[0].Tool.Driver.Rules
	if len(rules) == 0 {
		t.Fatal("no rules")
	}
	for _, rule := range rules {
		md := rule.Help.Markdown
		for _, bad := range []string{"[this]", "![]", "<img", "**bold**", "\n# heading", "` [x]"} {
			if unescaped(md, bad) {
				t.Errorf("markdown holds %q unescaped:\n%s", bad, md)
			}
		}
		if !strings.Contains(md, `see \[this\](https://evil.example) \!\[\](https://evil.example/t.png) \<img`) {
			t.Errorf("markdown does not show the summary as text:\n%s", md)
		}
	}
}

// unescaped reports whether md holds s not preceded by a backslash.
func unescaped(md, s string) bool {
	for i := 0; ; i++ {
		j := strings.Index(md[i:], s)
		if j < 0 {
			return false
		}
		if i+j == 0 || md[i+j-1] != '\\' {
			return true
		}
		i += j
	}
}

// FuzzPrintable checks that Printable and the JSON writers leave nothing
// that acts on a terminal, and that the JSON still decodes to the same
// strings.
func FuzzPrintable(f *testing.F) {
	f.Add(hostile)
	f.Add("tag \U000e0041 \u2028 \u00ad ok")
	f.Fuzz(func(t *testing.T, s string) {
		if what := unsafeOnTerminal([]byte(Printable(s))); what != "" {
			t.Fatalf("Printable(%q) holds a %s", s, what)
		}
		var buf strings.Builder
		if err := EncodeJSON(&buf, map[string]string{"s": s}); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if what := unsafeOnTerminal([]byte(out)); what != "" {
			t.Fatalf("EncodeJSON(%q) holds a %s", s, what)
		}
		var back map[string]string
		if err := json.Unmarshal([]byte(out), &back); err != nil {
			t.Fatalf("EncodeJSON(%q) = %s: %v", s, out, err)
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); back["s"] != want && utf8.ValidString(s) {
			t.Fatalf("EncodeJSON(%q) decodes to %q", s, back["s"])
		}
	})
}
