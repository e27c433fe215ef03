package report

import (
	"errors"
	"fmt"
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

func TestCheckAndExitCode(t *testing.T) {
	r := fixtureReport()
	// Drop the reached findings: only linked and imported remain.
	noReached := fixtureReport()
	noReached.Binaries[0].Findings = noReached.Binaries[0].Findings[:1]
	noReached.Binaries[1].Findings = noReached.Binaries[1].Findings[:1] // worker's linked GO-2021-0113
	onlyNotWatched := fixtureReport()
	onlyNotWatched.Binaries = onlyNotWatched.Binaries[:1]
	onlyNotWatched.Binaries[0].Findings = onlyNotWatched.Binaries[0].Findings[3:4]
	if f := onlyNotWatched.Binaries[0].Findings[0]; f.Status != NotWatched {
		t.Fatalf("fixture: finding %s is %s, want not_watched", f.OSV, f.Status)
	}
	tests := []struct {
		name      string
		r         *Report
		threshold Status
		want      int
	}{
		{"reached found", r, Reached, ExitFound},
		{"imported found", r, Imported, ExitFound},
		{"reached not found", noReached, Reached, ExitOK},
		{"linked found", noReached, Linked, ExitFound},
		{"not_watched found", r, NotWatched, ExitFound},
		// A symbol left out of the targets does not fail -fail-on reached,
		// and fails -fail-on not_watched and linked.
		{"not_watched is not reached", onlyNotWatched, Reached, ExitOK},
		{"not_watched at not_watched", onlyNotWatched, NotWatched, ExitFound},
		{"not_watched at linked", onlyNotWatched, Linked, ExitFound},
		{"linked is not not_watched", noReached, NotWatched, ExitOK},
		{"empty report", &Report{}, Imported, ExitOK},
		{"bad threshold", r, "sometimes", ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Check(tt.threshold)
			if got := ExitCode(err); got != tt.want {
				t.Errorf("ExitCode(Check(%s)) = %d (err %v), want %d", tt.threshold, got, err, tt.want)
			}
			// Wrapping keeps the code.
			if got := ExitCode(fmt.Errorf("scan: %w", err)); err != nil && got != tt.want {
				t.Errorf("wrapped: ExitCode = %d, want %d", got, tt.want)
			}
		})
	}
	if got := ExitCode(errors.New("disk on fire")); got != ExitError {
		t.Errorf("plain error: exit code %d, want %d", got, ExitError)
	}
	var fe *FoundError
	if err := r.Check(Linked); !errors.As(err, &fe) || fe.Count != 5 || err.Error() != "5 findings linked or worse" {
		t.Errorf("Check(linked) = %v", err)
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
