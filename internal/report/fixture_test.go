package report

import "time"

func ts(min int) *time.Time {
	t := time.Date(2025, 3, 14, 9, min, 0, 0, time.UTC)
	return &t
}

// fixtureReport is a hand-built report with every case the renderers must
// handle: reached, linked and imported findings, stdlib and modules, a
// replaced module, symbols with and without callsites, a fix and none, two
// binaries sharing an OSV entry, notes, targets changed while running,
// symbols not watched for part of the time or never, and a reached symbol
// not watched in one process.
func fixtureReport() *Report {
	return &Report{
		Targets: []Selection{
			{From: *ts(0), File: "/etc/reach/targets", Selectors: []Selector{{Selector: "GO-2021-0113", Line: 1}, {Selector: "net/http", Line: 2}, {Selector: "gopkg.in/yaml.v2.Unmarshal", Line: 4}}},
			{From: *ts(10), File: "/etc/reach/targets", Selectors: []Selector{{Selector: "GO-2021-0113", Line: 1}, {Selector: "net/http", Line: 2}}},
		},
		Schema:   Schema,
		Tool:     Tool{Name: "reach", Version: "v0.1.0"},
		DB:       DB{Source: "https://vuln.go.dev", Modified: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)},
		Mode:     "run",
		Started:  *ts(0),
		Finished: *ts(30),
		Notes:    []string{"vulnerability database cache is 13 days old; refresh it with -db-refresh"},
		Binaries: []*Binary{
			{
				Path:        "/srv/bin/app",
				BuildID:     "Xq1/abc/def/ghi",
				GoVersion:   "go1.19.0",
				MainModule:  "example.com/app",
				MainVersion: "v1.4.0",
				PIE:         true,
				PIDs:        []int{4242},
				Modules: []Module{
					{Path: "golang.org/x/text", Version: "v0.3.5"},
					{Path: "gopkg.in/yaml.v2", Version: "v2.2.3", Replace: "example.com/fork/yaml@v2.2.3"},
				},
				Findings: []*Finding{
					{
						OSV: "GO-2020-0036", Aliases: []string{"CVE-2019-11254"},
						Summary: "Excessive resource consumption in YAML parsing in gopkg.in/yaml.v2",
						Module:  "gopkg.in/yaml.v2", Version: "v2.2.3", FixedVersion: "v2.2.8",
						Status: Imported,
					},
					{
						OSV: "GO-2021-0113", Aliases: []string{"CVE-2020-28851", "GHSA-xxxx-yyyy-zzzz"},
						Summary: "Out-of-bounds read in golang.org/x/text/language",
						Module:  "golang.org/x/text", Version: "v0.3.5", FixedVersion: "v0.3.7",
						Status: Reached,
						Symbols: []*Symbol{
							{Package: "golang.org/x/text/language", Name: "MatchStrings", Status: Linked},
							{
								Package: "golang.org/x/text/language", Name: "Parse", Status: Reached,
								Hits: 12, FirstSeen: ts(3), LastSeen: ts(17),
								Callsites: []*Callsite{
									{Function: "example.com/app/api.(*Server).negotiate", File: "/home/dev/app/api/lang.go", Line: 41, Hits: 10},
									{Function: "main.main", File: "example.com/app/main.go", Line: 22, Hits: 2},
								},
								Stack: []Frame{
									{Function: "golang.org/x/text/language.Parse", File: "/root/go/pkg/mod/golang.org/x/text@v0.3.5/language/parse.go", Line: 33},
									{Function: "example.com/app/api.(*Server).negotiate", File: "/home/dev/app/api/lang.go", Line: 41},
									{Function: "main.main", File: "/home/dev/app/main.go", Line: 22},
								},
							},
						},
					},
					{
						OSV: "GO-2022-0969", Aliases: []string{"CVE-2022-27664"},
						Summary: "Denial of service in net/http: HTTP/2 server connections can hang forever waiting for a clean shutdown that was preempted by a fatal error",
						Module:  "stdlib", Version: "v1.19.0", FixedVersion: "v1.19.1",
						Status: Reached,
						Symbols: []*Symbol{
							// Reached, but the engine could not say from where.
							{Package: "net/http", Name: "ServeConn", Status: Reached, Hits: 1, FirstSeen: ts(5), LastSeen: ts(5),
								Watched:   []Period{{From: *ts(0), Until: ts(5)}},
								Unwatched: []string{"its probes could not be armed in process 4243: too many open files"}},
							{Package: "net/http", Name: "Server.Serve", Status: Linked},
						},
					},
					{
						OSV: "GO-2021-0061", Aliases: []string{"CVE-2021-4235"},
						Summary: "Denial of service in gopkg.in/yaml.v2",
						Module:  "gopkg.in/yaml.v2", Version: "v2.2.3", FixedVersion: "v2.2.3",
						Status: NotWatched,
						Symbols: []*Symbol{
							// Watched until the targets changed, then not.
							{Package: "gopkg.in/yaml.v2", Name: "Unmarshal", Status: NotWatched,
								Watched:   []Period{{From: *ts(0), Until: ts(10)}},
								Unwatched: []string{"not selected by the targets in force"}},
							{Package: "gopkg.in/yaml.v2", Name: "decoder.unmarshal", Status: NotWatched,
								Unwatched: []string{"not selected by the targets in force"}},
						},
					},
					{
						OSV:     "GO-2023-1571",
						Summary: "Denial of service via crafted HTTP/2 stream in net/http and golang.org/x/net",
						Module:  "stdlib", Version: "v1.19.0", FixedVersion: "v1.19.6",
						Status:  Linked,
						Symbols: []*Symbol{{Package: "net/http", Name: "", Status: Linked}},
					},
				},
			},
			{
				Path:       "/srv/bin/worker",
				GoVersion:  "go1.21.0",
				MainModule: "example.com/app",
				Stripped:   true,
				Modules:    []Module{{Path: "golang.org/x/text", Version: "v0.3.5"}},
				Findings: []*Finding{
					{
						OSV: "GO-2021-0113", Aliases: []string{"CVE-2020-28851", "GHSA-xxxx-yyyy-zzzz"},
						Summary: "Out-of-bounds read in golang.org/x/text/language",
						Module:  "golang.org/x/text", Version: "v0.3.5", FixedVersion: "v0.3.7",
						Status:  Linked,
						Symbols: []*Symbol{{Package: "golang.org/x/text/language", Name: "Parse", Status: Linked}},
					},
					{
						OSV:     "GO-2099-0001",
						Summary: "Unfixed flaw in an example module",
						Module:  "example.com/nofix", Version: "v1.0.0",
						Status: Imported,
					},
				},
			},
		},
	}
}
