package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/openvex/go-vex/pkg/vex"
	"github.com/reach-sca/reach/internal/server/store"
)

func parseVEX(t *testing.T, svc *store.Service) *vex.VEX {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteOpenVEX(&buf, svc, *at(30)); err != nil {
		t.Fatal(err)
	}
	doc, err := vex.Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("go-vex cannot parse the document: %v\n%s", err, buf.Bytes())
	}
	for i := range doc.Statements {
		if err := doc.Statements[i].Validate(); err != nil {
			t.Errorf("statement %d (%s): %v", i, doc.Statements[i].Vulnerability.Name, err)
		}
	}
	return doc
}

const (
	shopV120 = "pkg:golang/example.com/shop@v1.2.0"
	shopOld  = "pkg:golang/example.com/shop?file_name=shop-old"
)

func TestOpenVEX(t *testing.T) {
	doc := parseVEX(t, fixtureService())
	if doc.Author != "reach" || doc.Timestamp == nil || !doc.Timestamp.Equal(*at(20)) || doc.ID == "" {
		t.Errorf("metadata = %+v", doc.Metadata)
	}
	tests := []struct {
		name          string
		vuln, product string
		sub           string
		status        vex.Status
		justification vex.Justification
		impact        string
		notes         []string
		action        string
	}{
		{"reached: affected, both callsites, the upgrade", "GO-2021-0113", shopV120, "pkg:golang/golang.org/x/text@v0.3.5", vex.StatusAffected, "", "",
			[]string{"ran 8 times", "main.handle (example.com/shop/main.go:22)", "example.com/shop/api.(*S).lang (/home/dev/shop/api/lang.go:41)"},
			"go get golang.org/x/text@v0.3.7"},
		{"devel build: its own product, bob's state", "GO-2021-0113", shopOld, "", vex.StatusUnderInvestigation, "", "",
			[]string{"/srv/shop-old", "Triaged under_investigation by bob at 2026-11-30T09:11:00Z", ": checking."}, ""},
		{"not_affected as alice set it", "GO-2022-0969", shopV120, "pkg:golang/stdlib@v1.19.0", vex.StatusNotAffected, vex.VulnerableCodeNotInExecutePath, hostile,
			[]string{"Triaged not_affected (vulnerable_code_not_in_execute_path) by alice"}, ""},
		{"imported without triage: under investigation, never not_affected", "GO-2099-0001", shopV120, "", vex.StatusUnderInvestigation, "", "",
			[]string{"imported", "not stated not_affected until a person triages it"}, ""},
		{"expired triage no longer counts", "GO-2023-1571", shopV120, "", vex.StatusAffected, "", "", []string{"linked"}, "upgrade Go to go1.19.6"},
		{"fixed as carol set it, hostile strings intact", "GO-2024-0001", shopV120, "", vex.StatusFixed, "", "",
			[]string{"Triaged fixed by carol", hostile + " (example.com/shop/" + hostile + ".go:7)"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var subs []string
			if tt.sub != "" {
				subs = []string{tt.sub}
			}
			got := doc.Matches(tt.vuln, tt.product, subs)
			if len(got) != 1 {
				t.Fatalf("%d statements match %s on %s %v, want 1", len(got), tt.vuln, tt.product, subs)
			}
			st := got[0]
			if st.Status != tt.status || st.Justification != tt.justification || st.ImpactStatement != tt.impact {
				t.Errorf("status %s (%s) impact %q, want %s (%s) impact %q", st.Status, st.Justification, st.ImpactStatement, tt.status, tt.justification, tt.impact)
			}
			for _, n := range tt.notes {
				if !strings.Contains(st.StatusNotes, n) {
					t.Errorf("notes lack %q:\n%s", n, st.StatusNotes)
				}
			}
			if !strings.Contains(st.ActionStatement, tt.action) || (tt.action == "") != (st.ActionStatement == "") {
				t.Errorf("action statement %q, want one with %q", st.ActionStatement, tt.action)
			}
		})
	}
	if n := len(doc.Statements); n != 6 {
		t.Errorf("%d statements, want one per OSV entry and product: 6", n)
	}
}

// TestOpenVEXNeverNotAffectedAutomatically: without triage, no statement
// is not_affected, whatever reach saw; reached findings are affected.
func TestOpenVEXNeverNotAffectedAutomatically(t *testing.T) {
	svc := fixtureService()
	for i := range svc.Findings {
		svc.Findings[i].Triage = store.Triage{}
	}
	doc := parseVEX(t, svc)
	for _, st := range doc.Statements {
		if st.Status == vex.StatusNotAffected {
			t.Errorf("%s is not_affected without a person's triage", st.Vulnerability.Name)
		}
		if st.Vulnerability.Name == "GO-2024-0001" && st.Status != vex.StatusAffected {
			t.Errorf("reached GO-2024-0001 is %s, want affected", st.Status)
		}
	}
}

