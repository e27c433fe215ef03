package vulndb

import (
	"encoding/json"
	"fmt"

	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/semver"
)

// parseEntry parses the OSV entry the database serves for wantID. The entry
// is malformed (ErrMalformed) when it is not JSON, when its ID is not
// wantID, when an affected module has no path, or when a version range
// has an event that is not one semantic version ("0" opens at the start):
// a range reach cannot read would silently say "not affected".
func parseEntry(data []byte, wantID string) (*osv.Entry, error) {
	var e osv.Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("entry %s: %w: %w", wantID, ErrMalformed, err)
	}
	if e.ID != wantID {
		return nil, fmt.Errorf("entry %s: %w: it names itself %q", wantID, ErrMalformed, e.ID)
	}
	for i, a := range e.Affected {
		if a.Module.Path == "" {
			return nil, fmt.Errorf("entry %s: %w: affected[%d] has no module path", wantID, ErrMalformed, i)
		}
		for j, r := range a.Ranges {
			if err := checkRange(r); err != nil {
				return nil, fmt.Errorf("entry %s: %w: affected[%d] (%s) range %d: %w", wantID, ErrMalformed, i, a.Module.Path, j, err)
			}
		}
	}
	return &e, nil
}

// checkRange checks that every event of a SEMVER range opens or closes it
// at one valid version.
func checkRange(r osv.Range) error {
	if r.Type != osv.RangeTypeSemver {
		return fmt.Errorf("type %q: only SEMVER ranges are read", r.Type)
	}
	for k, ev := range r.Events {
		switch {
		case ev.Introduced != "" && ev.Fixed != "":
			return fmt.Errorf("event %d both introduces and fixes", k)
		case ev.Introduced == "0":
		case ev.Introduced != "":
			if !semver.Valid(ev.Introduced) {
				return fmt.Errorf("event %d: introduced %q is not a semantic version", k, ev.Introduced)
			}
		case ev.Fixed != "":
			if !semver.Valid(ev.Fixed) {
				return fmt.Errorf("event %d: fixed %q is not a semantic version", k, ev.Fixed)
			}
		default:
			return fmt.Errorf("event %d neither introduces nor fixes a version", k)
		}
	}
	return nil
}

// Withdrawn reports whether the entry has been withdrawn by the database.
// The client returns withdrawn entries (so that a report can say why a
// former finding disappeared); matchers must ignore them.
func Withdrawn(e *osv.Entry) bool {
	return e != nil && e.Withdrawn != nil && !e.Withdrawn.IsZero()
}
