package semver

import (
	"errors"
	"testing"

	"github.com/reach-sca/reach/internal/osv"
	"golang.org/x/mod/semver"
)

func TestCompare(t *testing.T) {
	tests := []struct {
		v, w string
		want int
	}{
		{"v1.2.3", "1.2.3", 0},
		{"1.2.3", "1.10.0", -1},
		{"v0.0.0-20210101000000-abcdef123456", "v0.0.1", -1},
		{"v0.0.0-20210101000000-abcdef123456", "v0.0.0-20200101000000-abcdef123456", 1},
		// vX.Y.(Z+1)-0.date-hash: after vX.Y.Z, before vX.Y.(Z+1).
		{"v1.2.4-0.20210101000000-abcdef123456", "v1.2.3", 1},
		{"v1.2.4-0.20210101000000-abcdef123456", "v1.2.4", -1},
		// vX.Y.Z-pre.0.date-hash: after vX.Y.Z-pre, before vX.Y.Z.
		{"v1.2.3-rc.1.0.20210101000000-abcdef123456", "v1.2.3-rc.1", 1},
		{"v1.2.3-rc.1.0.20210101000000-abcdef123456", "v1.2.3", -1},
		{"v1.2.3-rc.1.0.20210101000000-abcdef123456", "v1.2.3-rc.2", -1},
		// +incompatible is build metadata: it takes no part.
		{"v2.0.0+incompatible", "2.0.0", 0},
		{"v2.1.0+incompatible", "2.0.5+incompatible", 1},
		// Go prereleases: "-0" sorts before every named prerelease.
		{"v1.22.0-0", "v1.22.0-rc.1", -1},
		{"v1.22.0-rc.1", "v1.22.0", -1},
		{"v1.21.9", "v1.22.0-0", -1},
		{"garbage", "v0.0.0", -1},
	}
	for _, tt := range tests {
		t.Run(tt.v+"_"+tt.w, func(t *testing.T) {
			if got := Compare(tt.v, tt.w); got != tt.want {
				t.Errorf("Compare(%q, %q) = %d, want %d", tt.v, tt.w, got, tt.want)
			}
			if got := Compare(tt.w, tt.v); got != -tt.want {
				t.Errorf("Compare(%q, %q) = %d, want %d", tt.w, tt.v, got, -tt.want)
			}
		})
	}
}

func semverRange(evs ...osv.RangeEvent) osv.Range {
	return osv.Range{Type: osv.RangeTypeSemver, Events: evs}
}

func intro(v string) osv.RangeEvent { return osv.RangeEvent{Introduced: v} }
func fixed(v string) osv.RangeEvent { return osv.RangeEvent{Fixed: v} }

// stdlibRanges is the range of GO-2024-2609 (net/mail).
var stdlibRanges = []osv.Range{semverRange(intro("0"), fixed("1.21.8"), intro("1.22.0-0"), fixed("1.22.1"))}

