package export

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// CSVColumns are the columns of the CSV export, one row per finding (a
// service's binary, an OSV entry, a symbol and a callsite):
//
//	id                    the finding's ID on the server
//	service               the service
//	environments          the environments it was seen in, separated by "; "
//	hosts                 the hosts it was seen on, separated by "; "
//	build_id              the binary's Go build ID
//	binary                the binary's path
//	osv                   the OSV ID
//	aliases               CVE and GHSA IDs, separated by "; "
//	summary               the OSV entry's summary
//	module                the vulnerable module ("stdlib" for Go's standard library)
//	version               its version in the binary
//	fixed_version         the version that fixes it; "" when none does
//	upgrade               the command that upgrades to it ("go get MODULE@FIXED"); "" when none
//	package               the vulnerable package
//	symbol                the vulnerable symbol; "" for a whole package or module
//	status                reached, not_watched, linked or imported
//	callsite_function     the function that called the symbol (reached only)
//	callsite_file         its file
//	callsite_line         its line; "" without callsite
//	hits                  calls counted
//	hits_lower_bound      "true" when hits counts at least, not exactly, the calls
//	first_seen            RFC 3339, UTC
//	last_seen             RFC 3339, UTC
//	first_reached         RFC 3339, UTC; "" when not reached
//	triage_state          under_investigation, affected, not_affected, fixed; "" when none
//	triage_justification  the OpenVEX justification of not_affected
//	triage_note           the note
//	triage_by             who set it ("reach" for the automatic affected of a reached finding)
//	triage_at             RFC 3339, UTC
//	triage_expires        RFC 3339, UTC; "" when it does not expire
//
// A cell that starts with =, +, -, @, a tab or a carriage return is
// prefixed with ' so that a spreadsheet shows it as text and never runs
// it as a formula.
var CSVColumns = []string{
	"id", "service", "environments", "hosts", "build_id", "binary",
	"osv", "aliases", "summary", "module", "version", "fixed_version", "upgrade",
	"package", "symbol", "status", "callsite_function", "callsite_file", "callsite_line",
	"hits", "hits_lower_bound", "first_seen", "last_seen", "first_reached",
	"triage_state", "triage_justification", "triage_note", "triage_by", "triage_at", "triage_expires",
}

// CSVWriter writes findings as CSV (CSVColumns), the header first.
type CSVWriter struct {
	w      *csv.Writer
	header bool
}

// NewCSVWriter returns a CSVWriter writing to w.
func NewCSVWriter(w io.Writer) *CSVWriter {
	return &CSVWriter{w: csv.NewWriter(w)}
}

// Write writes the rows of findings (and the header before the first).
func (c *CSVWriter) Write(findings []store.Finding) error {
	if !c.header {
		c.header = true
		if err := c.w.Write(CSVColumns); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	for i := range findings {
		if err := c.w.Write(csvRow(&findings[i])); err != nil {
			return fmt.Errorf("write csv: finding %d: %w", findings[i].ID, err)
		}
	}
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// Close writes the header if no finding was written, and flushes.
func (c *CSVWriter) Close() error {
	return c.Write(nil)
}

func csvRow(f *store.Finding) []string {
	var fn, file, line string
	if c := f.Callsite; c != nil {
		fn, file = c.Function, c.File
		if c.Line > 0 {
			line = strconv.Itoa(c.Line)
		}
	}
	row := []string{
		strconv.FormatInt(f.ID, 10), f.Service, strings.Join(f.Environments, "; "), strings.Join(f.Hosts, "; "),
		f.BuildID, f.BinaryPath,
		f.OSV, strings.Join(f.Aliases, "; "), f.Summary, f.Module, f.Version, f.FixedVersion, upgradeCommand(f),
		f.Package, f.Symbol, string(f.Status), fn, file, line,
		strconv.FormatUint(f.Hits, 10), strconv.FormatBool(f.HitsLowerBound),
		stamp(&f.FirstSeen), stamp(&f.LastSeen), stamp(f.FirstReached),
		f.Triage.State, f.Triage.Justification, f.Triage.Note, f.Triage.By, stamp(f.Triage.At), stamp(f.Triage.Expires),
	}
	for i, cell := range row {
		row[i] = csvSafe(cell)
	}
	return row
}

// csvSafe keeps a spreadsheet from taking a cell for a formula (CSV
// injection): a cell starting with =, +, -, @, a tab or a carriage return
// gets a ' before it.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// stamp is t in RFC 3339, UTC; "" for nil or the zero time.
func stamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// upgradeCommand is the command that fixes the finding, as reach's report
// advises it ("go get golang.org/x/text@v0.3.8", "go get
// toolchain@go1.26.9" for Go); "" when there is no fixed version.
func upgradeCommand(f *store.Finding) string {
	r := report.Report{Binaries: []*report.Binary{{Findings: []*report.Finding{{
		OSV: f.OSV, Module: f.Module, Version: f.Version, FixedVersion: f.FixedVersion,
	}}}}}
	for _, u := range r.UpgradeAdvice() {
		return u.Command
	}
	return ""
}
