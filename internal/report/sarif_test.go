package report

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The SARIF 2.1.0 schema in testdata comes from the npm package
// @microsoft/jest-sarif 1.0.0-beta.0 (MIT), lib/schemas/sarif-2.1.0-rtm.5.json.
const sarifSchemaFile = "testdata/sarif-2.1.0-rtm.5.schema.json"

func sarifValidator(t *testing.T) *schemaValidator {
	t.Helper()
	schema, err := os.ReadFile(sarifSchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	v, err := newSchemaValidator(schema)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSARIFSchema(t *testing.T) {
	v := sarifValidator(t)
	reports := map[string]*Report{"full": fixtureReport(), "empty": {}}
	for name, r := range reports {
		for _, opts := range []SARIFOptions{{}, {SourceRoot: "/home/dev/app"}} {
			t.Run(name+"/"+opts.SourceRoot, func(t *testing.T) {
				var buf strings.Builder
				if err := opts.Write(&buf, r); err != nil {
					t.Fatal(err)
				}
				errs, err := v.validate([]byte(buf.String()))
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range errs {
					t.Error(e)
				}
			})
		}
	}
}

// TestSchemaValidatorCatches makes sure the validator can fail: each broken
// log must give at least one violation.
func TestSchemaValidatorCatches(t *testing.T) {
	v := sarifValidator(t)
	tests := []struct{ name, doc string }{
		{"no version", `{"runs":[]}`},
		{"bad version", `{"version":"2.0.0","runs":[]}`},
		{"unknown property", `{"version":"2.1.0","runs":[],"extra":1}`},
		{"driver without name", `{"version":"2.1.0","runs":[{"tool":{"driver":{}}}]}`},
		{"bad level", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x"}},"results":[{"message":{"text":"m"},"level":"fatal"}]}]}`},
		{"zero line", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x"}},"results":[{"message":{"text":"m"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"a.go"},"region":{"startLine":0}}}]}]}]}`},
		{"relative helpUri", `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x","rules":[{"id":"r","helpUri":"vuln/GO-1"}]}}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs, err := v.validate([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if len(errs) == 0 {
				t.Error("broken SARIF log passed validation")
			}
		})
	}
}

// TestSARIFGitHub checks what GitHub code scanning needs beyond the schema:
// every result has a rule, a location with an artifact URI, a
// fingerprint and a level matching its status; rules have help and a
// helpUri; relative URIs when the file is in the repository.
func TestSARIFGitHub(t *testing.T) {
	r := fixtureReport()
	var buf strings.Builder
	if err := (SARIFOptions{SourceRoot: "/home/dev/app", GoMod: []byte(fixtureGoMod)}).Write(&buf, r); err != nil {
		t.Fatal(err)
	}
	var log sarifLog
	if err := json.Unmarshal([]byte(buf.String()), &log); err != nil {
		t.Fatal(err)
	}
	if len(log.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(log.Runs))
	}
	run := log.Runs[0]
	d := run.Tool.Driver
	if d.Name != "reach" || d.Version != "v0.1.0" || d.InformationURI == "" {
		t.Errorf("driver = %+v", d)
	}
	wantRules := []string{"GO-2020-0036", "GO-2021-0061", "GO-2021-0113", "GO-2022-0969", "GO-2023-1571", "GO-2099-0001"}
	if len(d.Rules) != len(wantRules) {
		t.Fatalf("%d rules, want %d", len(d.Rules), len(wantRules))
	}
	for i, rule := range d.Rules {
		if rule.ID != wantRules[i] {
			t.Errorf("rule %d = %s, want %s", i, rule.ID, wantRules[i])
		}
		if rule.HelpURI != "https://pkg.go.dev/vuln/"+rule.ID || rule.Help.Text == "" || rule.Help.Markdown == "" ||
			rule.ShortDescription.Text == "" || rule.FullDescription.Text == "" || len(rule.Properties.Tags) == 0 {
			t.Errorf("rule %s incomplete: %+v", rule.ID, rule)
		}
	}
	if !strings.Contains(d.Rules[3].Help.Markdown, "upgrade Go to go1.19.1") {
		t.Errorf("stdlib rule help lacks the Go upgrade: %s", d.Rules[3].Help.Markdown)
	}

	levels := map[string]int{}
	fps := map[string]bool{}
	var callsites []string
	for i, res := range run.Results {
		if d.Rules[res.RuleIndex].ID != res.RuleID {
			t.Errorf("result %d: ruleIndex %d is %s, not %s", i, res.RuleIndex, d.Rules[res.RuleIndex].ID, res.RuleID)
		}
		if res.Level != sarifLevel(res.Properties.Status) {
			t.Errorf("result %d: level %s for status %s", i, res.Level, res.Properties.Status)
		}
		levels[res.Level]++
		if len(res.Locations) == 0 || res.Locations[0].PhysicalLocation.ArtifactLocation.URI == "" {
			t.Errorf("result %d has no location", i)
			continue
		}
		fp := res.PartialFingerprints[sarifFingerprint]
		if fp == "" || fps[fp] {
			t.Errorf("result %d: fingerprint %q missing or not unique", i, fp)
		}
		fps[fp] = true
		loc := res.Locations[0].PhysicalLocation
		if loc.Region == nil || loc.Region.StartLine < 1 {
			t.Errorf("result %d: no line: GitHub cannot place it", i)
			continue
		}
		callsites = append(callsites, fmt.Sprintf("%s %s:%d %s", loc.ArtifactLocation.URIBaseID, loc.ArtifactLocation.URI, loc.Region.StartLine, res.RuleID))
		if strings.HasPrefix(loc.ArtifactLocation.URI, "/") {
			t.Errorf("result %d: absolute path %q is not a URI", i, loc.ArtifactLocation.URI)
		}
	}
	// 2 reached callsites; the rest at go.mod's line of their module:
	// GO-2020-0036 imported, GO-2021-0061 not watched, GO-2021-0113's
	// linked MatchStrings (one result with worker's GO-2021-0113 linked),
	// GO-2022-0969 reached without a callsite, GO-2023-1571 linked, and in
	// worker GO-2099-0001 imported (a module go.mod does not require: the
	// module line).
	if want := map[string]int{"error": 3, "warning": 3, "note": 2}; !equalMaps(levels, want) {
		t.Errorf("levels = %v, want %v", levels, want)
	}
	want := []string{
		"%SRCROOT% go.mod:7 GO-2020-0036", // gopkg.in/yaml.v2's require line
		"%SRCROOT% api/lang.go:41 GO-2021-0113",
		"%SRCROOT% main.go:22 GO-2021-0113",
		"%SRCROOT% go.mod:6 GO-2021-0113", // golang.org/x/text's
		"%SRCROOT% go.mod:3 GO-2022-0969", // the go line
		"%SRCROOT% go.mod:7 GO-2021-0061",
		"%SRCROOT% go.mod:3 GO-2023-1571",
		"%SRCROOT% go.mod:1 GO-2099-0001", // not required: the module line
	}
	if strings.Join(callsites, "\n") != strings.Join(want, "\n") {
		t.Errorf("locations:\n%s\nwant:\n%s", strings.Join(callsites, "\n"), strings.Join(want, "\n"))
	}
	for _, res := range run.Results {
		if res.RuleID == "GO-2021-0113" && res.Locations[0].PhysicalLocation.ArtifactLocation.URI == "go.mod" &&
			strings.Join(res.Properties.Binaries, " ") != "/srv/bin/app /srv/bin/worker" {
			t.Errorf("GO-2021-0113 at go.mod: binaries %q, want both", res.Properties.Binaries)
		}
	}
	// The first hit came through negotiate: its result, and only it, shows
	// the stack, outermost first.
	var flows []string
	for _, res := range run.Results {
		for _, cf := range res.CodeFlows {
			var fns []string
			for _, l := range cf.ThreadFlows[0].Locations {
				fns = append(fns, l.Location.Message.Text)
			}
			flows = append(flows, res.Locations[0].PhysicalLocation.ArtifactLocation.URI+": "+strings.Join(fns, " > "))
		}
	}
	if want := "api/lang.go: main.main > example.com/app/api.(*Server).negotiate > golang.org/x/text/language.Parse"; len(flows) != 1 || flows[0] != want {
		t.Errorf("code flows = %q, want [%q]", flows, want)
	}
	if base := run.OriginalURIBaseIDs["SRCROOT"].URI; base != "file:///home/dev/app/" {
		t.Errorf("SRCROOT = %q", base)
	}
	if n := run.Invocations[0].ToolExecutionNotifications; len(n) != 1 || n[0].Message.Text != r.Notes[0] {
		t.Errorf("notes as notifications = %+v", n)
	}
}

// TestSARIFNotWatched: a finding reach did not watch all the time gives a
// warning whose reachStatus is not_watched and whose message says that
// whether it ran is unknown, with when it was watched and why not.
func TestSARIFNotWatched(t *testing.T) {
	var found bool
	for _, res := range (SARIFOptions{}).build(fixtureReport()).Runs[0].Results {
		if res.RuleID != "GO-2021-0061" {
			continue
		}
		found = true
		if res.Level != "warning" || res.Properties.Status != NotWatched {
			t.Errorf("level %s status %s, want warning not_watched", res.Level, res.Properties.Status)
		}
		for _, want := range []string{"whether they ran is unknown", "gopkg.in/yaml.v2.Unmarshal (watched 2025-03-14 09:00:00 UTC to 2025-03-14 09:10:00 UTC; not watched: not selected by the targets in force)"} {
			if !strings.Contains(res.Message.Text, want) {
				t.Errorf("message lacks %q: %s", want, res.Message.Text)
			}
		}
	}
	if !found {
		t.Fatal("no result for GO-2021-0061")
	}
}

// TestSARIFFingerprintStable checks that fingerprints do not depend on where
// the binary lies or on line numbers, so that GitHub keeps one alert when
// code moves.
func TestSARIFFingerprintStable(t *testing.T) {
	fps := func(r *Report) []string {
		var out []string
		for _, res := range (SARIFOptions{}).build(r).Runs[0].Results {
			out = append(out, res.PartialFingerprints[sarifFingerprint])
		}
		return out
	}
	a := fixtureReport()
	b := fixtureReport()
	b.Binaries[0].Path = filepath.Join("/elsewhere", filepath.Base(b.Binaries[0].Path))
	b.Binaries[0].Findings[1].Symbols[1].Callsites[0].Line += 3
	if x, y := fps(a), fps(b); strings.Join(x, ",") != strings.Join(y, ",") {
		t.Errorf("fingerprints changed:\n%v\n%v", x, y)
	}
}

const fixtureGoMod = `module example.com/app

go 1.19

require (
	golang.org/x/text v0.3.5
	gopkg.in/yaml.v2 v2.2.3
)
`

// TestSARIFNoGoMod: without the main module's go.mod, a finding without a
// callsite points at the binary's first line.
func TestSARIFNoGoMod(t *testing.T) {
	for _, gomod := range []string{"", "module example.com/other\n"} {
		for _, res := range (SARIFOptions{GoMod: []byte(gomod)}).build(fixtureReport()).Runs[0].Results {
			loc := res.Locations[0].PhysicalLocation
			if loc.ArtifactLocation.URI == "go.mod" {
				t.Errorf("go.mod %q: %s points at go.mod", gomod, res.RuleID)
			}
			if loc.Region == nil || loc.Region.StartLine < 1 {
				t.Errorf("go.mod %q: %s at %s has no line", gomod, res.RuleID, loc.ArtifactLocation.URI)
			}
		}
	}
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestSARIFOneResultPerLine: symbols of one finding called from one line
// (yaml.Unmarshal and the parser functions it inlines, all seen at the
// application's call) make one result naming them all, not one each.
func TestSARIFOneResultPerLine(t *testing.T) {
	cs := func(hits uint64) []*Callsite {
		return []*Callsite{{Function: "main.main", File: "/src/app/main.go", Line: 30, Hits: hits}}
	}
	r := &Report{Binaries: []*Binary{{Path: "/bin/app", MainModule: "example.com/app", Findings: []*Finding{{
		OSV: "GO-2020-0036", Module: "gopkg.in/yaml.v2", Version: "v2.2.2", FixedVersion: "v2.2.8", Status: Reached,
		Symbols: []*Symbol{
			{Package: "gopkg.in/yaml.v2", Name: "Unmarshal", Status: Reached, Hits: 1, Callsites: cs(1)},
			{Package: "gopkg.in/yaml.v2", Name: "yaml_parser_fetch_value", Status: Reached, Hits: 1, Callsites: cs(1)},
			{Package: "gopkg.in/yaml.v2", Name: "yaml_parser_remove_simple_key", Status: Reached, Hits: 2, Callsites: cs(2)},
		},
	}}}}}
	res := (SARIFOptions{SourceRoot: "/src/app"}).build(r).Runs[0].Results
	if len(res) != 1 {
		t.Fatalf("%d results, want 1 for one finding on one line", len(res))
	}
	msg := res[0].Message.Text
	for _, want := range []string{"gopkg.in/yaml.v2.Unmarshal (once)", "gopkg.in/yaml.v2.yaml_parser_fetch_value (once)", "gopkg.in/yaml.v2.yaml_parser_remove_simple_key (2 times)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
	if res[0].Properties.Hits != 4 {
		t.Errorf("hits %d, want 4", res[0].Properties.Hits)
	}
	if loc := res[0].Locations[0].PhysicalLocation; loc.ArtifactLocation.URI != "main.go" || loc.ArtifactLocation.URIBaseID != "%SRCROOT%" || loc.Region.StartLine != 30 {
		t.Errorf("location %+v %+v, want %%SRCROOT%% main.go:30", loc.ArtifactLocation, loc.Region)
	}
}

// TestSARIFSuppress: the results of a finding people decided needs no
// action carry an accepted external suppression; a result merged with
// one that needs action does not; the log stays valid.
func TestSARIFSuppress(t *testing.T) {
	r := fixtureReport()
	app := r.Binaries[0]
	o := SARIFOptions{SourceRoot: "/home/dev/app", GoMod: []byte(fixtureGoMod), Suppress: func(b *Binary, f *Finding) string {
		if b == app && (f.OSV == "GO-2021-0113" || f.OSV == "GO-2020-0036") {
			return "not_affected by alice: " + f.OSV
		}
		return ""
	}}
	var buf strings.Builder
	if err := o.Write(&buf, r); err != nil {
		t.Fatal(err)
	}
	errs, err := sarifValidator(t).validate([]byte(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Error(e)
	}
	var log sarifLog
	if err := json.Unmarshal([]byte(buf.String()), &log); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, res := range log.Runs[0].Results {
		loc := res.Locations[0].PhysicalLocation
		k := fmt.Sprintf("%s %s:%d", res.RuleID, loc.ArtifactLocation.URI, loc.Region.StartLine)
		switch len(res.Suppressions) {
		case 0:
			got[k] = ""
		case 1:
			s := res.Suppressions[0]
			if s.Kind != "external" || s.Status != "accepted" {
				t.Errorf("%s: suppression %+v", k, s)
			}
			got[k] = s.Justification
		default:
			t.Errorf("%s: %d suppressions", k, len(res.Suppressions))
		}
	}
	want := map[string]string{
		"GO-2021-0113 api/lang.go:41": "not_affected by alice: GO-2021-0113",
		"GO-2021-0113 main.go:22":     "not_affected by alice: GO-2021-0113",
		"GO-2021-0113 go.mod:6":       "", // with worker's, which needs action
		"GO-2020-0036 go.mod:7":       "not_affected by alice: GO-2020-0036",
		"GO-2022-0969 go.mod:3":       "",
		"GO-2021-0061 go.mod:7":       "",
		"GO-2023-1571 go.mod:3":       "",
		"GO-2099-0001 go.mod:1":       "",
	}
	if !maps.Equal(got, want) {
		t.Errorf("suppressions = %q\nwant %q", got, want)
	}
}