func TestAffects(t *testing.T) {
	tests := []struct {
		name    string
		ranges  []osv.Range
		version string
		want    bool
	}{
		{"no ranges affect all", nil, "v1.0.0", true},
		{"empty semver range affects all", []osv.Range{{Type: osv.RangeTypeSemver}}, "v1.0.0", true},
		{"only non-semver ranges affect all", []osv.Range{{Type: "ECOSYSTEM", Events: []osv.RangeEvent{intro("9.0.0")}}}, "v1.0.0", true},
		{"non-semver range ignored beside a semver one", []osv.Range{
			{Type: "ECOSYSTEM", Events: []osv.RangeEvent{intro("0")}},
			semverRange(intro("2.0.0")),
		}, "v1.0.0", false},
		{"introduced 0", []osv.Range{semverRange(intro("0"))}, "v0.0.0", true},
		{"below fix", []osv.Range{semverRange(intro("0"), fixed("0.3.7"))}, "v0.3.5", true},
		{"bare version", []osv.Range{semverRange(intro("0"), fixed("0.3.7"))}, "0.3.5", true},
		{"at fix", []osv.Range{semverRange(intro("0"), fixed("0.3.7"))}, "v0.3.7", false},
		{"above fix", []osv.Range{semverRange(intro("0"), fixed("0.3.7"))}, "v0.4.0", false},
		{"at introduced", []osv.Range{semverRange(intro("1.0.0"), fixed("2.0.0"))}, "v1.0.0", true},
		{"below introduced", []osv.Range{semverRange(intro("1.0.0"), fixed("2.0.0"))}, "v0.9.9", false},
		{"second interval", []osv.Range{semverRange(intro("1.0.0"), fixed("2.0.0"), intro("3.0.0"))}, "v3.0.0", true},
		{"between intervals", []osv.Range{semverRange(intro("1.0.0"), fixed("2.0.0"), intro("3.0.0"))}, "v2.5.0", false},
		{"unsorted events", []osv.Range{semverRange(intro("1.19.0"), fixed("1.19.1"), intro("0"), fixed("1.18.6"))}, "v1.18.1", true},
		{"unsorted events, between", []osv.Range{semverRange(intro("1.19.0"), fixed("1.19.1"), intro("0"), fixed("1.18.6"))}, "v1.18.6", false},
		{"stdlib old branch", stdlibRanges, "v1.21.0", true},
		{"stdlib old branch fixed", stdlibRanges, "v1.21.8", false},
		{"stdlib prerelease of new branch", stdlibRanges, "v1.22.0-rc.1", true},
		{"stdlib new branch", stdlibRanges, "v1.22.0", true},
		{"stdlib new branch fixed", stdlibRanges, "v1.22.1", false},
		{"pseudo-version below fix", []osv.Range{semverRange(intro("0"), fixed("0.0.0-20210520170846-37e1c6afe023"))}, "v0.0.0-20210101000000-abcdef123456", true},
		{"pseudo-version above fix", []osv.Range{semverRange(intro("0"), fixed("0.0.0-20210520170846-37e1c6afe023"))}, "v0.0.0-20220101000000-abcdef123456", false},
		{"pseudo-version fix vs tag", []osv.Range{semverRange(intro("0"), fixed("1.2.4-0.20210101000000-abcdef123456"))}, "v1.2.3", true},
		{"incompatible", []osv.Range{semverRange(intro("0"), fixed("2.1.0+incompatible"))}, "v2.0.9+incompatible", true},
		{"incompatible fixed", []osv.Range{semverRange(intro("0"), fixed("2.1.0+incompatible"))}, "v2.1.0+incompatible", false},
		{"invalid version", []osv.Range{semverRange(intro("0"))}, "(devel)", false},
		{"empty version", nil, "", false},
		{"invalid event ignored", []osv.Range{semverRange(intro("0"), fixed("not-a-version"), fixed("1.0.0"))}, "v0.5.0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Affects(tt.ranges, tt.version); got != tt.want {
				t.Errorf("Affects(%v, %q) = %v, want %v", tt.ranges, tt.version, got, tt.want)
			}
		})
	}
}

func TestAffectsDoesNotReorderInput(t *testing.T) {
	r := []osv.Range{semverRange(fixed("2.0.0"), intro("1.0.0"))}
	Affects(r, "v1.5.0")
	if r[0].Events[0].Fixed != "2.0.0" {
		t.Errorf("Affects reordered its input: %v", r)
	}
}

func TestFixedVersion(t *testing.T) {
	tests := []struct {
		name    string
		ranges  []osv.Range
		version string
		want    string
	}{
		{"simple", []osv.Range{semverRange(intro("0"), fixed("0.3.7"))}, "v0.3.5", "v0.3.7"},
		{"no fix", []osv.Range{semverRange(intro("0"))}, "v0.3.5", ""},
		{"no ranges", nil, "v1.0.0", ""},
		{"lowest fix above version", stdlibRanges, "v1.21.0", "v1.21.8"},
		{"fix on own branch", stdlibRanges, "v1.22.0", "v1.22.1"},
		{"prerelease of new branch", stdlibRanges, "v1.22.0-rc.2", "v1.22.1"},
		{"fix superseded by reintroduction", []osv.Range{semverRange(intro("0"), fixed("1.0.0"), intro("1.0.0"), fixed("1.5.0"))}, "v0.5.0", "v1.5.0"},
		{"fix inside another range", []osv.Range{
			semverRange(intro("0"), fixed("1.2.0")),
			semverRange(intro("1.1.0"), fixed("1.4.0")),
		}, "v1.1.5", "v1.4.0"},
		{"fix below version ignored", []osv.Range{semverRange(intro("0"), fixed("1.0.0"), intro("2.0.0"), fixed("2.3.0"))}, "v2.1.0", "v2.3.0"},
		{"pseudo-version fix", []osv.Range{semverRange(intro("0"), fixed("0.0.0-20210520170846-37e1c6afe023"))}, "v0.0.0-20200101000000-abcdef123456", "v0.0.0-20210520170846-37e1c6afe023"},
		{"unaffected version still gets next fix", []osv.Range{semverRange(intro("1.0.0"), fixed("1.2.0"))}, "v0.9.0", "v1.2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FixedVersion(tt.ranges, tt.version); got != tt.want {
				t.Errorf("FixedVersion(%v, %q) = %q, want %q", tt.ranges, tt.version, got, tt.want)
			}
		})
	}
}

