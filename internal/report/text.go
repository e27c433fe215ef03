package report

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// textWidth is the column the text report wraps prose at.
const textWidth = 80

var sectionTitles = map[Status]string{
	Reached: "Reached: the vulnerable code ran while reach watched",
	// Not "not seen running": reach did not look all the time.
	NotWatched: "Not watched: the vulnerable code is in the binary, whether it ran is unknown",
	Linked:     "Linked: the vulnerable code is in the binary, not seen running",
	Imported:   "Imported: an affected module version, its vulnerable code not in the binary",
}

// WriteText writes r for people: a one-line summary, notes, the binaries,
// then one section per status (reached, not watched, linked, imported)
// listing each
// vulnerability once with the binaries it was found in, the fix, and the
// symbols with their hits and callsites. Run and attach reports say which
// targets were watched when, and for each symbol not watched, when it was
// and why not.
func WriteText(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	tw := &textWriter{w: bw}
	tw.report(r)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write text report: %w", err)
	}
	return nil
}

type textWriter struct {
	w *bufio.Writer
}

// line writes one line, escaping what could act on a terminal: every
// string the text report shows passes here (see Printable).
func (t *textWriter) line(format string, args ...any) {
	t.w.WriteString(Printable(fmt.Sprintf(format, args...)))
	t.w.WriteByte('\n')
}

// prose writes s wrapped at textWidth, each line indented by indent.
func (t *textWriter) prose(indent, s string) {
	for _, l := range wrap(s, textWidth-len(indent)) {
		t.line("%s%s", indent, l)
	}
}

func (t *textWriter) report(r *Report) {
	c := r.Counts()
	mode := r.Mode
	if mode == "" {
		mode = "scan"
	}
	summary := summaryLine(c)
	if n := len(r.Unscanned); n > 0 {
		summary += fmt.Sprintf(" (%d %s not scanned)", n, plural(n, "input", "inputs"))
	}
	t.line("reach %s: %s", mode, summary)
	db := r.DB.Source
	if db == "" {
		db = "(unknown)"
	}
	if !r.DB.Modified.IsZero() {
		db += " (modified " + r.DB.Modified.UTC().Format(time.DateOnly) + ")"
	}
	t.line("Database: %s", db)
	if !r.Started.IsZero() && (mode == "run" || mode == "attach") {
		t.line("Watched: %s", span(r.Started, r.Finished))
	}
	t.targets(r.Targets)
	for _, n := range r.Notes {
		t.line("")
		t.prose("", "Note: "+n)
	}
	if len(r.Unscanned) > 0 {
		t.line("")
		t.line("Not scanned (nothing is known about these):")
		for _, u := range r.Unscanned {
			t.line("  %s", u.Path)
			t.prose("    ", u.Error)
		}
	}
	if len(r.Binaries) > 0 {
		t.line("")
		t.line("Binaries:")
		for _, b := range r.Binaries {
			t.line("  %s", b.Name())
			if b.TestOf != "" {
				t.line("    %s", b.Path)
			}
			t.line("    %s", binaryFacts(b))
		}
	}
	for _, st := range Statuses {
		groups := groupByOSV(r, st)
		if len(groups) == 0 {
			continue
		}
		t.line("")
		title := fmt.Sprintf("%s (%d)", sectionTitles[st], countStatus(c, st))
		t.line("%s", title)
		t.line("%s", strings.Repeat("=", min(len(title), textWidth)))
		for _, g := range groups {
			t.group(g)
		}
	}
	t.upgrades(r)
	switch {
	case r.NothingObserved():
		t.line("")
		t.prose("", "No Go program was observed: the programs that ran were not Go programs (or exited before reach could watch them), so this report says nothing about vulnerabilities.")
	case c.Reached+c.NotWatched+c.Linked+c.Imported == 0 && len(r.Binaries) > 0:
		t.line("")
		t.line("No vulnerabilities found.")
	}
}

func countStatus(c Counts, s Status) int {
	switch s {
	case Reached:
		return c.Reached
	case NotWatched:
		return c.NotWatched
	case Linked:
		return c.Linked
	case Imported:
		return c.Imported
	}
	return 0
}

