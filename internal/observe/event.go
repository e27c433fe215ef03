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
	// for a later call from a callsite not streamed yet (count mode). The
	// first hit may be no call (code the compiler generated inside the
	// symbol ran): its Callsite is then nil.
	Kind     string        `json:"kind"`
	Callsite *report.Frame `json:"callsite,omitempty"`
	// Lost is true when the kernel dropped the hit's details: only the
	// fact of the hit is known.
	Lost bool `json:"lost,omitempty"`
}

// newEvent is hit rh of g as an Event of kind (see Session.streamKind).
// An uncounted hit has no callsite: it is no call of the symbol.
func newEvent(g *group, h probe.Hit, rh report.Hit, kind string) Event {
	cs := rh.Callsite
	if rh.Uncounted {
		cs = nil
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
		Callsite: cs,
		Lost:     h.Lost,
	}
}