// sarifLog is the part of SARIF 2.1.0 the tests read, as the report
// package's SARIF tests check it.
type sarifLog struct {
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name  string `json:"name"`
				Rules []struct {
					ID               string `json:"id"`
					HelpURI          string `json:"helpUri"`
					Help             struct{ Text, Markdown string }
					ShortDescription struct{ Text string } `json:"shortDescription"`
					FullDescription  struct{ Text string } `json:"fullDescription"`
					Properties       struct{ Tags []string }
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex int    `json:"ruleIndex"`
			Level     string `json:"level"`
			Message   struct{ Text string }
			Locations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct {
						URI       string `json:"uri"`
						URIBaseID string `json:"uriBaseId"`
					} `json:"artifactLocation"`
					Region *struct {
						StartLine int `json:"startLine"`
					} `json:"region"`
				} `json:"physicalLocation"`
			} `json:"locations"`
			PartialFingerprints map[string]string `json:"partialFingerprints"`
			Suppressions        []struct {
				Kind, Status, Justification string
			} `json:"suppressions"`
			Properties struct {
				Status string `json:"reachStatus"`
				Hits   uint64 `json:"hits"`
			} `json:"properties"`
		} `json:"results"`
	} `json:"runs"`
}

func TestSARIF(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, fixtureService(), *at(30)); err != nil {
		t.Fatal(err)
	}
	var log sarifLog
	dec := json.NewDecoder(&buf)
	if err := dec.Decode(&log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 {
		t.Fatalf("version %s, %d runs", log.Version, len(log.Runs))
	}
	run := log.Runs[0]
	d := run.Tool.Driver
	if d.Name != toolName {
		t.Errorf("driver %q", d.Name)
	}
	var rules []string
	for _, r := range d.Rules {
		rules = append(rules, r.ID)
		if r.HelpURI != "https://pkg.go.dev/vuln/"+r.ID || r.Help.Text == "" || r.Help.Markdown == "" ||
			r.ShortDescription.Text == "" || r.FullDescription.Text == "" || len(r.Properties.Tags) == 0 {
			t.Errorf("rule %s incomplete: %+v", r.ID, r)
		}
		if strings.Contains(r.Help.Markdown, "<script>") {
			t.Errorf("rule %s: markdown help carries raw HTML: %s", r.ID, r.Help.Markdown)
		}
	}
	if want := []string{"GO-2021-0113", "GO-2022-0969", "GO-2023-1571", "GO-2024-0001", "GO-2099-0001"}; !slices.Equal(rules, want) {
		t.Errorf("rules %v, want %v", rules, want)
	}
	levelOf := map[string]string{"reached": "error", "not_watched": "warning", "linked": "warning", "imported": "note"}
	fps := map[string]bool{}
	var places []string
	for i, res := range run.Results {
		if res.RuleIndex >= len(d.Rules) || d.Rules[res.RuleIndex].ID != res.RuleID {
			t.Errorf("result %d: ruleIndex %d is not %s", i, res.RuleIndex, res.RuleID)
		}
		if res.Level != levelOf[res.Properties.Status] {
			t.Errorf("result %d: level %s for status %s", i, res.Level, res.Properties.Status)
		}
		if len(res.Locations) == 0 || res.Locations[0].PhysicalLocation.Region == nil || res.Locations[0].PhysicalLocation.Region.StartLine < 1 {
			t.Errorf("result %d has no location with a line", i)
			continue
		}
		fp := res.PartialFingerprints["reachFinding/v1"]
		if fp == "" || fps[fp] {
			t.Errorf("result %d: fingerprint %q missing or not unique", i, fp)
		}
		fps[fp] = true
		loc := res.Locations[0].PhysicalLocation
		if strings.HasPrefix(loc.ArtifactLocation.URI, "/") {
			t.Errorf("result %d: absolute path %q is not a URI", i, loc.ArtifactLocation.URI)
		}
		if _, err := url.Parse(loc.ArtifactLocation.URI); err != nil {
			t.Errorf("result %d: URI %q: %v", i, loc.ArtifactLocation.URI, err)
		}
		place := fmt.Sprintf("%s %s %s:%d %s", res.RuleID, res.Level, loc.ArtifactLocation.URIBaseID+loc.ArtifactLocation.URI, loc.Region.StartLine, res.Properties.Status)
		for _, sup := range res.Suppressions {
			if sup.Kind != "external" || sup.Status != "accepted" {
				t.Errorf("%s: suppression %+v", place, sup)
			}
			j, _, _ := strings.Cut(sup.Justification, " by ")
			place += " suppressed: " + j
			if !strings.Contains(sup.Justification, hostile) {
				t.Errorf("%s: justification %q lacks the note", place, sup.Justification)
			}
		}
		places = append(places, place)
	}
	// Reached findings at their callsites' file and line (a trimmed path
	// relative to the repository), the rest at their binary; suppressed
	// when people triaged them not_affected or fixed, not when the triage
	// expired or only reach set affected.
	want := []string{
		"GO-2021-0113 error file:///home/dev/shop/api/lang.go:41 reached", // absolute: a file URI
		"GO-2021-0113 error %SRCROOT%main.go:22 reached",
		"GO-2022-0969 warning file:///srv/shop:1 linked suppressed: not_affected (vulnerable_code_not_in_execute_path). Triaged not_affected (vulnerable_code_not_in_execute_path)",
		"GO-2023-1571 warning file:///srv/shop:1 linked",
		"GO-2024-0001 error %SRCROOT%" + (&url.URL{Path: hostile + ".go"}).EscapedPath() + ":7 reached suppressed: fixed. Triaged fixed",
		"GO-2099-0001 note file:///srv/shop:1 imported",
		"GO-2021-0113 warning file:///srv/shop-old:1 linked",
	}
	if strings.Join(places, "\n") != strings.Join(want, "\n") {
		t.Errorf("results:\n%s\nwant:\n%s", strings.Join(places, "\n"), strings.Join(want, "\n"))
	}
}
