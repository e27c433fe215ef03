package report

import (
	"errors"
	"fmt"
)

// ErrBadStatus reports a status name that is not reached, not_watched,
// linked or imported.
var ErrBadStatus = errors.New("unknown status")

// Statuses lists the statuses from the most to the least severe.
var Statuses = []Status{Reached, NotWatched, Linked, Imported}

// ParseStatus parses a status name as a user writes it for a threshold.
func ParseStatus(s string) (Status, error) {
	for _, st := range Statuses {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("status %q: %w: use reached, not_watched, linked or imported", s, ErrBadStatus)
}

// Counts is the number of findings of each status.
type Counts struct {
	Reached, NotWatched, Linked, Imported int
	Binaries                              int
}

// Counts counts the report's findings by status, over all binaries.
func (r *Report) Counts() Counts {
	c := Counts{Binaries: len(r.Binaries)}
	for _, b := range r.Binaries {
		for _, f := range b.Findings {
			switch f.Status {
			case Reached:
				c.Reached++
			case NotWatched:
				c.NotWatched++
			case Linked:
				c.Linked++
			case Imported:
				c.Imported++
			}
		}
	}
	return c
}

// Count returns the number of findings, over all binaries, whose status
// ranks at or above threshold. A finding is one OSV entry in one binary.
// A threshold that is no valid status counts every finding.
func (r *Report) Count(threshold Status) int {
	min := threshold.Rank()
	if min == 0 {
		min = Imported.Rank()
	}
	n := 0
	for _, b := range r.Binaries {
		for _, f := range b.Findings {
			if f.Status.Rank() >= min {
				n++
			}
		}
	}
	return n
}
