package report

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/mod/modfile"
)

// SARIF 2.1.0, as GitHub code scanning reads it. The types cover what reach
// writes; see https://docs.oasis-open.org/sarif/sarif/v2.1.0 and
// https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning.

const (
	sarifVersion   = "2.1.0"
	sarifSchemaURI = "https://json.schemastore.org/sarif-2.1.0.json"
	// InformationURI is reach's home page.
	InformationURI = "https://github.com/reach-sca/reach"
	// sarifFingerprint is the partialFingerprints key of reach's results.
	sarifFingerprint = "reachFinding/v1"
	srcRoot          = "%SRCROOT%"
)

type sarifLog struct {
	Version string     `json:"version"`
	Schema  string     `json:"$schema"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool               sarifTool                   `json:"tool"`
	Invocations        []sarifInvocation           `json:"invocations,omitempty"`
	OriginalURIBaseIDs map[string]sarifArtifactLoc `json:"originalUriBaseIds,omitempty"`
	Results            []sarifResult               `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID               string         `json:"id"`
	ShortDescription sarifMessage   `json:"shortDescription"`
	FullDescription  sarifMessage   `json:"fullDescription"`
	Help             sarifMessage   `json:"help"`
	HelpURI          string         `json:"helpUri"`
	Properties       sarifRuleProps `json:"properties"`
}

type sarifRuleProps struct {
	Tags []string `json:"tags"`
}

type sarifMessage struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level   string       `json:"level"`
	Message sarifMessage `json:"message"`
}

type sarifResult struct {
	RuleID              string             `json:"ruleId"`
	RuleIndex           int                `json:"ruleIndex"`
	Level               string             `json:"level"`
	Message             sarifMessage       `json:"message"`
	Locations           []sarifLocation    `json:"locations"`
	CodeFlows           []sarifCodeFlow    `json:"codeFlows,omitempty"`
	PartialFingerprints map[string]string  `json:"partialFingerprints"`
	Suppressions        []sarifSuppression `json:"suppressions,omitempty"`
	Properties          sarifResultProps   `json:"properties"`
}

// sarifSuppression is a decision, kept outside the code, that a result
// needs no action.
type sarifSuppression struct {
	Kind          string `json:"kind"`             // "external"
	Status        string `json:"status,omitempty"` // "accepted"
	Justification string `json:"justification,omitempty"`
}

type sarifResultProps struct {
	Status Status `json:"reachStatus"`
	Binary string `json:"binary"`
	// Binaries lists every binary of a result merged from several (the
	// same finding at the same place); Binary is the first.
	Binaries []string `json:"binaries,omitempty"`
	Hits     uint64   `json:"hits,omitempty"`
	// HitsLowerBound is whether Hits counts at least, not exactly, the
	// calls (Symbol.HitsLowerBound of a symbol it adds up).
	HitsLowerBound bool `json:"hitsLowerBound,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
	Message          *sarifMessage `json:"message,omitempty"`
}

type sarifCodeFlow struct {
	ThreadFlows []sarifThreadFlow `json:"threadFlows"`
}

type sarifThreadFlow struct {
	Locations []sarifThreadFlowLocation `json:"locations"`
}

type sarifThreadFlowLocation struct {
	Location sarifLocation `json:"location"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifactLoc `json:"artifactLocation"`
	Region           *sarifRegion     `json:"region,omitempty"`
}

