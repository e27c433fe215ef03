package cli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/reach-sca/reach/internal/report"
)

// statusReport returns a report with one finding of each status given.
func statusReport(statuses ...report.Status) *report.Report {
	b := &report.Binary{Path: "/srv/app"}
	for i, st := range statuses {
		b.Findings = append(b.Findings, &report.Finding{OSV: fmt.Sprintf("GO-2099-%04d", i), Status: st})
	}
	return &report.Report{Binaries: []*report.Binary{b}}
}

func TestCheckExitCode(t *testing.T) {
	all := statusReport(report.Imported, report.Linked, report.NotWatched, report.Reached)
	noReached := statusReport(report.Imported, report.Linked)
	onlyNotWatched := statusReport(report.NotWatched)
	tests := []struct {
		name      string
		r         *report.Report
		threshold report.Status
		want      int
	}{
		{"reached found", all, report.Reached, ExitFound},
		{"imported found", all, report.Imported, ExitFound},
		{"reached not found", noReached, report.Reached, ExitOK},
		{"linked found", noReached, report.Linked, ExitFound},
		{"not_watched found", all, report.NotWatched, ExitFound},
		// A symbol left out of the targets does not fail -fail-on reached,
		// and fails -fail-on not_watched and linked.
		{"not_watched is not reached", onlyNotWatched, report.Reached, ExitOK},
		{"not_watched at not_watched", onlyNotWatched, report.NotWatched, ExitFound},
		{"not_watched at linked", onlyNotWatched, report.Linked, ExitFound},
		{"linked is not not_watched", noReached, report.NotWatched, ExitOK},
		{"empty report", &report.Report{}, report.Imported, ExitOK},
		{"bad threshold", all, "sometimes", ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(tt.r, tt.threshold)
			if got := exitCode(err); got != tt.want {
				t.Errorf("exitCode(check(%s)) = %d (err %v), want %d", tt.threshold, got, err, tt.want)
			}
			// Wrapping keeps the code.
			if got := exitCode(fmt.Errorf("scan: %w", err)); err != nil && got != tt.want {
				t.Errorf("wrapped: exitCode = %d, want %d", got, tt.want)
			}
		})
	}
	if got := exitCode(errors.New("disk on fire")); got != ExitError {
		t.Errorf("plain error: exit code %d, want %d", got, ExitError)
	}
	var fe *FoundError
	if err := check(all, report.Linked); !errors.As(err, &fe) || fe.Count != 3 || err.Error() != "3 findings linked or worse" {
		t.Errorf("check(linked) = %v", err)
	}
	if err := check(statusReport(report.Reached), report.Linked); err == nil || err.Error() != "1 finding linked or worse" {
		t.Errorf("check(linked) of one reached finding = %v", err)
	}
}
