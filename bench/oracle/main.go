// Command oracle checks reach against Go's coverage on real projects' test
// suites (package internal/oracle): per binary, the vulnerable symbols
// coverage saw run against those reach reported reached, -count hits
// against coverage's call counts, and the tests' results with and without
// reach. It prints a table and every disagreement.
//
//	go run ./bench/oracle [-db DIR] [-case REGEXP] [-ci] [-reach BINARY] [-keep] [-v]
//
// It needs root (eBPF) and the module proxy (the projects are fetched at
// fixed versions); the builds are cached by the go command.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"regexp"

	"github.com/reach-sca/reach/bench/internal/harness"
	"github.com/reach-sca/reach/internal/oracle"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench/oracle: ")
	db := flag.String("db", harness.DefaultDB(), "vulnerability database directory")
	only := flag.String("case", "", "run only the cases whose name matches this regular expression")
	ci := flag.Bool("ci", false, "run only the cases the package's test runs")
	verbose := flag.Bool("v", false, "log progress to standard error")
	keep := flag.Bool("keep", false, "keep the work directory (binaries, reports, counters) and print its path")
	reach := flag.String("reach", "", "the reach binary to check (default: build ./cmd/reach)")
	flag.Parse()

	ctx := context.Background()
	setup, err := harness.Prepare(ctx, "oracle", *db)
	if err != nil {
		log.Fatal(err)
	}
	if *keep {
		log.Printf("work directory: %s", setup.Tmp)
	} else {
		defer setup.Close()
	}
	re, err := regexp.Compile(*only)
	if err != nil {
		log.Fatalf("-case: %v", err)
	}
	cases := oracle.AllCases()
	if *ci {
		cases = oracle.CICases()
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	if *reach != "" {
		setup.Reach = *reach
	}
	cfg := oracle.Config{Reach: setup.Reach, DB: setup.DB, Work: setup.Tmp,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))}
	var results []*oracle.Result
	failed := false
	for _, c := range cases {
		if !re.MatchString(c.Name) {
			continue
		}
		r, err := oracle.Check(ctx, cfg, c)
		if err != nil {
			log.Printf("%s: %v", c.Name, err)
			failed = true
			continue
		}
		results = append(results, r)
	}
	oracle.WriteTable(os.Stdout, results)
	fmt.Println()
	oracle.WriteDetails(os.Stdout, results)
	for _, r := range results {
		failed = failed || !r.OK()
	}
	if failed {
		if !*keep {
			setup.Close()
		}
		os.Exit(1)
	}
}
