package export

import (
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// hostile is text an attacker may get into a finding (a symbol or file
// name from a crafted binary, a label, a note): quotes, a comma, a line
// break, HTML and a spreadsheet formula.
const hostile = "=cmd|' /C calc'!A0 \"quoted\", new\nline <script>alert(1)</script>"

func at(min int) *time.Time {
	t := time.Date(2026, 11, 30, 9, min, 0, 0, time.UTC)
	return &t
}

// fixtureService is the service "shop" with two builds: b1, built from
// example.com/shop v1.2.0, and b2, a (devel) build. Its findings:
//
//	1, 2  b1 GO-2021-0113 Parse reached from two callsites (affected by reach)
//	3     b1 GO-2022-0969 linked, triaged not_affected by alice (hostile note)
//	4     b1 GO-2099-0001 imported, no fix, no triage
//	5     b2 GO-2021-0113 linked, triaged under_investigation by bob
//	6     b1 GO-2023-1571 linked, triaged not_affected, expired
//	7     b1 GO-2024-0001 reached, hostile symbol and callsite, triaged fixed by carol
func fixtureService() *store.Service {
	b1 := store.Binary{
		BuildID: "b1/aaa", Path: "/srv/shop", GoVersion: "go1.19.0", MainModule: "example.com/shop", MainVersion: "v1.2.0",
		Modules: []report.Module{{Path: "golang.org/x/text", Version: "v0.3.5"}},
	}
	b2 := store.Binary{BuildID: "b2/bbb", Path: "/srv/shop-old", GoVersion: "go1.21.0", MainModule: "example.com/shop", MainVersion: "(devel)"}
	text := store.Finding{
		Service: "shop", BuildID: b1.BuildID, BinaryPath: b1.Path,
		OSV: "GO-2021-0113", Summary: "Out-of-bounds read in golang.org/x/text/language", Aliases: []string{"CVE-2020-28851"},
		Module: "golang.org/x/text", Version: "v0.3.5", FixedVersion: "v0.3.7",
		Package: "golang.org/x/text/language", Symbol: "Parse", Status: report.Reached,
		FirstSeen: *at(0), LastSeen: *at(20), Hosts: []string{"web-1"}, Environments: []string{"prod"},
		Triage: store.Triage{State: store.StateAffected, By: "reach", At: at(3)},
	}
	f1 := text
	f1.ID, f1.Hits, f1.FirstReached = 1, 5, at(3)
	f1.Callsite = &report.Callsite{Function: "main.handle", File: "example.com/shop/main.go", Line: 22}
	f1.Stack = []report.Frame{
		{Function: "golang.org/x/text/language.Parse", File: "/root/go/pkg/mod/golang.org/x/text@v0.3.5/language/parse.go", Line: 33},
		{Function: "main.handle", File: "example.com/shop/main.go", Line: 22},
	}
	f2 := text
	f2.ID, f2.Hits, f2.FirstReached = 2, 3, at(5)
	f2.Callsite = &report.Callsite{Function: "example.com/shop/api.(*S).lang", File: "/home/dev/shop/api/lang.go", Line: 41}
	f3 := store.Finding{
		ID: 3, Service: "shop", BuildID: b1.BuildID, BinaryPath: b1.Path,
		OSV: "GO-2022-0969", Summary: "Denial of service in net/http", Module: "stdlib", Version: "v1.19.0", FixedVersion: "v1.19.1",
		Package: "net/http", Symbol: "ServeConn", Status: report.Linked, FirstSeen: *at(0), LastSeen: *at(20),
		Triage: store.Triage{State: store.StateNotAffected, Justification: "vulnerable_code_not_in_execute_path", Note: hostile, By: "alice", At: at(10)},
	}
	f4 := store.Finding{
		ID: 4, Service: "shop", BuildID: b1.BuildID, BinaryPath: b1.Path,
		OSV: "GO-2099-0001", Summary: "Unfixed flaw", Module: "example.com/nofix", Version: "v1.0.0",
		Package: "example.com/nofix", Status: report.Imported, FirstSeen: *at(0), LastSeen: *at(20),
	}
	f5 := text
	f5.ID, f5.BuildID, f5.BinaryPath, f5.Status = 5, b2.BuildID, b2.Path, report.Linked
	f5.Triage = store.Triage{State: store.StateUnderInvestigation, Note: "checking", By: "bob", At: at(11)}
	f6 := store.Finding{
		ID: 6, Service: "shop", BuildID: b1.BuildID, BinaryPath: b1.Path,
		OSV: "GO-2023-1571", Summary: "Denial of service via HTTP/2", Module: "stdlib", Version: "v1.19.0", FixedVersion: "v1.19.6",
		Package: "net/http", Status: report.Linked, Scope: "package", FirstSeen: *at(0), LastSeen: *at(20),
		Triage: store.Triage{State: store.StateNotAffected, Justification: "component_not_present", By: "dave", At: at(1), Expires: at(2)},
	}
	f7 := store.Finding{
		ID: 7, Service: "shop", BuildID: b1.BuildID, BinaryPath: b1.Path,
		OSV: "GO-2024-0001", Summary: hostile, Module: "example.com/evil", Version: "v0.1.0", FixedVersion: "v0.1.1",
		Package: "example.com/evil", Symbol: hostile, Status: report.Reached, Hits: 1, FirstReached: at(7),
		Callsite:  &report.Callsite{Function: hostile, File: "example.com/shop/" + hostile + ".go", Line: 7},
		FirstSeen: *at(7), LastSeen: *at(7), Hosts: []string{hostile},
		Triage: store.Triage{State: store.StateFixed, Note: hostile, By: "carol", At: at(12)},
	}
	return &store.Service{
		Name:     "shop",
		Binaries: []store.Binary{b1, b2},
		Findings: []store.Finding{f1, f2, f3, f4, f5, f6, f7},
	}
}