type sarifArtifactLoc struct {
	URI       string `json:"uri"`
	URIBaseID string `json:"uriBaseId,omitempty"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

// SARIFOptions adjusts the SARIF output.
type SARIFOptions struct {
	// SourceRoot is the local directory of the repository the binaries
	// were built from. Callsite files under it get URIs relative to it, as
	// GitHub needs to show them in the code.
	SourceRoot string
	// GoMod is the content of the main module's go.mod (in SourceRoot).
	// Findings without a callsite point at the line that requires their
	// module (the go or toolchain line for Go's); without it, at the
	// binary.
	GoMod []byte
	// Suppress returns, for a finding f of binary b that people decided
	// needs no action (triaged not affected, or fixed), the
	// justification of that decision: each result of f then carries an
	// accepted external suppression with it. "" leaves them unsuppressed;
	// a result merged from several findings is suppressed only when each
	// of them is.
	Suppress func(b *Binary, f *Finding) string
}

// WriteSARIF writes r as SARIF 2.1.0 with default options.
func WriteSARIF(w io.Writer, r *Report) error {
	return SARIFOptions{}.Write(w, r)
}

// Write writes r as one SARIF 2.1.0 run for GitHub code scanning.
//
// Each OSV entry is a rule. Each finding gives results whose level follows
// its status: reached is "error", linked "warning", imported "note". A
// reached symbol gives one result per callsite, located at the callsite's
// file and line; everything else gives one result per finding located at
// go.mod's line requiring the module (or, without GoMod or for a binary of
// another main module, the binary). One finding at one place is one
// result, however many binaries or symbols it came from. Files
// recorded with -trimpath as "module/path/file.go" become relative to the
// repository root, as do absolute files under SourceRoot; other absolute
// files stay file:// URIs. The result of the callsite a symbol's first hit
// came from carries that hit's stack as a code flow.
func (o SARIFOptions) Write(w io.Writer, r *Report) error {
	log := o.build(r)
	if err := EncodeJSON(w, log); err != nil {
		return fmt.Errorf("write sarif report: %w", err)
	}
	return nil
}

func (o SARIFOptions) build(r *Report) *sarifLog {
	run := sarifRun{
		Tool: sarifTool{Driver: sarifDriver{
			Name:           toolName(r),
			Version:        r.Tool.Version,
			InformationURI: InformationURI,
			Rules:          []sarifRule{},
		}},
		Invocations: []sarifInvocation{{ExecutionSuccessful: true}},
		Results:     []sarifResult{},
	}
	inv := &run.Invocations[0]
	for _, n := range r.Notes {
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications,
			sarifNotification{Level: "warning", Message: sarifMessage{Text: n}})
	}
	for _, u := range r.Unscanned {
		inv.ExecutionSuccessful = false
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications,
			sarifNotification{Level: "error", Message: sarifMessage{Text: "not scanned: " + u.Error}})
	}
	if r.NothingObserved() {
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications,
			sarifNotification{Level: "warning", Message: sarifMessage{Text: "no Go program was observed: this report says nothing about vulnerabilities"}})
	}
	if root := o.SourceRoot; root != "" {
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Clean(root)) + "/"}
		run.OriginalURIBaseIDs = map[string]sarifArtifactLoc{"SRCROOT": {URI: u.String()}}
	}

	// Rules: one per OSV ID, from the first finding that names it.
	ruleIndex := map[string]int{}
	var ids []string
	firsts := map[string]*Finding{}
	fixes := map[string][]string{}
	for _, b := range r.Binaries {
		for _, f := range b.Findings {
			if _, ok := firsts[f.OSV]; !ok {
				firsts[f.OSV] = f
				ids = append(ids, f.OSV)
			}
			if a := f.Advice(b); !slices.Contains(fixes[f.OSV], a) {
				fixes[f.OSV] = append(fixes[f.OSV], a)
			}
		}
	}
	slices.Sort(ids)
	for i, id := range ids {
		ruleIndex[id] = i
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRuleFor(firsts[id], fixes[id]))
	}

	gomod := o.parseGoMod()
	for _, b := range r.Binaries {
		for _, f := range b.Findings {
			results := o.results(gomod, b, f, ruleIndex[f.OSV])
			if o.Suppress != nil {
				if why := o.Suppress(b, f); why != "" {
					for i := range results {
						results[i].Suppressions = []sarifSuppression{{Kind: "external", Status: "accepted", Justification: why}}
					}
				}
			}
			run.Results = append(run.Results, results...)
		}
	}
	run.Results = mergeResults(run.Results)
	return &sarifLog{Version: sarifVersion, Schema: sarifSchemaURI, Runs: []sarifRun{run}}
}

func toolName(r *Report) string {
	if r.Tool.Name != "" {
		return r.Tool.Name
	}
	return "reach"
}

func sarifRuleFor(f *Finding, fixes []string) sarifRule {
	title := f.Summary
	if title == "" {
		title = "vulnerability in " + f.Module
	}
	ids := f.OSV
	if len(f.Aliases) > 0 {
		ids += " (" + strings.Join(f.Aliases, ", ") + ")"
	}
	fixText := upperFirst(strings.Join(fixes, "; ")) + "."
	const levels = "reach reports the vulnerable code as reached (it ran while reach watched: error), " +
		"not_watched (it is in the binary and reach did not watch it all the time, so whether it ran is unknown: warning), " +
		"linked (it is in the binary: warning) or imported (only its module version is: note)."
	// The database's strings are text, not markdown: a summary must not
	// add links, images or HTML to the page that shows the rule.
	var md strings.Builder
	fmt.Fprintf(&md, "**%s**: %s\n\n", mdText(ids), mdText(title))
	if strings.Contains(f.Module, "`") {
		fmt.Fprintf(&md, "Module: %s.\n\n", mdText(f.Module))
	} else {
		fmt.Fprintf(&md, "Module: `%s`.\n\n", strings.Join(strings.Fields(f.Module), " "))
	}
	fmt.Fprintf(&md, "**Fix:** %s\n\n", mdCode(fixText))
	fmt.Fprintf(&md, "%s\n\n", levels)
	fmt.Fprintf(&md, "More: [%s](%s)", mdText(f.OSV), f.URL())
	tags := []string{"security", "vulnerability", "go", f.OSV}
	tags = append(tags, f.Aliases...)
	return sarifRule{
		ID:               f.OSV,
		ShortDescription: sarifMessage{Text: fmt.Sprintf("[%s] %s", f.OSV, title)},
		FullDescription:  sarifMessage{Text: fmt.Sprintf("%s: %s", ids, title)},
		Help: sarifMessage{
			Text:     fmt.Sprintf("%s: %s\nModule: %s\nFix: %s\n%s\nMore: %s", ids, title, f.Module, fixText, levels, f.URL()),
			Markdown: md.String(),
		},
		HelpURI:    f.URL(),
		Properties: sarifRuleProps{Tags: tags},
	}
}

