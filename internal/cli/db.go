package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/semver"
	"github.com/reach-sca/reach/internal/vulndb"
)

const dbDoc = `
Db inspects the vulnerability database:

  reach db info                    source, last modification, entry count, cache
  reach db show ID...              the OSV entries, as JSON (by ID or alias: CVE-..., GHSA-...)
  reach db lookup MODULE@VERSION...  the entries that affect that module version
                                   (use stdlib@go1.21.0 for the standard library)`

func runDB(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "db", "[flags] info | show ID... | lookup MODULE@VERSION...", dbDoc)
	var dbf dbFlags
	dbf.register(fs.FlagSet)
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError("db: say info, show ID or lookup MODULE@VERSION")
	}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	// Usage errors first: they need no database.
	switch {
	case sub != "info" && sub != "show" && sub != "lookup":
		return usageError("db: unknown subcommand %q: use info, show or lookup", sub)
	case sub == "show" && len(rest) == 0:
		return usageError("db show: no ID given: reach db show GO-2021-0113")
	case sub == "lookup" && len(rest) == 0:
		return usageError("db lookup: no module given: reach db lookup golang.org/x/text@v0.3.5")
	}
	var lookups []lookup
	if sub == "lookup" {
		var err error
		if lookups, err = parseLookups(rest); err != nil {
			return err
		}
	}
	db, err := dbf.open(e)
	if err != nil {
		return err
	}
	switch sub {
	case "show":
		return dbShow(ctx, e, db, rest)
	case "lookup":
		return dbLookup(ctx, e, db, lookups)
	}
	return dbInfo(ctx, e, db)
}

// dbFlags are the flags that choose and bound the vulnerability database,
// shared by every command that reads it.
type dbFlags struct {
	source   string
	timeout  time.Duration
	insecure bool
}

func (d *dbFlags) register(fs *flag.FlagSet) {
	// No default in the flag itself: help would print it a second time.
	fs.StringVar(&d.source, "db", "", "vulnerability database: an https:// URL, a file:// URL or a directory (default: $GOVULNDB, else https://vuln.go.dev)")
	fs.DurationVar(&d.timeout, "db-timeout", vulndb.DefaultLoadTimeout, "give up reading the database (its index and the entries needed) after this long")
	fs.BoolVar(&d.insecure, "insecure", false, "accept a plain http:// database (or -server) on another host (anyone on the way can read and change it)")
}

// open returns a client of the database the flags name.
func (d *dbFlags) open(e *env) (*vulndb.Client, error) {
	if d.timeout <= 0 {
		return nil, usageError("-db-timeout %v: must be positive", d.timeout)
	}
	source := d.source
	if source == "" {
		source = vulndb.DefaultSource()
	}
	// vulndb's errors name the database already.
	return vulndb.New(source, vulndb.Options{
		Logger:      e.log,
		LoadTimeout: d.timeout,
		Insecure:    d.insecure,
	})
}

func dbInfo(ctx context.Context, e *env, db *vulndb.Client) error {
	info, err := db.Info(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "source:    %s\n", report.Printable(info.Source))
	fmt.Fprintf(e.stdout, "modified:  %s\n", info.Modified.UTC().Format(time.RFC3339))
	fmt.Fprintf(e.stdout, "entries:   %d\n", info.Entries)
	fmt.Fprintf(e.stdout, "modules:   %d\n", info.Modules)
	if info.CachePath != "" {
		fmt.Fprintf(e.stdout, "cache:     %s\n", report.Printable(info.CachePath))
		fmt.Fprintf(e.stdout, "cache age: %s\n", info.CacheAge.Round(time.Second))
	}
	if info.Offline {
		fmt.Fprintf(e.stdout, "offline:   the source could not be reached; this is the cache\n")
	}
	return nil
}

func dbShow(ctx context.Context, e *env, db *vulndb.Client, ids []string) error {
	var errs []error
	for _, id := range ids {
		// An alias (CVE-..., GHSA-...) shows every entry that has it, as
		// -targets selects them.
		found, err := db.Lookup(ctx, id)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			errs = append(errs, fmt.Errorf("entry %s: %w in %s: no entry has this ID or alias", report.Printable(id), vulndb.ErrNotFound, db.Source()))
			continue
		}
		for _, id := range found {
			entry, err := db.ByID(ctx, id)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := report.EncodeJSON(e.stdout, entry); err != nil {
				return err
			}
		}
	}
	return errors.Join(errs...)
}

// lookup is one MODULE@VERSION argument of db lookup.
type lookup struct {
	arg, mod string
	sv       string
}

// parseLookups parses db lookup's arguments, before the database is
// opened: a usage error needs none.
func parseLookups(args []string) ([]lookup, error) {
	var ls []lookup
	for _, arg := range args {
		mod, ver, ok := strings.Cut(arg, "@")
		if !ok || mod == "" || ver == "" {
			return nil, usageError("db lookup %q: write MODULE@VERSION, such as golang.org/x/text@v0.3.5 or stdlib@go1.21.0", arg)
		}
		sv, err := lookupVersion(mod, ver)
		if err != nil {
			return nil, usageError("db lookup %q: %v", arg, err)
		}
		ls = append(ls, lookup{arg: arg, mod: mod, sv: sv})
	}
	return ls, nil
}

func dbLookup(ctx context.Context, e *env, db *vulndb.Client, lookups []lookup) error {
	for _, l := range lookups {
		arg, mod, sv := l.arg, l.mod, l.sv
		entries, err := db.ByModule(ctx, mod)
		if err != nil {
			return err
		}
		n := 0
		for _, entry := range entries {
			if vulndb.Withdrawn(entry) {
				continue
			}
			for _, a := range entry.Affected {
				if a.Module.Path != mod || !semver.Affects(a.Ranges, sv) {
					continue
				}
				n++
				fixed := semver.FixedVersion(a.Ranges, sv)
				if report.IsGo(mod) {
					fixed = report.GoVersion(fixed)
				}
				if fixed == "" {
					fixed = "no fix"
				} else {
					fixed = "fixed in " + fixed
				}
				fmt.Fprintf(e.stdout, "%s  %s (%s)\n    %s\n", report.Printable(entry.ID), report.Printable(arg), report.Printable(fixed), report.Printable(entry.Summary))
				break
			}
		}
		if n == 0 {
			fmt.Fprintf(e.stdout, "%s: no known vulnerabilities\n", report.Printable(arg))
		}
	}
	return nil
}

// lookupVersion turns a user's version into the form semver.Affects takes:
// Go versions for stdlib and toolchain, module versions otherwise.
func lookupVersion(mod, ver string) (string, error) {
	if mod == osv.ModuleStdlib || mod == osv.ModuleToolchain {
		if strings.HasPrefix(ver, "go") {
			return semver.FromGo(ver)
		}
	}
	given := ver
	if !strings.HasPrefix(ver, "v") {
		ver = "v" + ver
	}
	if !semver.Valid(ver) {
		// Quote what the user gave, not the "v" added to it.
		return "", fmt.Errorf("version %q is not a semantic version (such as v1.2.3)", given)
	}
	return ver, nil
}
