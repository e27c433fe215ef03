// Command server measures `reach server` under a simulated fleet, on
// SQLite and on PostgreSQL side by side in one run: a real server process
// per store on loopback (cmd/reach built once), fed by simulated agents,
// goroutines speaking the protocol with internal/fleet's client (enrolment
// with a token from `reach server enrol-token`, report batches retried with
// their sequence number, configuration long polls).
//
// It measures, alternating the stores round by round, with medians:
//
//   - finding updates stored per second: -agents agents (100) each report
//     their -per-agent binaries (report.Binary as reach writes it: ~40
//     modules, 20 to 30 findings, reached ones with callsites and a stack)
//     again and again with growing hit counts, -concurrency batches in
//     flight, for -d per round; every finding row of a batch (one per
//     callsite of a reached symbol, one per other symbol, one per finding
//     without symbols) is one update;
//   - the latency of each report POST (each attempt, timed in the
//     client's transport): under that saturating load, and at half the
//     rate the store sustained (paced);
//   - configuration propagation: the 100 agents long-poll the
//     configuration; from just before an admin's PUT /api/v1/config, the
//     time until every agent received it, until each one's next batch
//     saying it applied it was answered, and until GET
//     /api/v1/config/agents shows all 100 applied;
//   - the fleet overview (GET /api/v1/overview, and the dashboard's GET /
//     logged in) with -findings finding rows stored (100,000), seeded
//     through the protocol.
//
// After the load it checks the stores against what was sent, reading each
// database directly: finding rows, sightings, hit totals and batches
// (none lost, none doubled; every 50th batch is sent twice, as an agent
// retrying after a lost answer does, and must be answered as a duplicate).
//
//	go run ./bench/server [-quick] [-rounds R] [-d 10s] [-agents 100] [-stores sqlite,postgres]
//
// It exits 1 when a store holds other than what was sent, or on any
// error; a goal missed is printed, not an error (the machine's load moves
// the figures).
//
// PostgreSQL comes from $REACH_TEST_POSTGRES (or -postgres), a DSN of a
// role that may CREATE DATABASE (`. .ci/services` sets it up): the
// benchmark makes a fresh database there and drops it at the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/reach-sca/reach/bench/internal/harness"
	"github.com/reach-sca/reach/internal/testprog"
)