// summaryLine is "2 reached, 3 linked, 1 imported in 1 binary", with "1
// not watched" after reached when there are such findings.
func summaryLine(c Counts) string {
	bins := "binaries"
	if c.Binaries == 1 {
		bins = "binary"
	}
	nw := ""
	if c.NotWatched > 0 {
		nw = fmt.Sprintf(" %d not watched,", c.NotWatched)
	}
	return fmt.Sprintf("%d reached,%s %d linked, %d imported in %d %s", c.Reached, nw, c.Linked, c.Imported, c.Binaries, bins)
}

// targets says which targets were watched: "Targets: all vulnerable
// symbols" when that was all, else each selection with its start and
// file, one selector a line.
func (t *textWriter) targets(sels []Selection) {
	if len(sels) == 0 {
		return
	}
	if len(sels) == 1 && len(sels[0].Selectors) == 1 && sels[0].Selectors[0].Selector == "*" && sels[0].File == "" {
		t.line("Targets: all vulnerable symbols")
		return
	}
	for _, sel := range sels {
		head := "Targets"
		if len(sels) > 1 {
			head += " from " + stamp(sel.From)
		}
		if sel.File != "" {
			head += " (" + sel.File + ")"
		}
		t.line("")
		t.line("%s:", head)
		if len(sel.Selectors) == 0 {
			t.line("  nothing")
		}
		for _, s := range sel.Selectors {
			d := s.Selector
			if d == "*" {
				d = "* (every vulnerable symbol)"
			}
			if s.Line > 0 {
				t.line("  line %d: %s", s.Line, d)
			} else {
				t.line("  %s", d)
			}
		}
	}
}

func binaryFacts(b *Binary) string {
	var facts []string
	if b.MainModule != "" {
		m := b.MainModule
		if b.MainVersion != "" {
			m += "@" + b.MainVersion
		}
		if b.MainInferred {
			m += " (main module inferred from function names)"
		}
		facts = append(facts, m)
	}
	if b.GoVersion != "" {
		facts = append(facts, b.GoVersion)
	}
	if slices.ContainsFunc(b.Modules, func(m Module) bool { return m.Inferred }) {
		facts = append(facts, "dependencies inferred from source file paths")
	}
	if b.Stripped {
		facts = append(facts, "stripped")
	}
	if b.PIE {
		facts = append(facts, "PIE")
	}
	if len(b.PIDs) > 0 {
		p := make([]string, len(b.PIDs))
		for i, pid := range b.PIDs {
			p[i] = fmt.Sprint(pid)
		}
		facts = append(facts, "pid "+strings.Join(p, " "))
	}
	return strings.Join(facts, ", ")
}

// osvGroup is one vulnerability within a status section: the findings of
// that status in each binary.
type osvGroup struct {
	first *Finding
	in    []binaryFinding
}

type binaryFinding struct {
	b *Binary
	f *Finding
}

// groupByOSV returns the findings of status st grouped by OSV ID, in the
// order of the IDs.
func groupByOSV(r *Report, st Status) []*osvGroup {
	byID := map[string]*osvGroup{}
	var ids []string
	for _, b := range r.Binaries {
		for _, f := range b.Findings {
			if f.Status != st {
				continue
			}
			g := byID[f.OSV]
			if g == nil {
				g = &osvGroup{first: f}
				byID[f.OSV] = g
				ids = append(ids, f.OSV)
			}
			g.in = append(g.in, binaryFinding{b, f})
		}
	}
	slices.Sort(ids)
	out := make([]*osvGroup, len(ids))
	for i, id := range ids {
		out[i] = byID[id]
	}
	return out
}