func TestFromGo(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "go1.21.0", want: "v1.21.0"},
		{in: "go1.21", want: "v1.21.0"},
		{in: "go1.20", want: "v1.20.0"},
		{in: "go1.9", want: "v1.9.0"},
		{in: "go1", want: "v1.0.0"},
		{in: "go1.0.3", want: "v1.0.3"},
		{in: "go1.21rc2", want: "v1.21.0-rc.2"},
		{in: "go1.22rc1", want: "v1.22.0-rc.1"},
		{in: "go1.9beta1", want: "v1.9.0-beta.1"},
		{in: "go1.9.2beta1", want: "v1.9.2-beta.1"},
		{in: "go1.21.0 X:boringcrypto", want: "v1.21.0"},
		{in: "go1.24.1 X:nocoverageredesign,fieldtrack", want: "v1.24.1"},
		{in: "  go1.21.5\n", want: "v1.21.5"},
		{in: "go1.21.0-bigcorp", want: "v1.21.0"},
		{in: "go1.21.3+auto", want: "v1.21.3"},
		{in: "devel go1.22-abc123 Tue Aug 1 00:00:00 2023 +0000", want: "v1.22.0-0"},
		{in: "devel go1.22-abc123", want: "v1.22.0-0"},
		{in: "", bad: true},
		{in: "devel", bad: true},
		{in: "devel +abc123 Tue Aug 1 00:00:00 2023 +0000", bad: true},
		{in: "1.21.0", bad: true},
		{in: "v1.21.0", bad: true},
		{in: "go", bad: true},
		{in: "go1.21.0.1", bad: true},
		{in: "go1.021", bad: true},
		{in: "go1..2", bad: true},
		{in: "go1.21rc", bad: true},
		{in: "go1.21alpha1", bad: true},
		{in: "gox.y", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := FromGo(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("FromGo(%q) = %q, want an error", tt.in, got)
				}
				if !errors.Is(err, ErrGoVersion) {
					t.Errorf("FromGo(%q) error %v is not ErrGoVersion", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("FromGo(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// The stdlib ranges of the Go database open each release at "X.Y.0-0", so
// every prerelease of that release is affected.
func TestFromGoAgainstStdlibRanges(t *testing.T) {
	for _, tt := range []struct {
		goVersion string
		want      bool
	}{
		{"go1.21.0", true},
		{"go1.21.8", false},
		{"go1.22rc1", true},
		{"go1.22.0", true},
		{"go1.22.1", false},
		{"devel go1.22-abc", true},
	} {
		v, err := FromGo(tt.goVersion)
		if err != nil {
			t.Fatal(err)
		}
		if got := Affects(stdlibRanges, v); got != tt.want {
			t.Errorf("%s (%s): Affects = %v, want %v", tt.goVersion, v, got, tt.want)
		}
	}
}

func FuzzFromGo(f *testing.F) {
	for _, s := range []string{"go1.21.0", "go1.21rc2", "go1.9.2beta1", "devel go1.22-abc x", "go1.21.0 X:boringcrypto", "go1", "go1.21.0-bigcorp", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := FromGo(s)
		if err != nil {
			if v != "" {
				t.Fatalf("FromGo(%q) = %q with error %v", s, v, err)
			}
			return
		}
		if !semver.IsValid(v) || semver.Build(v) != "" {
			t.Fatalf("FromGo(%q) = %q, not a valid semantic version without build metadata", s, v)
		}
		// A release with the same fields converts the same way.
		if w, err := FromGo(s + " X:extra"); err != nil || w != v {
			t.Fatalf("FromGo(%q) = %q, %v; FromGo(%q) = %q", s+" X:extra", w, err, s, v)
		}
	})
}
