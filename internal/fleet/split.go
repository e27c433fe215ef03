package fleet

import (
	"encoding/json"
	"fmt"

	"github.com/reach-sca/reach/internal/report"
)

// Split returns b as batches whose JSON bodies are at most max bytes each,
// numbered from b.Seq on: each has b's agent, time and Applied, and some of
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
	if len(whole) <= max {
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
	var pieces []Observation
	var sizes []int
	for _, o := range b.Observations {
		ps, ss, err := splitObservation(o, room)
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", b.Seq, err)
		}
		pieces = append(pieces, ps...)
		sizes = append(sizes, ss...)
	}
	var parts []*Batch
	used := room + 1 // start a part with the first piece
	for i, p := range pieces {
		if used+1+sizes[i] > room {
			part := head
			part.Seq = b.Seq + uint64(len(parts))
			parts = append(parts, &part)
			used = -1 // no comma before the first
		}
		last := parts[len(parts)-1]
		last.Observations = append(last.Observations, p)
		used += 1 + sizes[i]
	}
	return parts, nil
}

// splitObservation returns o as observations of at most room bytes of
// JSON each, with their sizes.
func splitObservation(o Observation, room int) ([]Observation, []int, error) {
	js, err := json.Marshal(&o)
	if err != nil {
		return nil, nil, err
	}
	if len(js) <= room {
		return []Observation{o}, []int{len(js)}, nil
	}
	if o.Binary == nil || len(o.Binary.Findings) == 0 {
		return nil, nil, fmt.Errorf("%w: an observation of %s without findings is %d bytes, the server takes at most %d in a batch", ErrTooLarge, binaryName(o.Binary), len(js), room)
	}
	shell := o
	bin := *o.Binary
	bin.Findings = nil
	shell.Binary = &bin
	base, err := json.Marshal(&shell)
	if err != nil {
		return nil, nil, err
	}
	// "findings":null becomes "findings":[ ... ].
	overhead := len(base) - len("null") + len("[]")
	var (
		out   []Observation
		sizes []int
		cur   []*report.Finding
		used  int
	)
	flush := func() {
		if len(cur) == 0 {
			return
		}
		part := o
		pb := *o.Binary
		pb.Findings = cur
		part.Binary = &pb
		out = append(out, part)
		sizes = append(sizes, overhead+used)
		cur, used = nil, 0
	}
	for _, f := range o.Binary.Findings {
		fj, err := json.Marshal(f)
		if err != nil {
			return nil, nil, err
		}
		n := len(fj)
		if len(cur) > 0 {
			n++ // the comma
		}
		if overhead+used+n > room && len(cur) > 0 {
			flush()
			n = len(fj)
		}
		if overhead+n > room {
			return nil, nil, fmt.Errorf("%w: finding %s of %s alone is %d bytes, the server takes at most %d in a batch", ErrTooLarge, f.OSV, binaryName(o.Binary), overhead+n, room)
		}
		cur = append(cur, f)
		used += n
	}
	flush()
	return out, sizes, nil
}

func binaryName(b *report.Binary) string {
	if b == nil {
		return "no binary"
	}
	return b.Name()
}