func (t *textWriter) group(g *osvGroup) {
	f := g.first
	t.line("")
	head := f.OSV
	if len(f.Aliases) > 0 {
		head += "  " + strings.Join(f.Aliases, ", ")
	}
	t.line("%s", head)
	if f.Summary != "" {
		t.prose("  ", f.Summary)
	}
	t.line("  %s", f.URL())
	for _, bf := range g.in {
		t.line("")
		at := moduleAt(bf.f)
		if m := bf.b.Module(bf.f.Module); m != nil && m.Inferred {
			at += " (version inferred from source file paths)"
		}
		t.line("  In %s: %s", bf.b.Name(), at)
		t.prose("    ", upperFirst(bf.f.Advice(bf.b))+".")
		if bf.f.WholeModule {
			t.prose("    ", scopeSentence(bf.f))
		}
		for _, s := range bf.f.Symbols {
			t.symbol(s)
		}
	}
}

// moduleAt is "golang.org/x/text@v0.3.5", or "Go standard library go1.19"
// for stdlib.
func moduleAt(f *Finding) string {
	switch f.Module {
	case "stdlib":
		return "Go standard library " + f.DisplayVersion()
	case "toolchain":
		return "Go toolchain " + f.DisplayVersion()
	}
	return f.Module + "@" + f.Version
}

// inferredSentence says, for the formats without the text report's
// module line, that f's module version in b was inferred; "" when the
// build information lists it.
func inferredSentence(b *Binary, f *Finding) string {
	if m := b.Module(f.Module); m == nil || !m.Inferred {
		return ""
	}
	return fmt.Sprintf("The version of %s was inferred from the source file paths of the binary: its build information does not list the module (as in test binaries).", f.Module)
}

func (t *textWriter) symbol(s *Symbol) {
	name := symbolName(s)
	switch {
	case s.Scope == ScopeModule:
		name += " (no symbol data: any code of the module)"
	case s.Name == "":
		name += " (no symbols listed: any code of the package)"
	}
	const pad = "             " // under the name, past "    reached  "
	switch s.Status {
	case NotWatched:
		t.line("    %s %s", "not watched", name)
		t.watchFacts(pad, s)
		return
	case Reached:
	default:
		t.line("    %-8s %s", s.Status, name)
		return
	}
	t.line("    %-8s %s: %s", s.Status, name, hitsText(s.Hits, s.HitsLowerBound))
	if s.FirstSeen != nil {
		if s.LastSeen == nil || s.LastSeen.Equal(*s.FirstSeen) {
			t.line("%sseen %s", pad, stamp(*s.FirstSeen))
		} else {
			t.line("%sfirst seen %s, last %s", pad, stamp(*s.FirstSeen), stamp(*s.LastSeen))
		}
	}
	if fn := entered(s); fn != "" {
		t.line("%sentered at %s", pad, fn)
	}
	if len(s.Callsites) == 0 {
		t.line("%scallsite unknown", pad)
	}
	for _, c := range s.Callsites {
		t.line("%sfrom %s (%s)", pad, c.Function, hitsText(c.Hits, s.HitsLowerBound))
		t.line("%s  at %s:%d", pad, c.File, c.Line)
	}
	t.unplacedHits(pad, s)
	if len(s.Unwatched) > 0 {
		t.watchFacts(pad, s)
	}
}

// watchFacts says when a symbol was watched and why not at other times.
func (t *textWriter) watchFacts(pad string, s *Symbol) {
	t.prose(pad, watchNote(s))
}

// hitsText says how many hits a symbol or callsite has: "1 hit", "5
// hits", "at least 5 hits" when atLeast.
func hitsText(n uint64, atLeast bool) string {
	return howMany(n, atLeast, "1 hit", "%d hits")
}

func stamp(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func span(from, to time.Time) string {
	if to.IsZero() {
		return "since " + stamp(from)
	}
	return fmt.Sprintf("%s to %s (%s)", stamp(from), stamp(to), to.Sub(from).Round(time.Second))
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// wrap splits s into lines of at most width bytes at spaces; a word longer
// than width gets a line of its own.
func wrap(s string, width int) []string {
	var lines []string
	cur := ""
	for _, word := range strings.Fields(s) {
		switch {
		case cur == "":
			cur = word
		case len(cur)+1+len(word) <= width:
			cur += " " + word
		default:
			lines = append(lines, cur)
			cur = word
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}