// mdText escapes s for use as plain text within a line of markdown: the
// characters that start emphasis, code, links, images, HTML or entities
// are backslash-escaped, and line breaks become spaces, so that no block
// (heading, list, table) can start.
func mdText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			r = ' '
		case strings.ContainsRune("\\`*_[]<>!&~", r):
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdCode is mdText for text with `code spans`: their content, which
// markdown shows as it is, is kept; the text around them is escaped. Text
// whose backticks do not pair up is escaped whole.
func mdCode(s string) string {
	parts := strings.Split(s, "`")
	if len(parts)%2 == 0 {
		return mdText(s)
	}
	for i := 0; i < len(parts); i += 2 {
		parts[i] = mdText(parts[i])
	}
	return strings.Join(parts, "`")
}

func sarifLevel(s Status) string {
	switch s {
	case Reached:
		return "error"
	case NotWatched, Linked:
		return "warning"
	}
	return "note"
}

func (o SARIFOptions) results(gomod *modfile.File, b *Binary, f *Finding, rule int) []sarifResult {
	advice := upperFirst(f.Advice(b)) + "."
	if sc := scopeSentence(f); sc != "" {
		advice = sc + " " + advice
	}
	if inf := inferredSentence(b, f); inf != "" {
		advice = inf + " " + advice
	}
	newResult := func(st Status, msg string, loc sarifPhysical, hits uint64, lower bool, key ...string) sarifResult {
		return sarifResult{
			RuleID:              f.OSV,
			RuleIndex:           rule,
			Level:               sarifLevel(st),
			Message:             sarifMessage{Text: msg},
			Locations:           []sarifLocation{{PhysicalLocation: loc}},
			PartialFingerprints: map[string]string{sarifFingerprint: fingerprint(append([]string{f.OSV, b.MainModule, path.Base(filepath.ToSlash(b.Path))}, key...)...)},
			Properties:          sarifResultProps{Status: st, Binary: b.Path, Hits: hits, HitsLowerBound: lower && hits > 0},
		}
	}
	// The callsites of the finding's reached symbols, by function and line.
	type siteKey struct {
		fn, uri string
		line    int
	}
	type site struct {
		fn, file, sym string // sym: the first symbol, for the fingerprint
		loc           sarifPhysical
		calls         []string
		hits          uint64
		lower         bool
		flows         []sarifCodeFlow
	}
	sites := map[siteKey]*site{}
	var order []*site
	var out []sarifResult
	var rest []string // symbols without a callsite result
	var restHits uint64
	restLower := false
	for _, s := range f.Symbols {
		if s.Status != Reached || len(s.Callsites) == 0 {
			rest = append(rest, symbolName(s))
			restHits += s.Hits
			restLower = restLower || s.HitsLowerBound
			continue
		}
		from := stackCallsite(s)
		for _, c := range s.Callsites {
			loc := o.callsiteLocation(b, c)
			k := siteKey{c.Function, loc.ArtifactLocation.URI, c.Line}
			st := sites[k]
			if st == nil {
				st = &site{fn: c.Function, file: c.File, sym: symbolName(s), loc: loc}
				sites[k] = st
				order = append(order, st)
			}
			st.calls = append(st.calls, fmt.Sprintf("%s (%s)", symbolName(s), times(c.Hits, s.HitsLowerBound)))
			st.hits += c.Hits
			st.lower = st.lower || s.HitsLowerBound
			if c == from && st.flows == nil {
				st.flows = o.stackFlow(b, s)
			}
		}
	}
	// One result per callsite line, naming every symbol called from it.
	for _, st := range order {
		msg := fmt.Sprintf("%s calls %s, vulnerable to %s, from here in %s (%s). %s",
			st.fn, strings.Join(st.calls, ", "), f.OSV, b.Name(), moduleAt(f), advice)
		res := newResult(Reached, msg, st.loc, st.hits, st.lower, st.sym, st.fn, st.file)
		res.CodeFlows = st.flows
		out = append(out, res)
	}
	if len(out) > 0 && len(rest) == 0 {
		return out
	}
	var msg string
	st := f.Status
	switch {
	case f.Status == Imported:
		what := "none of its vulnerable symbols is"
		if f.WholeModule {
			what = "no code of the module is"
		}
		msg = fmt.Sprintf("%s in %s is affected by %s, but %s in the binary. %s",
			moduleAt(f), b.Name(), f.OSV, what, advice)
	default:
		// Reached symbols without a callsite, symbols not watched all the
		// time, and linked ones.
		var parts []string
		var reached, unwatched, linked []string // symbol names
		for _, s := range f.Symbols {
			switch {
			case s.Status == Reached && len(s.Callsites) == 0:
				reached = append(reached, fmt.Sprintf("%s (%s)", symbolName(s), times(s.Hits, s.HitsLowerBound)))
			case s.Status == NotWatched:
				unwatched = append(unwatched, symbolName(s))
			case s.Status != Reached:
				linked = append(linked, symbolName(s))
			}
		}
		switch {
		case len(reached) > 0:
			parts = append(parts, "ran "+strings.Join(reached, ", ")+" from an unknown callsite")
		case len(unwatched) > 0:
			st = NotWatched
		default:
			st = Linked
		}
		if len(unwatched) > 0 {
			parts = append(parts, "links "+notWatchedSummary(f.Symbols))
		}
		if len(linked) > 0 {
			parts = append(parts, "links "+strings.Join(linked, ", "))
		}
		msg = fmt.Sprintf("%s %s of %s, vulnerable to %s.", b.Name(), strings.Join(parts, " and "), moduleAt(f), f.OSV)
		if len(unwatched) > 0 {
			msg += " reach did not watch " + plural(len(unwatched), "it", "them") + " all the time: whether " + plural(len(unwatched), "it", "they") + " ran is unknown."
		}
		msg += " " + advice
	}
	out = append(out, newResult(st, msg, o.moduleLocation(gomod, b, f), restHits, restLower, "module"))
	return out
}

