package semver

import (
	"sort"

	"github.com/reach-sca/reach/internal/osv"
)

// Affects reports whether version lies in one of ranges.
//
// Each SEMVER range is a list of events: an "introduced" event opens an
// affected interval at its version (inclusive; "0" is the first version) and
// a "fixed" event closes it (exclusive). Events are evaluated in version
// order, whatever order the entry lists them in. Events whose version is not
// a semantic version are ignored.
//
// As in govulncheck, a nil or empty ranges, or one with no SEMVER range at
// all, affects every version: the entry gave no way to exclude any. A
// version that is not a semantic version (such as "" or "(devel)") is never
// affected: callers that cannot name a version must decide for themselves.
func Affects(ranges []osv.Range, version string) bool {
	if !Valid(version) {
		return false
	}
	if len(ranges) == 0 {
		return true
	}
	sawSemver := false
	for _, r := range ranges {
		if r.Type != osv.RangeTypeSemver {
			continue
		}
		sawSemver = true
		if contains(r, version) {
			return true
		}
	}
	return !sawSemver
}

// event is a range event with its version in canonical form; fixed tells
// which kind of event it is. start marks the introduced event "0".
type event struct {
	version string
	fixed   bool
	start   bool
}

// contains reports whether the SEMVER range r contains v.
func contains(r osv.Range, v string) bool {
	if len(r.Events) == 0 {
		return true
	}
	evs := make([]event, 0, len(r.Events))
	for _, e := range r.Events {
		switch {
		case e.Introduced == "0":
			evs = append(evs, event{start: true})
		case e.Introduced != "" && Valid(e.Introduced):
			evs = append(evs, event{version: canon(e.Introduced)})
		case e.Fixed != "" && Valid(e.Fixed):
			evs = append(evs, event{version: canon(e.Fixed), fixed: true})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].start || evs[j].start {
			return evs[i].start && !evs[j].start
		}
		return Compare(evs[i].version, evs[j].version) < 0
	})
	affected := false
	for _, e := range evs {
		switch {
		case !affected && !e.fixed:
			affected = e.start || Compare(v, e.version) >= 0
		case affected && e.fixed:
			affected = Compare(v, e.version) < 0
		}
	}
	return affected
}

// FixedVersion returns the lowest version above version that fixes ranges:
// the lowest "fixed" event of a SEMVER range that is higher than version and
// that ranges do not affect (a later range may reintroduce the
// vulnerability, which makes that fix no fix). The result has a leading "v".
// It returns "" when there is no such version, including when ranges affect
// every version.
func FixedVersion(ranges []osv.Range, version string) string {
	var fixes []string
	for _, r := range ranges {
		if r.Type != osv.RangeTypeSemver {
			continue
		}
		for _, e := range r.Events {
			if e.Fixed == "" || !Valid(e.Fixed) {
				continue
			}
			if Valid(version) && Compare(e.Fixed, version) <= 0 {
				continue
			}
			fixes = append(fixes, canon(e.Fixed))
		}
	}
	sort.SliceStable(fixes, func(i, j int) bool { return Compare(fixes[i], fixes[j]) < 0 })
	for _, f := range fixes {
		if !Affects(ranges, f) {
			return f
		}
	}
	return ""
}
