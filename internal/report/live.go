package report

import "slices"

// AddBinary appends b to the report's binaries, unless it is there already.
// Runtime observers call it when they analyse a binary while the report is
// in use.
func (rec *Recorder) AddBinary(b *Binary) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !slices.Contains(rec.r.Binaries, b) {
		rec.r.Binaries = append(rec.r.Binaries, b)
	}
}

// SetDB sets the report's database, for observers that learn it while the
// report is in use.
func (rec *Recorder) SetDB(db DB) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.r.DB = db
}

// AddPID records that process pid runs binary b, even if it never reaches
// a vulnerable symbol.
func (rec *Recorder) AddPID(b *Binary, pid int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if pid != 0 && !slices.Contains(b.PIDs, pid) {
		b.PIDs = append(b.PIDs, pid)
		slices.Sort(b.PIDs)
	}
}

// SetCallsiteHits raises the hits of t's symbol's callsite cs (the same
// function, file and line) to n, an exact count such as the sum of the
// kernel's counters of the return addresses that symbolize to cs, when n is
// larger than the hits recorded for it so far. A callsite the symbol does
// not have yet is added, and a symbol with n > 0 is reached. The symbol's
// total is left to SetHits.
func (rec *Recorder) SetCallsiteHits(t SymbolRef, cs Frame, n uint64) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err := rec.checkRef("set callsite hits", t); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	s := t.Symbol
	if c := callsite(s, cs); n > c.Hits {
		c.Hits = n
	}
	s.Status = Reached
	if t.Finding.Status.Rank() < Reached.Rank() {
		t.Finding.Status = Reached
	}
	return nil
}

// SetHits raises t's symbol's hit total to n, an exact count such as one
// read from the kernel's counters, when n is larger than the hits recorded
// so far (hits recorded one by one are a lower bound of such counts). A
// symbol with n > 0 is reached. The callsites keep the hits recorded for
// them.
func (rec *Recorder) SetHits(t SymbolRef, n uint64) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err := rec.checkRef("set hits", t); err != nil {
		return err
	}
	if n <= t.Symbol.Hits {
		return nil
	}
	t.Symbol.Hits = n
	t.Symbol.Status = Reached
	if t.Finding.Status.Rank() < Reached.Rank() {
		t.Finding.Status = Reached
	}
	return nil
}