// plural is one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// stackCallsite is the callsite s's first hit came from: the innermost
// frame of its stack that is one of its callsites, or nil.
func stackCallsite(s *Symbol) *Callsite {
	for _, f := range s.Stack {
		i := slices.IndexFunc(s.Callsites, func(cs *Callsite) bool { return cs.Function == f.Function && cs.Line == f.Line })
		if i >= 0 {
			return s.Callsites[i]
		}
	}
	return nil
}

// stackFlow shows the stack of s's first hit as a code flow, outermost
// frame first, for the result of the callsite that hit came from
// (stackCallsite).
func (o SARIFOptions) stackFlow(b *Binary, s *Symbol) []sarifCodeFlow {
	var locs []sarifThreadFlowLocation
	for i := len(s.Stack) - 1; i >= 0; i-- {
		f := s.Stack[i]
		if f.File == "" {
			continue
		}
		loc := o.callsiteLocation(b, &Callsite{Function: f.Function, File: f.File, Line: f.Line})
		locs = append(locs, sarifThreadFlowLocation{Location: sarifLocation{PhysicalLocation: loc, Message: &sarifMessage{Text: f.Function}}})
	}
	if len(locs) == 0 {
		return nil
	}
	return []sarifCodeFlow{{ThreadFlows: []sarifThreadFlow{{Locations: locs}}}}
}

