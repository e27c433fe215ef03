package report

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// OpenVEX v0.2.0 (https://github.com/openvex/spec). The types cover what
// reach writes.

const (
	vexContext   = "https://openvex.dev/ns/v0.2.0"
	vexNamespace = "https://openvex.dev/docs/public/reach-"
	vexAuthor    = "reach"
)

type vexDoc struct {
	Context    string         `json:"@context"`
	ID         string         `json:"@id"`
	Author     string         `json:"author"`
	Role       string         `json:"role,omitempty"`
	Timestamp  string         `json:"timestamp"`
	Version    int            `json:"version"`
	Tooling    string         `json:"tooling,omitempty"`
	Statements []vexStatement `json:"statements"`
}

type vexStatement struct {
	Vulnerability   vexVulnerability `json:"vulnerability"`
	Products        []vexProduct     `json:"products"`
	Status          string           `json:"status"`
	StatusNotes     string           `json:"status_notes,omitempty"`
	Justification   string           `json:"justification,omitempty"`
	ImpactStatement string           `json:"impact_statement,omitempty"`
	ActionStatement string           `json:"action_statement,omitempty"`
}

type vexVulnerability struct {
	ID          string   `json:"@id"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Aliases     []string `json:"aliases,omitempty"`
}

type vexProduct struct {
	vexComponent
	Subcomponents []vexComponent `json:"subcomponents,omitempty"`
}

type vexComponent struct {
	ID          string            `json:"@id"`
	Identifiers map[string]string `json:"identifiers,omitempty"`
}

// WriteOpenVEX writes r as an OpenVEX v0.2.0 document.
//
// The product is the program a binary was built from: the purl
// pkg:golang/MAINMODULE@VERSION of its main module; when the build recorded
// no version or "(devel)", pkg:golang/MAINMODULE?file_name=BINARY instead,
// since a purl without a version would claim every version of the module.
// A binary without a main module is named by its file URI. The subcomponent is the vulnerable module, as
// pkg:golang/MODULE@VERSION ("stdlib" for the standard library).
//
// There is one statement per OSV entry and product. When several binaries
// of the report share a product, the statement takes the most severe of
// their statuses and its notes name each binary. Statuses map as follows:
//
//   - reached: "affected"; the notes say what ran, how often, from where.
//   - linked: "affected" too: the vulnerable code is in the binary and could
//     run, it was only not seen running. This is the conservative choice.
//   - not_watched: "affected", for the same reason as linked: the code is
//     in the binary. The notes say that reach did not watch it all the
//     time and that whether it ran is unknown; they never say it did not
//     run.
//   - imported: "not_affected" with justification
//     "vulnerable_code_not_present".
//
// Affected statements carry the upgrade to make as action_statement. The
// document is authored by "reach", timestamped when the report finished (or
// started), and its @id is derived from a hash of its content, so the same
// report always gives the same document.
func WriteOpenVEX(w io.Writer, r *Report) error {
	return OpenVEXOptions{}.Write(w, r)
}

// OpenVEX statuses a VEXDecision can state.
const (
	VEXAffected           = "affected"
	VEXNotAffected        = "not_affected"
	VEXFixed              = "fixed"
	VEXUnderInvestigation = "under_investigation"
)

// VEXDecision is what a statement says about a finding in a binary in
// place of what reach saw: a decision people made (triage).
type VEXDecision struct {
	Status        string // one of the VEX statuses above
	Justification string // for not_affected: one of OpenVEX's justifications
	Impact        string // for not_affected: the impact statement
	// Note is added to the finding's status notes (who decided, when,
	// why).
	Note string
}

// OpenVEXOptions adjusts the OpenVEX output.
type OpenVEXOptions struct {
	// Decide returns the decision a statement states about finding f of
	// binary b, or nil for reach's own (see WriteOpenVEX).
	Decide func(b *Binary, f *Finding) *VEXDecision
}

// Write writes r as an OpenVEX v0.2.0 document, as WriteOpenVEX does, with
// the decisions of o.Decide. When the findings of one statement (one OSV
// entry in binaries of one product) have different decisions, the
// statement states the most cautious: affected, then under_investigation,
// then fixed, then not_affected; the action statement is the upgrades of
// the affected ones, the impact statement the not_affected ones'.
func (o OpenVEXOptions) Write(w io.Writer, r *Report) error {
	doc, err := o.build(r)
	if err != nil {
		return err
	}
	if err := EncodeJSON(w, doc); err != nil {
		return fmt.Errorf("write openvex report: %w", err)
	}
	return nil
}

// vexGroup gathers the findings of one OSV entry in binaries of one product.
type vexGroup struct {
	product vexComponent
	osv     string
	found   []binaryFinding
}

func (o OpenVEXOptions) build(r *Report) (*vexDoc, error) {
	groups := map[[2]string]*vexGroup{}
	var keys [][2]string
	for _, b := range r.Binaries {
		p := vexProductOf(b)
		for _, f := range b.Findings {
			k := [2]string{f.OSV, p.ID}
			g := groups[k]
			if g == nil {
				g = &vexGroup{product: p, osv: f.OSV}
				groups[k] = g
				keys = append(keys, k)
			}
			g.found = append(g.found, binaryFinding{b, f})
		}
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	stmts := make([]vexStatement, 0, len(keys))
	for _, k := range keys {
		stmts = append(stmts, o.statement(groups[k]))
	}

	ts := r.Finished
	if ts.IsZero() {
		ts = r.Started
	}
	if ts.IsZero() {
		ts = time.Now()
	}
	tooling := toolName(r)
	if r.Tool.Version != "" {
		tooling += " " + r.Tool.Version
	}
	doc := &vexDoc{
		Context:    vexContext,
		Author:     vexAuthor,
		Role:       "automated tool",
		Timestamp:  ts.UTC().Format(time.RFC3339),
		Version:    1,
		Tooling:    tooling + " (" + InformationURI + ")",
		Statements: stmts,
	}
	content, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("write openvex report: %w", err)
	}
	sum := sha256.Sum256(content)
	doc.ID = vexNamespace + hex.EncodeToString(sum[:])
	return doc, nil
}

func vexProductOf(b *Binary) vexComponent {
	if b.MainModule == "" {
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(b.Path)}
		return vexComponent{ID: u.String()}
	}
	v := b.MainVersion
	if v == "(devel)" {
		v = ""
	}
	p := purl(b.MainModule, v)
	if v == "" {
		// A purl without a version stands for every version: a statement
		// about this one build must not claim them all.
		p += "?file_name=" + url.QueryEscape(path.Base(filepath.ToSlash(b.Path)))
	}
	return vexComponent{ID: p, Identifiers: map[string]string{"purl": p}}
}

// purl is the package URL of a Go module: pkg:golang/NAMESPACE/NAME@VERSION,
// each path element escaped.
func purl(module, version string) string {
	elems := strings.Split(module, "/")
	for i, e := range elems {
		elems[i] = url.PathEscape(e)
	}
	p := "pkg:golang/" + strings.Join(elems, "/")
	if version != "" {
		p += "@" + url.PathEscape(version)
	}
	return p
}

// vexRank orders VEX statuses from the most cautious.
func vexRank(status string) int {
	switch status {
	case VEXAffected:
		return 4
	case VEXUnderInvestigation:
		return 3
	case VEXFixed:
		return 2
	case VEXNotAffected:
		return 1
	}
	return 0
}

// decide is the decision about f in b: o.Decide's, or reach's own.
func (o OpenVEXOptions) decide(b *Binary, f *Finding) VEXDecision {
	if o.Decide != nil {
		if d := o.Decide(b, f); d != nil {
			return *d
		}
	}
	if f.Status != Imported {
		return VEXDecision{Status: VEXAffected}
	}
	impact := fmt.Sprintf("None of the vulnerable symbols of %s is in the binary.", f.Module)
	if f.WholeModule {
		impact = fmt.Sprintf("No code of %s is in the binary (the entry has no symbol data: the whole module is treated as vulnerable).", f.Module)
	}
	return VEXDecision{Status: VEXNotAffected, Justification: "vulnerable_code_not_present", Impact: impact}
}

func (o OpenVEXOptions) statement(g *vexGroup) vexStatement {
	// The most severe status names the vulnerability; every binary is
	// noted.
	top := g.found[0]
	for _, bf := range g.found[1:] {
		if bf.f.Status.Rank() > top.f.Status.Rank() {
			top = bf
		}
	}
	f := top.f
	var subs []vexComponent
	for _, bf := range g.found {
		p := purl(bf.f.Module, bf.f.Version)
		if !slices.ContainsFunc(subs, func(c vexComponent) bool { return c.ID == p }) {
			subs = append(subs, vexComponent{ID: p, Identifiers: map[string]string{"purl": p}})
		}
	}
	st := vexStatement{
		Vulnerability: vexVulnerability{ID: f.URL(), Name: f.OSV, Description: f.Summary, Aliases: slices.Clone(f.Aliases)},
		Products:      []vexProduct{{vexComponent: g.product, Subcomponents: subs}},
	}
	var notes, actions, impacts []string
	var status, justification string
	for _, bf := range g.found {
		d := o.decide(bf.b, bf.f)
		note := vexNote(bf.b, bf.f)
		if d.Note != "" {
			note += " " + d.Note
		}
		notes = append(notes, note)
		if vexRank(d.Status) > vexRank(status) {
			status = d.Status
		}
		switch d.Status {
		case VEXAffected:
			if a := upperFirst(bf.f.Advice(bf.b)) + "."; !slices.Contains(actions, a) {
				actions = append(actions, a)
			}
		case VEXNotAffected:
			if justification == "" {
				justification = d.Justification
			}
			if d.Impact != "" && !slices.Contains(impacts, d.Impact) {
				impacts = append(impacts, d.Impact)
			}
		}
	}
	st.StatusNotes = strings.Join(notes, " ")
	st.Status = status
	switch status {
	case VEXAffected:
		st.ActionStatement = strings.Join(actions, " ")
	case VEXNotAffected:
		st.Justification = justification
		st.ImpactStatement = strings.Join(impacts, " ")
	}
	return st
}

// vexNote says what reach saw of finding f in binary b, in a sentence or two.
func vexNote(b *Binary, f *Finding) string {
	where := b.Name()
	if b.BuildID != "" {
		where += " (build ID " + b.BuildID + ")"
	}
	var reached, linked []string
	for _, s := range f.Symbols {
		switch s.Status {
		case Reached:
		case NotWatched:
			continue
		default:
			linked = append(linked, symbolName(s))
			continue
		}
		d := fmt.Sprintf("%s ran %s", symbolName(s), times(s.Hits, s.HitsLowerBound))
		if fn := entered(s); fn != "" {
			d += ", entered at " + fn
		}
		if s.FirstSeen != nil {
			d += ", first at " + s.FirstSeen.UTC().Format(time.RFC3339)
		}
		if len(s.Callsites) > 0 {
			var from []string
			for _, c := range s.Callsites {
				from = append(from, fmt.Sprintf("%s (%s:%d)", c.Function, c.File, c.Line))
			}
			d += ", called from " + strings.Join(from, ", ")
		}
		if len(s.Unwatched) > 0 {
			d += " (not watched at all times: " + strings.Join(s.Unwatched, "; ") + ")"
		}
		reached = append(reached, d)
	}
	unwatchedNote := ""
	if u := notWatchedSummary(f.Symbols); u != "" {
		unwatchedNote = fmt.Sprintf(" Not watched all the time, so whether it ran is unknown: %s.", u)
	}
	scope := ""
	if sc := scopeSentence(f); sc != "" {
		scope = " " + sc
	}
	if inf := inferredSentence(b, f); inf != "" {
		scope += " " + inf
	}
	switch f.Status {
	case Imported:
		if f.WholeModule {
			return fmt.Sprintf("%s: imported: %s is an affected version, but no code of the module is in the binary.%s", where, moduleAt(f), scope)
		}
		return fmt.Sprintf("%s: imported: %s is an affected version, but no vulnerable symbol is in the binary.", where, moduleAt(f))
	case Reached:
		s := fmt.Sprintf("%s: reached: %s.", where, strings.Join(reached, "; "))
		if len(linked) > 0 {
			s += fmt.Sprintf(" Also linked, not seen running: %s.", strings.Join(linked, ", "))
		}
		return s + unwatchedNote + scope
	case NotWatched:
		s := fmt.Sprintf("%s: not watched: the vulnerable code is in the binary.%s", where, unwatchedNote)
		if len(linked) > 0 {
			s += fmt.Sprintf(" Watched all the time and not seen running: %s.", strings.Join(linked, ", "))
		}
		return s + scope
	}
	return fmt.Sprintf("%s: linked: %s in the binary, not seen running.%s", where, strings.Join(linked, ", "), scope)
}
