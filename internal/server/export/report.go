package export

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// toolName names reach server in the documents it writes.
const toolName = "reach server"

// serviceReport is a service's findings in reach's report model, so that
// the report package's SARIF and OpenVEX writers can take them: a binary
// per build ID (with what the server knows of it from bins), a finding
// per OSV entry in a binary, a symbol per package and symbol with the
// callsites of its rows. from maps each report finding back to the rows
// it was made of.
type serviceReport struct {
	r    *report.Report
	from map[*report.Finding][]*store.Finding
}

func newServiceReport(bins []store.Binary, rows []store.Finding) *serviceReport {
	sr := &serviceReport{
		r:    &report.Report{Schema: report.Schema, Tool: report.Tool{Name: toolName}, Mode: "server", Binaries: []*report.Binary{}},
		from: map[*report.Finding][]*store.Finding{},
	}
	sorted := make([]*store.Finding, len(rows))
	for i := range rows {
		sorted[i] = &rows[i]
	}
	slices.SortStableFunc(sorted, func(a, b *store.Finding) int {
		return cmp.Or(strings.Compare(a.BuildID, b.BuildID), strings.Compare(a.OSV, b.OSV),
			strings.Compare(a.Package, b.Package), strings.Compare(a.Symbol, b.Symbol),
			cmp.Compare(callsiteKey(a), callsiteKey(b)))
	})
	binaries := map[string]*report.Binary{}
	findings := map[[2]string]*report.Finding{}
	symbols := map[[4]string]*report.Symbol{}
	for _, row := range sorted {
		b := binaries[row.BuildID]
		if b == nil {
			b = binaryOf(bins, row)
			binaries[row.BuildID] = b
			sr.r.Binaries = append(sr.r.Binaries, b)
		}
		fk := [2]string{row.BuildID, row.OSV}
		f := findings[fk]
		if f == nil {
			f = &report.Finding{
				OSV: row.OSV, Aliases: slices.Clone(row.Aliases), Summary: row.Summary,
				Module: row.Module, Version: row.Version, FixedVersion: row.FixedVersion,
			}
			findings[fk] = f
			b.Findings = append(b.Findings, f)
		}
		sr.from[f] = append(sr.from[f], row)
		if row.Status.Rank() > f.Status.Rank() {
			f.Status = row.Status
		}
		if row.Scope == string(report.ScopeModule) {
			f.WholeModule = true
		}
		if row.Status == report.Imported {
			continue // no symbol of it is in the binary
		}
		sk := [4]string{row.BuildID, row.OSV, row.Package, row.Symbol}
		s := symbols[sk]
		if s == nil {
			s = &report.Symbol{Package: row.Package, Name: row.Symbol, Scope: report.Scope(row.Scope)}
			symbols[sk] = s
			f.Symbols = append(f.Symbols, s)
		}
		addRow(s, row)
	}
	for _, rows := range sr.from {
		for _, row := range rows {
			if last := row.LastSeen; last.After(sr.r.Finished) {
				sr.r.Finished = last
			}
			if at := row.Triage.At; at != nil && at.After(sr.r.Finished) {
				sr.r.Finished = *at
			}
		}
	}
	return sr
}

// callsiteKey orders rows by callsite, the row without one first.
func callsiteKey(f *store.Finding) string {
	if f.Callsite == nil {
		return ""
	}
	return fmt.Sprintf("%s\x00%s\x00%09d", f.Callsite.Function, f.Callsite.File, f.Callsite.Line)
}

// binaryOf is the report binary of row's build, from what bins says of it.
func binaryOf(bins []store.Binary, row *store.Finding) *report.Binary {
	b := &report.Binary{Path: row.BinaryPath, BuildID: row.BuildID, Modules: []report.Module{}}
	if i := slices.IndexFunc(bins, func(sb store.Binary) bool { return sb.BuildID == row.BuildID }); i >= 0 {
		sb := bins[i]
		if sb.Path != "" {
			b.Path = sb.Path
		}
		b.GoVersion, b.MainModule, b.MainVersion = sb.GoVersion, sb.MainModule, sb.MainVersion
		b.Stripped, b.PIE = sb.Stripped, sb.PIE
		if sb.Modules != nil {
			b.Modules = sb.Modules
		}
	}
	return b
}

// addRow adds a row of the server's (one callsite of a symbol, or its row
// without callsite) to the symbol.
func addRow(s *report.Symbol, row *store.Finding) {
	if row.Status.Rank() > s.Status.Rank() {
		s.Status = row.Status
	}
	s.Hits += row.Hits
	s.HitsLowerBound = s.HitsLowerBound || row.HitsLowerBound
	if s.Stack == nil && len(row.Stack) > 0 {
		s.Stack = row.Stack
	}
	if first := row.FirstReached; first != nil && (s.FirstSeen == nil || first.Before(*s.FirstSeen)) {
		t := *first
		s.FirstSeen = &t
	}
	if row.Status == report.Reached && (s.LastSeen == nil || row.LastSeen.After(*s.LastSeen)) {
		t := row.LastSeen
		s.LastSeen = &t
	}
	if c := row.Callsite; c != nil {
		cs := *c
		cs.Hits = row.Hits
		s.Callsites = append(s.Callsites, &cs)
	}
}

