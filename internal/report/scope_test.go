package report

import (
	"encoding/json"
	"strings"
	"testing"
)

// wholeModuleReport has the three states of an entry without symbol data:
// reached (with the function its code was entered at), linked, and
// imported (no code of the module in the binary).
func wholeModuleReport() *Report {
	return &Report{
		Schema: Schema,
		Tool:   Tool{Name: "reach", Version: "v0.1.0"},
		Mode:   "run",
		Binaries: []*Binary{{
			Path:       "/srv/bin/app",
			GoVersion:  "go1.21.0",
			MainModule: "example.com/app",
			Modules:    []Module{{Path: "github.com/quic-go/quic-go", Version: "v0.40.0"}, {Path: "golang.org/x/text", Version: "v0.3.5"}},
			Findings: []*Finding{
				{
					OSV: "GO-2024-3302", Module: "github.com/quic-go/quic-go", Version: "v0.40.0", FixedVersion: "v0.48.2",
					Status: Reached, WholeModule: true,
					Symbols: []*Symbol{{
						Package: "github.com/quic-go/quic-go", Scope: ScopeModule, Status: Reached,
						Hits: 1, FirstSeen: ts(4), LastSeen: ts(4),
						Callsites: []*Callsite{{Function: "main.serve", File: "/home/dev/app/main.go", Line: 57, Hits: 1}},
						Stack: []Frame{
							{Function: "github.com/quic-go/quic-go.ListenAddr", File: "/root/go/pkg/mod/github.com/quic-go/quic-go@v0.40.0/server.go", Line: 120},
							{Function: "main.serve", File: "/home/dev/app/main.go", Line: 57},
						},
					}},
				},
				{
					OSV: "GO-2099-0002", Module: "example.com/nosyms", Version: "v1.2.0", FixedVersion: "v1.2.1",
					Status: Imported, WholeModule: true,
				},
				{
					OSV: "GO-2099-0003", Module: "golang.org/x/text", Version: "v0.3.5", FixedVersion: "v0.3.8",
					Status: Linked, WholeModule: true,
					Symbols: []*Symbol{{Package: "golang.org/x/text", Scope: ScopeModule, Status: Linked}},
				},
			},
		}},
	}
}

// TestWholeModuleSaidPlainly checks that every format says, for each
// finding of an entry without symbol data, that the entry has no symbol
// data and that the whole module is treated as vulnerable.
func TestWholeModuleSaidPlainly(t *testing.T) {
	r := wholeModuleReport()
	const plain = "has no symbol data for %s: the whole module is treated as vulnerable"
	mods := []string{"github.com/quic-go/quic-go", "example.com/nosyms", "golang.org/x/text"}

	text := string(render(t, "text", r))
	for _, m := range mods {
		if want := strings.Replace(plain, "%s", m, 1); !strings.Contains(strings.Join(strings.Fields(text), " "), want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	nofix := &Finding{Module: "example.com/nosyms", WholeModule: true}
	if got := nofix.Advice(nil); got != "no fixed version yet: remove or replace the module" {
		t.Errorf("advice without a fix for a whole module: %q", got)
	}
	for _, want := range []string{
		"reached  module github.com/quic-go/quic-go (no symbol data: any code of the module): 1 hit",
		"entered at github.com/quic-go/quic-go.ListenAddr",
		"linked   module golang.org/x/text (no symbol data: any code of the module)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}

	var back Report
	if err := json.Unmarshal(render(t, "json", r), &back); err != nil {
		t.Fatal(err)
	}
	for i, f := range back.Binaries[0].Findings {
		if !f.WholeModule {
			t.Errorf("JSON finding %s: whole_module lost", f.OSV)
		}
		for _, s := range f.Symbols {
			if s.Scope != ScopeModule {
				t.Errorf("JSON finding %d: symbol scope %q, want %q", i, s.Scope, ScopeModule)
			}
		}
	}

	var sarif struct {
		Runs []struct {
			Results []struct {
				RuleID  string `json:"ruleId"`
				Message struct {
					Text string `json:"text"`
				} `json:"message"`
			} `json:"results"`
		} `json:"runs"`
	}
	sdoc := render(t, "sarif", r)
	if err := json.Unmarshal(sdoc, &sarif); err != nil {
		t.Fatal(err)
	}
	errs, err := sarifValidator(t).validate(sdoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Error(e)
	}
	seen := map[string]bool{}
	for _, res := range sarif.Runs[0].Results {
		seen[res.RuleID] = true
		if !strings.Contains(res.Message.Text, "has no symbol data") || !strings.Contains(res.Message.Text, "the whole module is treated as vulnerable") {
			t.Errorf("SARIF result for %s: %q", res.RuleID, res.Message.Text)
		}
	}
	if len(seen) != 3 {
		t.Errorf("SARIF results for %v, want the 3 entries", seen)
	}

	doc := parseVEX(t, r)
	if len(doc.Statements) != 3 {
		t.Fatalf("%d VEX statements, want 3", len(doc.Statements))
	}
	for _, st := range doc.Statements {
		if !strings.Contains(st.StatusNotes, "has no symbol data") || !strings.Contains(st.StatusNotes, "the whole module is treated as vulnerable") {
			t.Errorf("VEX %s: status notes %q", st.Vulnerability.Name, st.StatusNotes)
		}
		if st.Vulnerability.Name == "GO-2099-0002" && (st.Status != "not_affected" || !strings.Contains(st.ImpactStatement, "No code of example.com/nosyms")) {
			t.Errorf("VEX imported whole-module statement: %s, %q", st.Status, st.ImpactStatement)
		}
	}
}
