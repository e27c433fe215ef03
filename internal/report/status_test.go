package report

import (
	"errors"
	"testing"
)

func TestCount(t *testing.T) {
	r := fixtureReport()
	tests := []struct {
		threshold Status
		want      int
	}{
		{Reached, 2},
		{NotWatched, 3},
		{Linked, 5},
		{Imported, 7},
		{"bogus", 7},
	}
	for _, tt := range tests {
		t.Run(string(tt.threshold), func(t *testing.T) {
			if got := r.Count(tt.threshold); got != tt.want {
				t.Errorf("Count(%s) = %d, want %d", tt.threshold, got, tt.want)
			}
		})
	}
	want := Counts{Reached: 2, NotWatched: 1, Linked: 2, Imported: 2, Binaries: 2}
	if got := r.Counts(); got != want {
		t.Errorf("Counts() = %+v, want %+v", got, want)
	}
}

func TestParseStatus(t *testing.T) {
	for _, s := range Statuses {
		got, err := ParseStatus(string(s))
		if err != nil || got != s {
			t.Errorf("ParseStatus(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "Reached", "called"} {
		if _, err := ParseStatus(s); !errors.Is(err, ErrBadStatus) {
			t.Errorf("ParseStatus(%q) err = %v, want ErrBadStatus", s, err)
		}
	}
}

func TestGoVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"v1.21.3", "go1.21.3"},
		{"v1.21.0", "go1.21.0"},
		{"v1.20.0", "go1.20"},
		{"v1.19.13", "go1.19.13"},
		{"v1.21.0-rc.2", "go1.21rc2"},
		{"v1.18.0-beta.1", "go1.18beta1"},
		{"v2", "v2"},
		{"1.21.3", "1.21.3"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := GoVersion(tt.in); got != tt.want {
			t.Errorf("GoVersion(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAdvice(t *testing.T) {
	r := fixtureReport()
	b := r.Binaries[0]
	tests := []struct {
		f    *Finding
		want string
	}{
		{b.Findings[0], "fixed in v2.2.8: upgrade with `go get gopkg.in/yaml.v2@v2.2.8` and update the replacement example.com/fork/yaml@v2.2.3"},
		{b.Findings[1], "fixed in v0.3.7: upgrade with `go get golang.org/x/text@v0.3.7`"},
		{b.Findings[2], "fixed in go1.19.1: upgrade Go to go1.19.1 and rebuild"},
		{&Finding{Module: "toolchain", FixedVersion: "v1.20.0"}, "fixed in go1.20: build with toolchain go1.20 or later"},
		{r.Binaries[1].Findings[1], "no fixed version yet: avoid the vulnerable symbols or replace the module"},
	}
	for _, tt := range tests {
		if got := tt.f.Advice(b); got != tt.want {
			t.Errorf("%s: Advice = %q, want %q", tt.f.OSV, got, tt.want)
		}
	}
}
