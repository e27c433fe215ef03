package observe

import (
	"time"

	"github.com/reach-sca/reach/internal/probe"
	"github.com/reach-sca/reach/internal/report"
)

// Event is one hit as the session recorded it, for callers that stream
// hits as they happen (reach run -stream).
type Event struct {
	Time   time.Time `json:"time"`
	PID    int       `json:"pid"`
	TID    int       `json:"tid,omitempty"`
	Binary string    `json:"binary"`
	OSV    string    `json:"osv"`
	Module string    `json:"module"`
	// Package and Symbol are as the OSV entry spells them; Symbol is ""
	// when the entry names the whole package.
	Package string `json:"package"`
	Symbol  string `json:"symbol"`
	// Kind is "first" for a symbol's first hit in a process and "callsite"
	// for a later hit from a new caller (count mode).
	Kind     string        `json:"kind"`
	Callsite *report.Frame `json:"callsite,omitempty"`
	// Lost is true when the kernel dropped the hit's details: only the
	// fact of the hit is known.
	Lost bool `json:"lost,omitempty"`
}

func newEvent(g *group, h probe.Hit, rh report.Hit) Event {
	kind := "first"
	if h.Callsite {
		kind = "callsite"
	}
	return Event{
		Time:     h.Time,
		PID:      h.PID,
		TID:      h.TID,
		Binary:   g.bin.bin.Path,
		OSV:      g.osv,
		Module:   g.module,
		Package:  g.pkg,
		Symbol:   g.name,
		Kind:     kind,
		Callsite: rh.Callsite,
		Lost:     h.Lost,
	}
}
