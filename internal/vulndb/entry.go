package vulndb

import (
	"encoding/json"
	"fmt"

	"github.com/reach-sca/reach/internal/osv"
)

// parseEntry parses the OSV entry the database serves for wantID. The entry
// is malformed (ErrMalformed) when it is not JSON, when its ID is not
// wantID, or when an affected module has no path.
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
	}
	return &e, nil
}

// Withdrawn reports whether the entry has been withdrawn by the database.
// The client returns withdrawn entries (so that a report can say why a
// former finding disappeared); matchers must ignore them.
func Withdrawn(e *osv.Entry) bool {
	return e != nil && e.Withdrawn != nil && !e.Withdrawn.IsZero()
}