type options struct {
	agents, services, perAgent, concurrency int
	rounds, configRounds, overviewRequests  int
	d                                       time.Duration
	findings                                int
	stores                                  []string
	postgres, reach                         string
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench/server: ")
	var o options
	quick := flag.Bool("quick", false, "a short run (about a minute: 1 round of 3 s, 2 configuration changes, 20,000 findings for the overview), for CI")
	flag.IntVar(&o.agents, "agents", 100, "simulated agents (each long-polls the configuration)")
	flag.IntVar(&o.services, "services", 20, "services the binaries belong to")
	flag.IntVar(&o.perAgent, "per-agent", 2, "binaries each agent reports in every batch")
	flag.IntVar(&o.concurrency, "concurrency", 16, "report batches in flight")
	flag.IntVar(&o.rounds, "rounds", 3, "load rounds per store, alternating")
	flag.DurationVar(&o.d, "d", 10*time.Second, "load duration per round")
	flag.IntVar(&o.configRounds, "config-rounds", 5, "configuration changes per store, alternating (0: none)")
	flag.IntVar(&o.findings, "findings", 100_000, "finding rows stored before timing the overview")
	flag.IntVar(&o.overviewRequests, "overview-requests", 10, "overview requests per store, alternating, after a first one timed apart")
	flag.BoolVar(&serverLog, "server-log", false, "pass the servers' logs (reach server -v) on to standard error")
	stores := flag.String("stores", "sqlite,postgres", "stores to measure, comma-separated")
	flag.StringVar(&o.postgres, "postgres", os.Getenv("REACH_TEST_POSTGRES"), "DSN of a PostgreSQL role that may CREATE DATABASE")
	flag.StringVar(&o.reach, "reach", "", "the reach binary to run as the server (default: build ./cmd/reach)")
	flag.Parse()
	if *quick {
		// Only where no flag says otherwise.
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, value := range map[string]string{"rounds": "1", "d": "3s", "config-rounds": "2", "findings": "20000", "overview-requests": "5"} {
			if !set[name] {
				flag.Set(name, value)
			}
		}
	}
	for _, s := range strings.Split(*stores, ",") {
		s = strings.TrimSpace(s)
		if s != "sqlite" && s != "postgres" {
			log.Fatalf("-stores: %q: use sqlite and postgres", s)
		}
		o.stores = append(o.stores, s)
	}
	if o.agents <= 0 || o.services <= 0 || o.perAgent <= 0 || o.concurrency <= 0 || o.rounds <= 0 || o.d <= 0 || o.configRounds < 0 || o.overviewRequests <= 0 || o.findings < 0 {
		log.Fatal("-agents, -services, -per-agent, -concurrency, -rounds, -d and -overview-requests must be positive, -config-rounds and -findings not negative")
	}
	if slices.Contains(o.stores, "postgres") && o.postgres == "" {
		log.Fatal("PostgreSQL: set REACH_TEST_POSTGRES (or -postgres) to a DSN of a role that may CREATE DATABASE (as root on Debian, `. .ci/services` sets one up), or measure SQLite alone with -stores sqlite")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// storeRun is one store's server and what was measured on it.
type storeRun struct {
	srv    *server
	agents []*agent
	led    *ledger
	rounds []round
	paced  round
	props  []propagation
	seed   round
	api    []time.Duration
	page   []time.Duration
	// coldAPI and coldPage are the first overview requests after the
	// seeding, not among api and page.
	coldAPI, coldPage time.Duration
	bad               []string
	stored            stored
}

func run(ctx context.Context, o options) error {
	if err := harness.CheckRepoRoot(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "reach-bench-server-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	reach := o.reach
	if reach == "" {
		if reach, err = harness.BuildReach(ctx, tmp); err != nil {
			return err
		}
	}
	var (
		runs  []*storeRun
		drops []func() error
	)
	defer func() {
		for _, r := range runs {
			r.srv.stop()
		}
		for _, drop := range drops {
			if err := drop(); err != nil {
				log.Print(err)
			}
		}
	}()
	for _, s := range o.stores {
		name, data, dsn := "SQLite", filepath.Join(tmp, "sqlite"), ""
		if s == "postgres" {
			name, data = "PostgreSQL", filepath.Join(tmp, "postgres")
			var drop func() error
			if dsn, drop, err = testprog.NewPostgresDatabase(o.postgres, "bench_server"); err != nil {
				return fmt.Errorf("PostgreSQL: %w", err)
			}
			drops = append(drops, drop)
		}
		srv, err := startServer(ctx, reach, name, data, dsn)
		if err != nil {
			return err
		}
		r := &storeRun{srv: srv, led: newLedger()}
		runs = append(runs, r)
		tok, err := srv.enrolToken(ctx)
		if err != nil {
			return err
		}
		if r.agents, err = enrolAll(ctx, srv, tok, o.agents); err != nil {
			return err
		}
		if err := srv.login(ctx); err != nil {
			return err
		}
	}
	l := &load{u: newUniverse(o.services), perAgent: o.perAgent, concurrency: o.concurrency, specs: map[int]*binarySpec{}}
	l.prepare(runs[0].agents)
	fmt.Printf("reach server on loopback, %s; %d simulated agents, %d services, %s\n", storeNames(runs), o.agents, o.services, loadAvg())
	fmt.Printf("each batch: %d binaries (report.Binary with ~40 modules, 20-30 findings, reached ones with 1-3 callsites and a 12-frame stack), %s finding rows; %d batches in flight\n",
		o.perAgent, rowsPerBatch(l, runs[0].agents), o.concurrency)
	fmt.Printf("%d rounds of %s per store, alternating; medians. The machine is shared: figures are noisy.\n\n", o.rounds, o.d)

	for i := range o.rounds {
		for _, r := range order(runs, i) {
			rd, err := l.run(ctx, r.agents, r.led, o.d, 0)
			if err != nil {
				return fmt.Errorf("%s: %w", r.srv.name, err)
			}
			if err := r.srv.alive(); err != nil {
				return err
			}
			r.rounds = append(r.rounds, rd)
			fmt.Printf("  round %d  %-10s %8.0f finding updates/s  (%d batches, p50 %.1f ms, p99 %.1f ms%s; CPU: reach server%s %.0f%%, load generator %.0f%%)\n",
				i+1, r.srv.name, rd.perSecond(), rd.batches, harness.Ms(pct(rd.stats, 50)), harness.Ms(pct(rd.stats, 99)), retries(rd.stats), r.srv.withBackends(), rd.serverCPU, rd.selfCPU)
		}
	}
	// Latency at half the rate each store sustained.
	for _, r := range runs {
		rate := max(1, 0.5*harness.Median(batchRates(r.rounds)))
		rd, err := l.run(ctx, r.agents, r.led, o.d, rate)
		if err != nil {
			return fmt.Errorf("%s: %w", r.srv.name, err)
		}
		r.paced = rd
		fmt.Printf("  paced     %-10s %8.0f finding updates/s  (%.0f batches/s, p50 %.1f ms, p99 %.1f ms%s)\n",
			r.srv.name, rd.perSecond(), rate, harness.Ms(pct(rd.stats, 50)), harness.Ms(pct(rd.stats, 99)), retries(rd.stats))
	}
	fmt.Println()
	for i := range o.configRounds {
		for _, r := range order(runs, i) {
			p, err := propagate(ctx, r.srv, r.agents, r.led, i)
			if err != nil {
				return fmt.Errorf("%s: configuration: %w", r.srv.name, err)
			}
			r.props = append(r.props, p)
			fmt.Printf("  change %d  %-10s received by all %d agents %6.0f ms, their batches saying so answered %6.0f ms, shown applied %6.0f ms\n",
				i+1, r.srv.name, len(r.agents), harness.Ms(p.received), harness.Ms(p.acked), harness.Ms(p.shown))
		}
	}
	fmt.Println()
	for _, r := range runs {
		rd, err := l.seed(ctx, r.agents, r.led, o.findings, o.agents*o.perAgent)
		if err != nil {
			return fmt.Errorf("%s: seeding: %w", r.srv.name, err)
		}
		r.seed = rd
		if rd.batches == 0 {
			fmt.Printf("  seeded    %-10s nothing: %d finding rows stored already\n", r.srv.name, r.led.rows())
			continue
		}
		fmt.Printf("  seeded    %-10s %d finding rows stored (new rows: %.0f inserts/s over %d batches)\n", r.srv.name, r.led.rows(), rd.perSecond(), rd.batches)
	}
	for i := range o.overviewRequests + 1 {
		for _, r := range order(runs, i) {
			api, page, err := timeOverview(ctx, r.srv)
			if err != nil {
				return err
			}
			if i == 0 {
				r.coldAPI, r.coldPage = api, page
				continue
			}
			r.api = append(r.api, api)
			r.page = append(r.page, page)
		}
	}
	for _, r := range runs {
		if r.bad, r.stored, err = check(ctx, r.srv, r.agents, l, r.led); err != nil {
			return err
		}
	}
	summary(o, runs)
	var bad []string
	for _, r := range runs {
		if len(r.bad) > 0 {
			bad = append(bad, r.srv.name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("what %s stored differs from what was sent (above)", strings.Join(bad, " and "))
	}
	return nil
}

// order is the stores in round i: A B, then B A, and so on.
func order(runs []*storeRun, i int) []*storeRun {
	if i%2 == 1 {
		r := slices.Clone(runs)
		slices.Reverse(r)
		return r
	}
	return runs
}

func storeNames(runs []*storeRun) string {
	var names []string
	for _, r := range runs {
		names = append(names, r.srv.name)
	}
	return strings.Join(names, " and ")
}
