package fleet

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/report"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		obs        []Observation
		max        int
		parts      int // exactly; 0 for at least 2
		onePerPart bool
	}{
		{"fits", bigObservations(2, 3, 100), 1 << 20, 1, false},
		{"by observation", bigObservations(4, 3, 1000), 7000, 0, true},
		{"by finding", bigObservations(1, 50, 1000), 10000, 0, false},
		{"both", bigObservations(5, 20, 500), 6000, 0, false},
		{"empty", nil, 1 << 20, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBatch()
			b.Applied = &Applied{Version: 3}
			b.Observations = tc.obs
			want := findingKeys(tc.obs)
			parts, err := Split(b, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			if tc.parts > 0 && len(parts) != tc.parts || tc.parts == 0 && len(parts) < 2 {
				t.Fatalf("%d parts, want %d (0: several)", len(parts), tc.parts)
			}
			if tc.parts == 1 && parts[0] != b {
				t.Errorf("a batch that fits is not returned as it is")
			}
			var got []string
			for i, p := range parts {
				js, err := json.Marshal(p)
				if err != nil {
					t.Fatal(err)
				}
				if len(js) > tc.max {
					t.Errorf("part %d: %d bytes, over %d", i, len(js), tc.max)
				}
				if p.Seq != b.Seq+uint64(i) || p.AgentID != b.AgentID || p.Applied == nil || p.Applied.Version != 3 {
					t.Errorf("part %d: seq %d agent %q applied %+v, want seq %d and the batch's agent and applied", i, p.Seq, p.AgentID, p.Applied, b.Seq+uint64(i))
				}
				if tc.onePerPart && len(p.Observations) != 1 {
					t.Errorf("part %d: %d observations, want 1 (two do not fit)", i, len(p.Observations))
				}
				for _, o := range p.Observations {
					if len(o.Binary.Modules) == 0 {
						t.Errorf("part %d: an observation of %s lost its modules", i, o.Binary.Path)
					}
				}
				got = append(got, findingKeys(p.Observations)...)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("the parts hold\n%v\nwant the batch's findings in order\n%v", got, want)
			}
			if strings.Join(findingKeys(b.Observations), ",") != strings.Join(want, ",") {
				t.Errorf("Split changed the batch's observations")
			}
		})
	}
}

func TestSplitTooLarge(t *testing.T) {
	b := testBatch()
	b.Observations = bigObservations(1, 3, 5000)
	_, err := Split(b, 4000)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "GO-0-0000") || !strings.Contains(err.Error(), "/bin/p0") {
		t.Errorf("a finding over the limit: %v, want ErrTooLarge naming it", err)
	}
	b.Observations = nil
	b.Agent.Labels = map[string]string{"x": strings.Repeat("y", 5000)}
	if _, err := Split(b, 4000); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a batch too large without observations: %v, want ErrTooLarge", err)
	}
}

// TestSplitLimits checks the server's other bounds: observations and
// finding rows per batch.
func TestSplitLimits(t *testing.T) {
	reached := func(osv string, callsites int) *report.Finding {
		s := &report.Symbol{Package: "p", Name: "F", Status: report.Reached}
		for i := range callsites {
			s.Callsites = append(s.Callsites, &report.Callsite{Function: "main.f", File: "m.go", Line: i + 1, Hits: 1})
		}
		return &report.Finding{OSV: osv, Module: "m", Version: "v1.0.0", Status: report.Reached,
			Symbols: []*report.Symbol{s, {Package: "p", Name: "G", Status: report.Linked}}}
	}
	manyObs := bigObservations(2500, 1, 10)
	oneBig := []Observation{{Instance: "i", Mode: "run", Binary: &report.Binary{Path: "/bin/x", Modules: []report.Module{{Path: "m", Version: "v1.0.0"}},
		Findings: []*report.Finding{reached("GO-1", 9000), reached("GO-2", 9000), reached("GO-3", 9000)}}}}
	for _, tc := range []struct {
		name  string
		obs   []Observation
		parts int
	}{
		{"observations", manyObs, 3},
		{"rows", oneBig, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBatch()
			b.Observations = tc.obs
			want := findingKeys(tc.obs)
			parts, err := Split(b, MaxBatchBytes)
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != tc.parts {
				t.Errorf("%d parts, want %d", len(parts), tc.parts)
			}
			var got []string
			for i, p := range parts {
				if n := len(p.Observations); n > MaxBatchObservations {
					t.Errorf("part %d: %d observations", i, n)
				}
				if n := batchRows(p.Observations); n > MaxBatchRows {
					t.Errorf("part %d: %d rows", i, n)
				}
				got = append(got, findingKeys(p.Observations)...)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("the parts do not hold the batch's findings in order")
			}
		})
	}
	if n := Rows(reached("GO-1", 3)); n != 4 {
		t.Errorf("Rows of a symbol reached from 3 callsites and one linked = %d, want 4", n)
	}
	oneShot := reached("GO-1", 1)
	oneShot.Symbols[0].Hits = 8 // one-shot: the first hit's callsite only
	if n := Rows(oneShot); n != 3 {
		t.Errorf("Rows of a symbol hit 8 times from 1 recorded callsite and one linked = %d, want 3", n)
	}
	if n := Rows(&report.Finding{OSV: "GO-1", Status: report.Imported}); n != 1 {
		t.Errorf("Rows of a finding without symbols = %d, want 1", n)
	}
}
