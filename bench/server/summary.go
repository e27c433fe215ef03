package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/reach-sca/reach/bench/internal/harness"
)

// pct returns the p-th percentile of the latencies in st.
func pct(st *sendStats, p int) time.Duration {
	st.mu.Lock()
	defer st.mu.Unlock()
	return percentile(st.latencies, p)
}

func percentile(xs []time.Duration, p int) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// retries says how many answers were 429 or failures, if any.
func retries(st *sendStats) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var s string
	if st.limited > 0 {
		s += fmt.Sprintf(", %d answered 429", st.limited)
	}
	if st.failed > 0 {
		s += fmt.Sprintf(", %d failed and retried, the last with %q", st.failed, st.failure)
	}
	return s
}

func batchRates(rounds []round) []float64 {
	var r []float64
	for _, rd := range rounds {
		r = append(r, float64(rd.batches)/rd.took.Seconds())
	}
	return r
}

// rowsPerBatch describes the finding rows in the agents' batches.
func rowsPerBatch(l *load, agents []*agent) string {
	lo, hi, sum := 1<<30, 0, 0
	for _, a := range agents {
		n := 0
		for _, s := range l.agentSpecs(a.n) {
			n += s.rows
		}
		lo, hi, sum = min(lo, n), max(hi, n), sum+n
	}
	return fmt.Sprintf("%d to %d (mean %d)", lo, hi, sum/len(agents))
}

// loadAvg is the machine's load average, for the reader to judge noise.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load average unknown"
	}
	f := strings.Fields(string(data))
	return "load average " + strings.Join(f[:min(3, len(f))], " ")
}

// pooled returns every latency of rounds.
func pooled(rounds []round) *sendStats {
	st := &sendStats{}
	for _, r := range rounds {
		st.latencies = append(st.latencies, r.stats.latencies...)
	}
	return st
}

