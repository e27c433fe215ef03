package reliability

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/reach-sca/reach/internal/report"
)

// wantSymbols are the fixture database's symbols, per entry, as every
// report on a stress binary must list them.
var wantSymbols = map[string][]string{
	"GO-2099-0101": {"Digest", "Mix"},
	"GO-2099-0102": {"Leaf", "Unused"},
}

// reportStats counts what checkReport saw.
type reportStats struct {
	reached int // reached symbols
	// counted are reached symbols known only from the kernel's counters:
	// hits but no first-seen time, callsite or stack, because the hit's
	// record was not read before the probes went away.
	counted int
}

// checkReport decodes a reach/v1 JSON report and checks that it has the
// expected findings for each binary in pids (path to PIDs): both entries,
// every symbol, Unused never reached, and every reached symbol with hits
// and either a first-seen time and callsites in package main, or (known
// only from the counters) neither.
func checkReport(rd io.Reader, pids map[string][]int) (st reportStats, err error) {
	r, err := report.ReadJSON(rd)
	if err != nil {
		return st, err
	}
	if r.Mode != "attach" && r.Mode != "run" {
		return st, fmt.Errorf("mode %q, want attach or run", r.Mode)
	}
	if len(r.Binaries) != len(pids) {
		return st, fmt.Errorf("report has %d binaries, want %d", len(r.Binaries), len(pids))
	}
	for _, b := range r.Binaries {
		want, ok := pids[b.Path]
		if !ok {
			return st, fmt.Errorf("report has unexpected binary %s", b.Path)
		}
		if !slices.Equal(b.PIDs, want) {
			return st, fmt.Errorf("%s: PIDs %v, want %v", b.Path, b.PIDs, want)
		}
		if len(b.Findings) != len(wantSymbols) {
			return st, fmt.Errorf("%s: %d findings, want %d", b.Path, len(b.Findings), len(wantSymbols))
		}
		for _, f := range b.Findings {
			names, ok := wantSymbols[f.OSV]
			if !ok {
				return st, fmt.Errorf("%s: unexpected finding %s", b.Path, f.OSV)
			}
			var got []string
			for _, s := range f.Symbols {
				got = append(got, s.Name)
				if s.Package != "example.com/hazard" {
					return st, fmt.Errorf("%s %s: symbol %s in package %q", b.Path, f.OSV, s.Name, s.Package)
				}
				if s.Status != report.Reached {
					if s.Hits != 0 || len(s.Callsites) > 0 {
						return st, fmt.Errorf("%s %s.%s: status %s with %d hits and %d callsites", b.Path, f.OSV, s.Name, s.Status, s.Hits, len(s.Callsites))
					}
					continue
				}
				st.reached++
				if s.Name == "Unused" {
					return st, fmt.Errorf("%s: Unused reached, but the program never calls it", b.Path)
				}
				if s.Hits == 0 {
					return st, fmt.Errorf("%s %s.%s: reached with 0 hits", b.Path, f.OSV, s.Name)
				}
				if s.FirstSeen == nil {
					if len(s.Callsites) > 0 || len(s.Stack) > 0 {
						return st, fmt.Errorf("%s %s.%s: callsites or stack without a first-seen time", b.Path, f.OSV, s.Name)
					}
					st.counted++
				}
				for _, c := range s.Callsites {
					if !strings.HasPrefix(c.Function, "main.") {
						return st, fmt.Errorf("%s %s.%s: callsite %s outside package main", b.Path, f.OSV, s.Name, c.Function)
					}
				}
				if f.Status != report.Reached {
					return st, fmt.Errorf("%s %s: status %s with symbol %s reached", b.Path, f.OSV, f.Status, s.Name)
				}
			}
			if !slices.Equal(got, names) {
				return st, fmt.Errorf("%s %s: symbols %v, want %v", b.Path, f.OSV, got, names)
			}
		}
	}
	return st, nil
}

// roundTrip writes r as JSON and checks what reads back.
func roundTrip(r *report.Report, pids map[string][]int) (reportStats, error) {
	var buf bytes.Buffer
	if err := report.WriteJSON(&buf, r); err != nil {
		return reportStats{}, err
	}
	return checkReport(&buf, pids)
}
