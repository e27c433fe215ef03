package report

import (
	"reflect"
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
