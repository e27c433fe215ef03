package oracle

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints one line per binary and mode: what coverage saw run,
// what reach reported, their agreement, the counts and whether the tests'
// results stayed the same.
func WriteTable(w io.Writer, results []*Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "case\tgo\tbinary\tmode\tvulnerable\tcoverage ran\treach reached\tagree\tmissed\tfalse\tcounts exact/lower/wrong\ttests identical\tinlined copies\t")
	for _, r := range results {
		for _, run := range r.Runs {
			mode := "one-shot"
			counts := fmt.Sprintf("-/-/%d", len(run.WrongCounts))
			if run.Count {
				mode = "-count"
				counts = fmt.Sprintf("%d/%d/%d", run.Exact, run.LowerBound, len(run.WrongCounts))
			}
			bin := run.Binary
			if !run.SameRun {
				bin += " (vs bare cover run)"
			}
			inl := r.Inlined[0]
			if run.Binary == "cover" {
				inl = r.Inlined[1]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t\n",
				r.Case.Name, r.GoVersion, bin, mode, r.Vulnerable-len(r.Uncovered), run.Covered, run.Reached,
				run.Agree, len(run.Missed), len(run.False), counts, yesNo(run.TestsDiff == ""), inl)
		}
	}
	tw.Flush()
}

// WriteDetails prints every disagreement, the keys left out and the
// report's module count of each run.
func WriteDetails(w io.Writer, results []*Result) {
	for _, r := range results {
		fmt.Fprintf(w, "== %s (%s, %s)\n", r.Case.Name, caseSource(r.Case), r.GoVersion)
		if len(r.Uncovered) > 0 {
			fmt.Fprintf(w, "  not countable by coverage (left out): %s\n", joinKeys(r.Uncovered))
		}
		if len(r.Unstable) > 0 {
			fmt.Fprintf(w, "  coverage differs between runs (left out of plain runs): %s\n", joinKeys(r.Unstable))
		}
		for _, run := range r.Runs {
			mode := "one-shot"
			if run.Count {
				mode = "-count"
			}
			if !run.SameRun {
				mode += " (coverage of the bare coverage run: differences can be the program's own)"
			}
			if run.OK() && len(run.CoverageOwn) == 0 {
				fmt.Fprintf(w, "  %s %s: agrees (%d reached, report lists %d modules)\n", run.Binary, mode, run.Agree, run.Modules)
				continue
			}
			fmt.Fprintf(w, "  %s %s: report lists %d modules\n", run.Binary, mode, run.Modules)
			for _, m := range run.Missed {
				fmt.Fprintf(w, "    missed: %s\n", m)
			}
			for _, m := range run.CoverageOwn {
				fmt.Fprintf(w, "    reached by the coverage runtime only (left out): %s\n", m)
			}
			for _, m := range run.False {
				fmt.Fprintf(w, "    false reached: %s\n", m)
			}
			for _, m := range run.WrongCounts {
				fmt.Fprintf(w, "    wrong count: %s\n", m)
			}
			if run.TestsDiff != "" {
				fmt.Fprintf(w, "    results changed: %s\n", run.TestsDiff)
			}
		}
	}
}

func caseSource(c Case) string {
	s := c.Module
	if s == "" {
		s = c.Dir
	}
	s += " " + c.Package
	if c.Test {
		s += " tests"
	}
	if c.PIE {
		s += ", PIE"
	}
	if c.Stripped {
		s += ", stripped"
	}
	return s
}

func joinKeys(keys []Key) string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = k.String()
	}
	return strings.Join(s, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