// triageOf is the row's triage in force at now: none once it expired.
func triageOf(row *store.Finding, now time.Time) store.Triage {
	t := row.Triage
	if t.Expires != nil && !t.Expires.After(now) {
		return store.Triage{}
	}
	return t
}

// decision is the OpenVEX decision about a report finding: its rows'
// triage, the most cautious of them. A row without triage is affected
// when its code is in the binary (reached, not_watched, linked), and under
// investigation when only its module version is (imported): nothing
// states not_affected but a person.
func (sr *serviceReport) decision(f *report.Finding, now time.Time) *report.VEXDecision {
	var d report.VEXDecision
	rank := map[string]int{report.VEXAffected: 4, report.VEXUnderInvestigation: 3, report.VEXFixed: 2, report.VEXNotAffected: 1}
	var notes, impacts []string
	for _, row := range sr.from[f] {
		t := triageOf(row, now)
		state := t.State
		switch {
		case state == store.StateNone && row.Status == report.Imported:
			state = store.StateUnderInvestigation
			if n := "No vulnerable symbol is in the binary; not stated not_affected until a person triages it."; !slices.Contains(notes, n) {
				notes = append(notes, n)
			}
		case state == store.StateNone:
			state = store.StateAffected
		case t.By != "" && t.By != "reach":
			n := fmt.Sprintf("Triaged %s", state)
			if t.Justification != "" {
				n += " (" + t.Justification + ")"
			}
			n += " by " + t.By
			if t.At != nil {
				n += " at " + t.At.UTC().Format(time.RFC3339)
			}
			if t.Expires != nil {
				n += ", until " + t.Expires.UTC().Format(time.RFC3339)
			}
			if where := rowPlace(row); where != "" {
				n += " for " + where
			}
			if t.Note != "" {
				n += ": " + t.Note
			}
			if n += "."; !slices.Contains(notes, n) {
				notes = append(notes, n)
			}
		}
		if rank[state] > rank[d.Status] {
			d.Status = state
		}
		if state == store.StateNotAffected {
			if d.Justification == "" {
				d.Justification = t.Justification
			}
			impact := t.Note
			if impact == "" {
				impact = "Triaged not_affected (" + t.Justification + ")."
			}
			if !slices.Contains(impacts, impact) {
				impacts = append(impacts, impact)
			}
		}
	}
	d.Note = strings.Join(notes, " ")
	if d.Status == report.VEXNotAffected {
		d.Impact = strings.Join(impacts, " ")
	}
	return &d
}

// rowPlace names a row's symbol and callsite in a note.
func rowPlace(row *store.Finding) string {
	s := row.Package
	if row.Symbol != "" {
		s += "." + row.Symbol
	}
	if c := row.Callsite; c != nil {
		s += fmt.Sprintf(" called from %s (%s:%d)", c.Function, c.File, c.Line)
	}
	return s
}

// WriteOpenVEX writes the OpenVEX v0.2.0 document of a service: its
// Binaries and Findings (every finding of the service, not a page of them).
//
// It is reach's own OpenVEX (report.WriteOpenVEX: a statement per OSV
// entry and product, the product the purl of the binary's main module and
// version, the subcomponent the vulnerable module's purl, the callsites
// and hits in the status notes, the upgrade as action statement), with
// the triage people set: not_affected with its justification and note
// as impact statement, fixed, under_investigation, affected, each with
// who decided, when and why in the notes. Reached findings are affected
// unless a person decided otherwise; a finding without triage whose code
// is in the binary is affected, one whose code is not (imported) under
// investigation: nothing is not_affected without a person's decision. A
// triage past its expiry no longer counts. now decides expiry.
func WriteOpenVEX(w io.Writer, svc *store.Service, now time.Time) error {
	sr := newServiceReport(svc.Binaries, svc.Findings)
	o := report.OpenVEXOptions{Decide: func(_ *report.Binary, f *report.Finding) *report.VEXDecision {
		return sr.decision(f, now)
	}}
	if err := o.Write(w, sr.r); err != nil {
		return fmt.Errorf("service %s: %w", svc.Name, err)
	}
	return nil
}

// WriteSARIF writes the SARIF 2.1.0 log of a service's Binaries and
// Findings, as reach's own SARIF (report.WriteSARIF): a rule per OSV
// entry, a result per callsite of a reached symbol located at its file
// and line, other findings at their binary. The results of a finding that
// people triaged not_affected or fixed (every row of it, the triage not
// expired at now) carry an accepted external suppression saying who
// decided what and why, as code scanning tools read them.
func WriteSARIF(w io.Writer, svc *store.Service, now time.Time) error {
	sr := newServiceReport(svc.Binaries, svc.Findings)
	o := report.SARIFOptions{Suppress: func(_ *report.Binary, f *report.Finding) string {
		d := sr.decision(f, now)
		switch d.Status {
		case report.VEXNotAffected:
			return strings.TrimSpace("not_affected (" + d.Justification + "). " + d.Note)
		case report.VEXFixed:
			return strings.TrimSpace("fixed. " + d.Note)
		}
		return ""
	}}
	if err := o.Write(w, sr.r); err != nil {
		return fmt.Errorf("service %s: %w", svc.Name, err)
	}
	return nil
}