// summary prints the results side by side, with the goals.
func summary(o options, runs []*storeRun) {
	fmt.Printf("\nafter the load (%s)\n\n", loadAvg())
	w := 12
	fmt.Printf("  %-58s", "")
	for _, r := range runs {
		fmt.Printf(" %*s", w, r.srv.name)
	}
	if len(runs) == 2 {
		fmt.Printf(" %*s", w, "PG / SQLite")
	}
	fmt.Println()
	line := func(what string, f func(r *storeRun) float64, format string, ratio bool) {
		fmt.Printf("  %-58s", what)
		var v []float64
		for _, r := range runs {
			x := f(r)
			v = append(v, x)
			fmt.Printf(" %*s", w, fmt.Sprintf(format, x))
		}
		if ratio && len(v) == 2 && v[0] != 0 {
			fmt.Printf(" %*s", w, fmt.Sprintf("%.2fx", v[1]/v[0]))
		}
		fmt.Println()
	}
	ms := func(d time.Duration) float64 { return harness.Ms(d) }
	line(fmt.Sprintf("finding updates/s (median of %d rounds)", o.rounds), func(r *storeRun) float64 {
		var x []float64
		for _, rd := range r.rounds {
			x = append(x, rd.perSecond())
		}
		return harness.Median(x)
	}, "%.0f", true)
	line("report POST latency p50, saturated (ms)", func(r *storeRun) float64 { return ms(pct(pooled(r.rounds), 50)) }, "%.1f", true)
	line("report POST latency p99, saturated (ms)", func(r *storeRun) float64 { return ms(pct(pooled(r.rounds), 99)) }, "%.1f", true)
	line("report POST latency p50, at half that rate (ms)", func(r *storeRun) float64 { return ms(pct(r.paced.stats, 50)) }, "%.1f", true)
	line("report POST latency p99, at half that rate (ms)", func(r *storeRun) float64 { return ms(pct(r.paced.stats, 99)) }, "%.1f", true)
	prop := func(f func(p propagation) time.Duration, worst bool) func(r *storeRun) float64 {
		return func(r *storeRun) float64 {
			var x []time.Duration
			for _, p := range r.props {
				x = append(x, f(p))
			}
			if worst {
				return ms(maxOf(x))
			}
			return ms(harness.Median(x))
		}
	}
	n := len(runs[0].agents)
	if o.configRounds > 0 {
		line(fmt.Sprintf("config change: received by all %d agents, median (ms)", n), prop(func(p propagation) time.Duration { return p.received }, false), "%.0f", false)
		line(fmt.Sprintf("  applied by all %d, as the server shows, median (ms)", n), prop(func(p propagation) time.Duration { return p.shown }, false), "%.0f", false)
		line(fmt.Sprintf("  applied, worst of %d changes (ms)", o.configRounds), prop(func(p propagation) time.Duration { return p.shown }, true), "%.0f", false)
	}
	stored := runs[0].stored.rows
	line(fmt.Sprintf("GET /api/v1/overview, %d findings, median (ms)", stored), func(r *storeRun) float64 { return ms(harness.Median(r.api)) }, "%.1f", true)
	line(fmt.Sprintf("  worst of %d (ms)", o.overviewRequests), func(r *storeRun) float64 { return ms(maxOf(r.api)) }, "%.1f", false)
	line("  first, after the seeding (ms)", func(r *storeRun) float64 { return ms(r.coldAPI) }, "%.1f", false)
	if dashboard(runs) {
		line("GET / (dashboard overview, logged in), median (ms)", func(r *storeRun) float64 { return ms(harness.Median(r.page)) }, "%.1f", true)
		line(fmt.Sprintf("  worst of %d (ms)", o.overviewRequests), func(r *storeRun) float64 { return ms(maxOf(r.page)) }, "%.1f", false)
		line("  first, after the seeding (ms)", func(r *storeRun) float64 { return ms(r.coldPage) }, "%.1f", false)
	} else {
		fmt.Println("  GET / (dashboard overview): not measured, the server has no dashboard (404)")
	}

	fmt.Println("\ngoals")
	for _, r := range runs {
		goal := 5000.0
		if r.srv.store != "" {
			goal = 10000
		}
		var x []float64
		for _, rd := range r.rounds {
			x = append(x, rd.perSecond())
		}
		ups := harness.Median(x)
		var shown []time.Duration
		for _, p := range r.props {
			shown = append(shown, p.shown)
		}
		config := "not measured (-config-rounds 0)"
		if len(shown) > 0 {
			config = fmt.Sprintf("%.0f ms at worst (goal < 2 s: %s)", ms(maxOf(shown)), harness.Goal(maxOf(shown) < 2*time.Second))
		}
		timing := fmt.Sprintf("overview %.0f ms (median; worst %.0f)", ms(harness.Median(r.api)), ms(maxOf(r.api)))
		verdict := "not measured with 100,000 (-findings)"
		if dashboard(runs) {
			timing += fmt.Sprintf(", dashboard %.0f ms (median; worst %.0f)", ms(harness.Median(r.page)), ms(maxOf(r.page)))
			if r.stored.rows >= 100_000 {
				verdict = harness.Goal(max(harness.Median(r.api), harness.Median(r.page)) < 200*time.Millisecond)
			}
		} else {
			verdict = "the dashboard's page not measured"
		}
		fmt.Printf("  %-10s %.0f finding updates/s (goal >= %.0f: %s); configuration applied by %d agents in %s; %s with %d findings (goal < 200 ms with 100,000: %s)\n",
			r.srv.name, ups, goal, harness.Goal(ups >= goal), n, config, timing, r.stored.rows, verdict)
	}
	fmt.Println("\nstored against sent (read from each database directly)")
	for _, r := range runs {
		st := r.stored
		verdict := "all equal"
		if len(r.bad) > 0 {
			verdict = "DIFFERENT: " + strings.Join(r.bad, "; ")
		}
		fmt.Printf("  %-10s %d finding rows, %d sightings, %d hits, %d batches (%d finding updates sent, of which the server says it wrote %d, the others unchanged; %d batches sent twice, answered as duplicates): %s\n",
			r.srv.name, st.rows, st.sightings, st.hits, st.batches, r.led.updates, r.led.written, r.led.duplicates, verdict)
	}
}

// maxOf returns the largest of xs, 0 for none.
func maxOf(xs []time.Duration) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	return slices.Max(xs)
}

// dashboard reports whether every server served the dashboard's page.
func dashboard(runs []*storeRun) bool {
	for _, r := range runs {
		if slices.Contains(r.page, errNoDashboard) || r.coldPage == errNoDashboard {
			return false
		}
	}
	return true
}
