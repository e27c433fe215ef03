package report

import (
	"reflect"
	"strings"
	"testing"
)

func TestUpgradeAdvice(t *testing.T) {
	r := &Report{Binaries: []*Binary{
		{Path: "a", Findings: []*Finding{
			{OSV: "GO-1", Module: "golang.org/x/text", Version: "v0.3.5", FixedVersion: "v0.3.7"},
			{OSV: "GO-2", Module: "golang.org/x/text", Version: "v0.3.5", FixedVersion: "v0.39.0"},
			{OSV: "GO-3", Module: "stdlib", Version: "v1.21.0", FixedVersion: "v1.21.5"},
			{OSV: "GO-4", Module: "toolchain", Version: "v1.21.0", FixedVersion: "v1.22.1"},
			{OSV: "GO-5", Module: "example.com/nofix", Version: "v1.0.0"},
		}},
		{Path: "b", Findings: []*Finding{
			// Another binary, another version: one summary still.
			{OSV: "GO-1", Module: "golang.org/x/text", Version: "v0.3.6", FixedVersion: "v0.3.7"},
			{OSV: "GO-6", Module: "golang.org/x/text", Version: "v0.3.6", FixedVersion: "v0.10.0"},
			{OSV: "GO-7", Module: "golang.org/x/text", Version: "v0.3.6"},
		}},
	}}
	want := []Upgrade{
		{Module: "example.com/nofix", Versions: []string{"v1.0.0"}, Findings: []string{}, NoFix: []string{"GO-5"}},
		// v0.39.0 > v0.10.0 > v0.3.7: compared as versions, not strings.
		{Module: "golang.org/x/text", Versions: []string{"v0.3.5", "v0.3.6"}, Fixed: "v0.39.0", Command: "go get golang.org/x/text@v0.39.0", Findings: []string{"GO-1", "GO-2", "GO-6"}, NoFix: []string{"GO-7"}},
		{Module: "go", Versions: []string{"go1.21.0"}, Fixed: "go1.22.1", Command: "go get toolchain@go1.22.1", Findings: []string{"GO-3", "GO-4"}},
	}
	if got := r.UpgradeAdvice(); !reflect.DeepEqual(got, want) {
		t.Errorf("UpgradeAdvice:\n got %+v\nwant %+v", got, want)
	}
}

// TestUnplacedHits: a one-shot symbol counts the calls made before its
// probes went away, its callsite only the first hit's: the text says where
// the others went instead of showing 8 hits over a callsite's 1.
func TestUnplacedHits(t *testing.T) {
	r := &Report{Mode: "run", Binaries: []*Binary{{Path: "app", Findings: []*Finding{{
		OSV: "GO-1", Module: "m", Version: "v1.0.0", Status: Reached,
		Symbols: []*Symbol{{Package: "m/p", Name: "F", Status: Reached, Hits: 8,
			Callsites: []*Callsite{{Function: "main.main", File: "main.go", Line: 3, Hits: 1}}}},
	}}}}}
	var b strings.Builder
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "7 more calls with no recorded callsite") {
		t.Errorf("text does not account for 7 of the 8 hits:\n%s", b.String())
	}
	r.Binaries[0].Findings[0].Symbols[0].Callsites[0].Hits = 8
	b.Reset()
	WriteText(&b, r)
	if strings.Contains(b.String(), "more call") {
		t.Errorf("every hit has its callsite, yet:\n%s", b.String())
	}
}
