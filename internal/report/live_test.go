package report

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestRecorderLive(t *testing.T) {
	r, tgt := linkedRef()
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
	if err := rec.SetHits(SymbolRef{b, f, f.Symbols[0]}, 3); err != nil {
		t.Fatal(err)
	}
	if f.Status != Reached || f.Symbols[0].Status != Reached {
		t.Errorf("after SetHits: finding %s, symbol %s", f.Status, f.Symbols[0].Status)
	}
	if err := rec.SetHits(SymbolRef{b, f, tgt.Symbol}, 3); !errors.Is(err, ErrUnknownSymbol) {
		t.Errorf("SetHits on a foreign symbol: err = %v", err)
	}
	if err := rec.SetHits(SymbolRef{nb, f, f.Symbols[0]}, 9); !errors.Is(err, ErrUnknownSymbol) {
		t.Errorf("SetHits on a finding of another binary: err = %v", err)
	}
}

func TestSetCallsiteHits(t *testing.T) {
	a5 := Frame{Function: "main.a", File: "/app/main.go", Line: 5}
	a7 := Frame{Function: "main.a", File: "/app/main.go", Line: 7}
	b3 := Frame{Function: "main.b", File: "/app/main.go", Line: 3}
	type set struct {
		cs Frame
		n  uint64
	}
	tests := []struct {
		name     string
		recorded []Frame // callsites of hits recorded one by one
		sets     []set
		want     []Callsite
	}{
		{
			name:     "raises a recorded callsite",
			recorded: []Frame{a5},
			sets:     []set{{a5, 5000}},
			want:     []Callsite{{"main.a", "/app/main.go", 5, 5000}},
		},
		{
			name:     "never lowers",
			recorded: []Frame{a5, a5, a5},
			sets:     []set{{a5, 2}},
			want:     []Callsite{{"main.a", "/app/main.go", 5, 3}},
		},
		{
			name:     "each callsite its own",
			recorded: []Frame{a7, a5},
			sets:     []set{{a7, 10}, {a5, 20}, {a7, 11}},
			want:     []Callsite{{"main.a", "/app/main.go", 5, 20}, {"main.a", "/app/main.go", 7, 11}},
		},
		{
			name:     "adds a callsite not recorded, in order",
			recorded: []Frame{a7},
			sets:     []set{{b3, 4}},
			want:     []Callsite{{"main.b", "/app/main.go", 3, 4}, {"main.a", "/app/main.go", 7, 1}},
		},
		{
			name: "zero adds nothing",
			sets: []set{{a5, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, tgt := linkedRef()
			rec := NewRecorder(r)
			for _, f := range tt.recorded {
				if err := rec.Record(tgt, Hit{Callsite: &f}); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range tt.sets {
				if err := rec.SetCallsiteHits(tgt, s.cs, s.n); err != nil {
					t.Fatal(err)
				}
			}
			var got []Callsite
			for _, c := range tgt.Symbol.Callsites {
				got = append(got, *c)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("callsites %+v, want %+v", got, tt.want)
			}
			if hits := uint64(len(tt.recorded)); tgt.Symbol.Hits != hits {
				t.Errorf("symbol hits %d changed, want %d", tgt.Symbol.Hits, hits)
			}
			reached := len(tt.want) > 0
			if (tgt.Symbol.Status == Reached) != reached || (tgt.Finding.Status == Reached) != reached {
				t.Errorf("symbol %s, finding %s; want reached %v", tgt.Symbol.Status, tgt.Finding.Status, reached)
			}
		})
	}

	r, tgt := linkedRef()
	rec := NewRecorder(r)
	b := r.Binaries[0]
	f := b.Findings[3]
	if err := rec.SetCallsiteHits(SymbolRef{b, f, tgt.Symbol}, a5, 3); !errors.Is(err, ErrUnknownSymbol) {
		t.Errorf("SetCallsiteHits on a foreign symbol: err = %v", err)
	}
	if err := rec.SetCallsiteHits(SymbolRef{tgt.Binary, f, f.Symbols[0]}, a5, 3); !errors.Is(err, ErrUnknownSymbol) {
		t.Errorf("SetCallsiteHits on a finding of another binary: err = %v", err)
	}
	if err := rec.SetCallsiteHits(SymbolRef{Binary: b}, a5, 3); !errors.Is(err, ErrUnknownSymbol) {
		t.Errorf("SetCallsiteHits on an incomplete reference: err = %v", err)
	}
	if len(f.Symbols[0].Callsites) != 0 || len(tgt.Symbol.Callsites) != 0 {
		t.Error("a refused SetCallsiteHits changed callsites")
	}
}

func TestSetDB(t *testing.T) {
	r := &Report{Schema: Schema}
	rec := NewRecorder(r)
	want := DB{Source: "https://vuln.go.dev", Modified: time.Date(2026, 8, 21, 0, 0, 0, 0, time.UTC)}
	rec.SetDB(want)
	if got := rec.Snapshot().DB; got != want {
		t.Errorf("DB = %+v, want %+v", got, want)
	}
}