// times says how often a symbol (or a callsite of it) ran: "once", "5
// times", "at least 5 times" when atLeast.
func times(n uint64, atLeast bool) string {
	return howMany(n, atLeast, "once", "%d times")
}

// howMany says n, counted calls of a symbol or a callsite of it, as one
// (for exactly 1) or many (a format with %d), "at least" many when atLeast;
// for a symbol seen to run without a counted call, that no call was
// counted.
func howMany(n uint64, atLeast bool, one, many string) string {
	switch {
	case n == 0 && atLeast:
		// The hit may be an inlined copy's, at an entry that its loop
		// comes back to (binfo.Site.Inexact), not only a closure's.
		return "without a counted call (its code ran only where calls are not counted: a closure inside it, or an inlined copy's entry that its loop comes back to)"
	case n == 0:
		return "without a counted call (only code the compiler generated inside it, such as a closure, was seen)"
	case n == 1 && atLeast:
		return "at least " + one
	case n == 1:
		return one
	case atLeast:
		return "at least " + fmt.Sprintf(many, n)
	}
	return fmt.Sprintf(many, n)
}

// parseGoMod parses GoMod, or returns nil.
func (o SARIFOptions) parseGoMod() *modfile.File {
	if o.GoMod == nil {
		return nil
	}
	f, err := modfile.ParseLax("go.mod", o.GoMod, nil)
	if err != nil || f.Module == nil {
		return nil
	}
	return f
}

// moduleLocation is where a finding without a callsite shows: the line of
// the repository's go.mod that requires its module (for Go, the toolchain
// or go line; for a module it does not require, the module line), or the
// binary's first line when there is no go.mod of the binary's main module.
// GitHub places a result only with a line.
func (o SARIFOptions) moduleLocation(gomod *modfile.File, b *Binary, f *Finding) sarifPhysical {
	if gomod == nil || b.MainModule == "" ||
		(b.MainModule != gomod.Module.Mod.Path && !strings.HasPrefix(b.MainModule, gomod.Module.Mod.Path+"/")) {
		return sarifPhysical{ArtifactLocation: o.fileLocation(b.Path), Region: &sarifRegion{StartLine: 1}}
	}
	line := gomod.Module.Syntax.Start.Line
	switch {
	case IsGo(f.Module):
		if gomod.Toolchain != nil {
			line = gomod.Toolchain.Syntax.Start.Line
		} else if gomod.Go != nil {
			line = gomod.Go.Syntax.Start.Line
		}
	default:
		for _, req := range gomod.Require {
			if req.Mod.Path == f.Module {
				line = req.Syntax.Start.Line
				break
			}
		}
	}
	return sarifPhysical{ArtifactLocation: sarifArtifactLoc{URI: "go.mod", URIBaseID: srcRoot}, Region: &sarifRegion{StartLine: line}}
}

