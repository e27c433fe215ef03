package vulndb

import (
	"errors"
	"strings"
	"testing"
)

func TestParseEntryRanges(t *testing.T) {
	entry := func(events string) []byte {
		return []byte(`{"id":"GO-2099-0001","modified":"2026-01-01T00:00:00Z","affected":[{"package":{"name":"example.com/m","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[` + events + `]}]}]}`)
	}
	tests := []struct {
		events string
		bad    string // in the error; "" for a good entry
	}{
		{`{"introduced":"0"},{"fixed":"1.2.3"}`, ""},
		{`{"introduced":"1.22.0-0"},{"fixed":"1.22.1"}`, ""},
		{`{"introduced":"0"},{"fixed":"0.0.0-20210101000000-abcdef123456"}`, ""},
		{`{"introduced":"zero"}`, `introduced "zero"`},
		{`{"introduced":"0"},{"fixed":"1.x"}`, `fixed "1.x"`},
		{`{"introduced":"0","fixed":"1.0.0"}`, "both"},
		{`{}`, "neither"},
		{`{"introduced":"0"},{"last_affected":"1.0.0"}`, "neither"},
	}
	for _, tt := range tests {
		t.Run(tt.events, func(t *testing.T) {
			_, err := parseEntry(entry(tt.events), "GO-2099-0001")
			if tt.bad == "" {
				if err != nil {
					t.Fatalf("good entry rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.bad) || !strings.Contains(err.Error(), "GO-2099-0001") {
				t.Errorf("error %v: want ErrMalformed naming the entry and %q", err, tt.bad)
			}
		})
	}
	bad := []byte(`{"id":"GO-2099-0001","modified":"2026-01-01T00:00:00Z","affected":[{"package":{"name":"example.com/m","ecosystem":"Go"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}`)
	if _, err := parseEntry(bad, "GO-2099-0001"); !errors.Is(err, ErrMalformed) {
		t.Errorf("ECOSYSTEM range accepted: %v", err)
	}
}
