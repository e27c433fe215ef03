package report

import (
	"errors"
	"testing"
)

func TestRecorderLive(t *testing.T) {
	r, tgt := linkedTarget()
	rec := NewRecorder(r)

	nb := &Binary{Path: "/srv/bin/new"}
	rec.AddBinary(nb)
	rec.AddBinary(nb)
	if n := len(r.Binaries); n != 3 {
		t.Errorf("%d binaries after adding one twice, want 3", n)
	}
	rec.AddPID(nb, 12)
	rec.AddPID(nb, 5)
	rec.AddPID(nb, 12)
	rec.AddPID(nb, 0)
	if got := nb.PIDs; len(got) != 2 || got[0] != 5 || got[1] != 12 {
		t.Errorf("pids = %v, want [5 12]", got)
	}

	// Hits recorded one by one are a lower bound of the kernel's count.
	if err := rec.Record(tgt, Hit{Time: *ts(1), Callsite: &Frame{Function: "main.f", File: "m.go", Line: 3}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ set, want uint64 }{{40, 40}, {10, 40}, {41, 41}} {
		if err := rec.SetHits(tgt, tt.set); err != nil {
			t.Fatal(err)
		}
		if tgt.Symbol.Hits != tt.want {
			t.Errorf("SetHits(%d): hits %d, want %d", tt.set, tgt.Symbol.Hits, tt.want)
		}
	}
	if tgt.Symbol.Callsites[0].Hits != 1 {
		t.Errorf("SetHits changed callsite hits to %d", tgt.Symbol.Callsites[0].Hits)
	}

	// A count alone marks a linked symbol reached.
	b := r.Binaries[0]
	f := b.Findings[3]
	if err := rec.SetHits(Target{b, f, f.Symbols[0]}, 3); err != nil {
		t.Fatal(err)
	}
	if f.Status != Reached || f.Symbols[0].Status != Reached {
		t.Errorf("after SetHits: finding %s, symbol %s", f.Status, f.Symbols[0].Status)
	}
	if err := rec.SetHits(Target{b, f, tgt.Symbol}, 3); !errors.Is(err, ErrUnknownTarget) {
		t.Errorf("SetHits on a foreign symbol: err = %v", err)
	}
	if err := rec.SetHits(Target{nb, f, f.Symbols[0]}, 9); !errors.Is(err, ErrUnknownTarget) {
		t.Errorf("SetHits on a finding of another binary: err = %v", err)
	}
}