// mergeResults makes one result of the results of one rule at one place
// (the same finding in several binaries, or several symbols called on one
// line): its level and status are the most severe, its hits their sum, its
// message each distinct message, it is suppressed only when each of them
// is, and it keeps the first one's fingerprint and code flows.
func mergeResults(results []sarifResult) []sarifResult {
	type key struct {
		rule, uri, base string
		line            int
	}
	at := map[key]int{}
	out := []sarifResult{}
	for _, res := range results {
		loc := res.Locations[0].PhysicalLocation
		k := key{rule: res.RuleID, uri: loc.ArtifactLocation.URI, base: loc.ArtifactLocation.URIBaseID}
		if loc.Region != nil {
			k.line = loc.Region.StartLine
		}
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			out = append(out, res)
			continue
		}
		m := &out[i]
		if res.Properties.Status.Rank() > m.Properties.Status.Rank() {
			m.Properties.Status = res.Properties.Status
			m.Level = res.Level
		}
		m.Properties.Hits += res.Properties.Hits
		m.Properties.HitsLowerBound = m.Properties.HitsLowerBound || res.Properties.HitsLowerBound
		if !strings.Contains(m.Message.Text, res.Message.Text) {
			m.Message.Text += "\n\n" + res.Message.Text
		}
		if len(m.Properties.Binaries) == 0 {
			m.Properties.Binaries = []string{m.Properties.Binary}
		}
		if !slices.Contains(m.Properties.Binaries, res.Properties.Binary) {
			m.Properties.Binaries = append(m.Properties.Binaries, res.Properties.Binary)
		}
		if m.CodeFlows == nil {
			m.CodeFlows = res.CodeFlows
		}
		switch {
		case len(res.Suppressions) == 0:
			m.Suppressions = nil // one of them needs action
		case len(m.Suppressions) > 0 && !strings.Contains(m.Suppressions[0].Justification, res.Suppressions[0].Justification):
			m.Suppressions[0].Justification += " " + res.Suppressions[0].Justification
		}
	}
	for i := range out {
		if len(out[i].Properties.Binaries) == 1 {
			out[i].Properties.Binaries = nil
		}
	}
	return out
}

func (o SARIFOptions) callsiteLocation(b *Binary, c *Callsite) sarifPhysical {
	loc := sarifPhysical{ArtifactLocation: o.fileLocation(c.File)}
	// Trimmed paths ("example.com/app/api/lang.go") are relative to the
	// main module's root.
	if b.MainModule != "" {
		if rel, ok := strings.CutPrefix(filepath.ToSlash(c.File), b.MainModule+"/"); ok {
			loc.ArtifactLocation = sarifArtifactLoc{URI: escapePath(rel), URIBaseID: srcRoot}
		}
	}
	if c.Line > 0 {
		loc.Region = &sarifRegion{StartLine: c.Line}
	}
	return loc
}

// fileLocation is a path relative to SourceRoot when it is under it, and a
// file URI otherwise.
func (o SARIFOptions) fileLocation(p string) sarifArtifactLoc {
	if o.SourceRoot != "" && filepath.IsAbs(p) {
		if rel, err := filepath.Rel(o.SourceRoot, p); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return sarifArtifactLoc{URI: escapePath(filepath.ToSlash(rel)), URIBaseID: srcRoot}
		}
	}
	if filepath.IsAbs(p) {
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(p)}
		return sarifArtifactLoc{URI: u.String()}
	}
	return sarifArtifactLoc{URI: escapePath(filepath.ToSlash(p)), URIBaseID: srcRoot}
}

// escapePath makes a relative slash path a valid relative URI reference.
func escapePath(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}

func fingerprint(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:16])
}
