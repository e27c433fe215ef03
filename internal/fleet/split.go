package fleet

import (
	"encoding/json"
	"fmt"

	"github.com/reach-sca/reach/internal/report"
)

// The server's bounds on a batch besides its size (internal/server/store
// refuses a batch over either with 400): observations, and finding rows,
// one for a finding without symbols, for a symbol not reached, for each
// callsite of a reached symbol, and for its hits no callsite was recorded
// for (Rows).
const (
	MaxBatchObservations = 1000
	MaxBatchRows         = 20000
)

// Rows returns the finding rows f updates on the server.
func Rows(f *report.Finding) int {
	if f == nil || len(f.Symbols) == 0 {
		return 1
	}
	n := 0
	for _, s := range f.Symbols {
		if s == nil || s.Status != report.Reached || len(s.Callsites) == 0 {
			n++
			continue
		}
		n += len(s.Callsites)
		var attributed uint64
		for _, c := range s.Callsites {
			if c != nil {
				attributed += c.Hits
			}
		}
		if s.Hits > attributed {
			n++ // the hits no callsite was recorded for
		}
	}
	return n
}

// Split returns b as batches whose JSON bodies are at most max bytes each,
// with at most MaxBatchObservations observations and MaxBatchRows finding
// rows, numbered from b.Seq on: each has b's agent, time and Applied, and some of
// its observations, in order. An observation too large for one batch is
// split by findings (its binary and modules repeated in each part, with the
// same Instance: a finding's hits are still its instance's totals). A
// batch that fits is returned alone, as it is. A finding that alone does
// not fit is an error (ErrTooLarge).
func Split(b *Batch, max int) ([]*Batch, error) {
	whole, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	if len(whole) <= max && len(b.Observations) <= MaxBatchObservations && batchRows(b.Observations) <= MaxBatchRows {
		return []*Batch{b}, nil
	}
	head := *b
	head.Observations = nil
	base, err := json.Marshal(&head)
	if err != nil {
		return nil, err
	}
	// `,"observations":[` and `]` around the observations, a comma
	// between two.
	overhead := len(base) + len(`,"observations":[]`)
	room := max - overhead
	if len(b.Observations) == 0 || room <= 0 {
		return nil, fmt.Errorf("batch %d: %w: %d bytes without observations, the server takes at most %d", b.Seq, ErrTooLarge, len(base), max)
	}
	var pieces []piece
	for _, o := range b.Observations {
		ps, err := splitObservation(o, room)
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", b.Seq, err)
		}
		pieces = append(pieces, ps...)
	}
	var (
		parts      []*Batch
		used, rows int
	)
	for _, p := range pieces {
		last := len(parts) - 1
		if last < 0 || used+1+p.size > room || rows+p.rows > MaxBatchRows || len(parts[last].Observations) == MaxBatchObservations {
			part := head
			part.Seq = b.Seq + uint64(len(parts))
			parts = append(parts, &part)
			last++
			used, rows = -1, 0 // no comma before the first
		}
		parts[last].Observations = append(parts[last].Observations, p.o)
		used += 1 + p.size
		rows += p.rows
	}
	return parts, nil
}

// piece is an observation, or part of one, with its size in JSON and its
// finding rows.
type piece struct {
	o          Observation
	size, rows int
}

func batchRows(obs []Observation) int {
	n := 0
	for _, o := range obs {
		if o.Binary != nil {
			for _, f := range o.Binary.Findings {
				n += Rows(f)
			}
		}
	}
	return n
}

// splitObservation returns o as pieces of at most room bytes of JSON and
// MaxBatchRows finding rows each.
func splitObservation(o Observation, room int) ([]piece, error) {
	js, err := json.Marshal(&o)
	if err != nil {
		return nil, err
	}
	rows := batchRows([]Observation{o})
	if len(js) <= room && rows <= MaxBatchRows {
		return []piece{{o, len(js), rows}}, nil
	}
	if o.Binary == nil || len(o.Binary.Findings) == 0 {
		return nil, fmt.Errorf("%w: an observation of %s without findings is %d bytes, the server takes at most %d in a batch", ErrTooLarge, binaryName(o.Binary), len(js), room)
	}
	shell := o
	bin := *o.Binary
	bin.Findings = nil
	shell.Binary = &bin
	base, err := json.Marshal(&shell)
	if err != nil {
		return nil, err
	}
	// "findings":null becomes "findings":[ ... ].
	overhead := len(base) - len("null") + len("[]")
	var (
		out  []piece
		cur  []*report.Finding
		used int
		n    int // rows of cur
	)
	flush := func() {
		if len(cur) == 0 {
			return
		}
		part := o
		pb := *o.Binary
		pb.Findings = cur
		part.Binary = &pb
		out = append(out, piece{part, overhead + used, n})
		cur, used, n = nil, 0, 0
	}
	for _, f := range o.Binary.Findings {
		fj, err := json.Marshal(f)
		if err != nil {
			return nil, err
		}
		size, fr := len(fj), Rows(f)
		if len(cur) > 0 && (overhead+used+1+size > room || n+fr > MaxBatchRows) {
			flush()
		}
		if overhead+size > room || fr > MaxBatchRows {
			return nil, fmt.Errorf("%w: finding %s of %s alone is %d bytes and %d rows, the server takes at most %d bytes and %d rows in a batch", ErrTooLarge, f.OSV, binaryName(o.Binary), overhead+size, fr, room, MaxBatchRows)
		}
		if len(cur) > 0 {
			used++ // the comma
		}
		cur = append(cur, f)
		used += size
		n += fr
	}
	flush()
	return out, nil
}

func binaryName(b *report.Binary) string {
	if b == nil {
		return "no binary"
	}
	return b.Name()
}
