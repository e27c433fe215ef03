package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/openvex/go-vex/pkg/vex"
)

func parseVEX(t *testing.T, r *Report) *vex.VEX {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteOpenVEX(&buf, r); err != nil {
		t.Fatal(err)
	}
	doc, err := vex.Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("go-vex cannot parse the document: %v", err)
	}
	return doc
}

// TestOpenVEXValid validates the document with go-vex: it parses, every
// statement passes Statement.Validate, the metadata is set, and each
// finding can be looked up by vulnerability and product.
func TestOpenVEXValid(t *testing.T) {
	r := fixtureReport()
	doc := parseVEX(t, r)
	if !strings.HasPrefix(doc.Context, vex.Context) || doc.Author != "reach" || doc.Version != 1 ||
		doc.Timestamp == nil || !doc.Timestamp.Equal(r.Finished) || !strings.HasPrefix(doc.ID, "https://openvex.dev/docs/public/reach-") {
		t.Errorf("metadata = %+v", doc.Metadata)
	}
	for i := range doc.Statements {
		st := &doc.Statements[i]
		if err := st.Validate(); err != nil {
			t.Errorf("statement %d (%s): %v", i, st.Vulnerability.Name, err)
		}
	}
	tests := []struct {
		vuln, product, sub string
		status             vex.Status
		justification      vex.Justification
	}{
		{"GO-2021-0113", "pkg:golang/example.com/app@v1.4.0", "pkg:golang/golang.org/x/text@v0.3.5", vex.StatusAffected, ""},
		{"CVE-2022-27664", "pkg:golang/example.com/app@v1.4.0", "pkg:golang/stdlib@v1.19.0", vex.StatusAffected, ""},
		{"GO-2023-1571", "pkg:golang/example.com/app@v1.4.0", "", vex.StatusAffected, ""}, // linked
		{"GO-2021-0061", "pkg:golang/example.com/app@v1.4.0", "", vex.StatusAffected, ""}, // not watched
		{"GO-2020-0036", "pkg:golang/example.com/app@v1.4.0", "", vex.StatusNotAffected, vex.VulnerableCodeNotPresent},
		{"GO-2021-0113", "pkg:golang/example.com/app?file_name=worker", "", vex.StatusAffected, ""}, // worker, linked
		{"GO-2099-0001", "pkg:golang/example.com/app?file_name=worker", "", vex.StatusNotAffected, vex.VulnerableCodeNotPresent},
	}
	for _, tt := range tests {
		t.Run(tt.vuln+"/"+tt.product, func(t *testing.T) {
			var subs []string
			if tt.sub != "" {
				subs = []string{tt.sub}
			}
			got := doc.Matches(tt.vuln, tt.product, subs)
			if len(got) != 1 {
				t.Fatalf("%d statements match, want 1", len(got))
			}
			st := got[0]
			if st.Status != tt.status || st.Justification != tt.justification {
				t.Errorf("status %s (%s), want %s (%s)", st.Status, st.Justification, tt.status, tt.justification)
			}
			if tt.status == vex.StatusAffected && !strings.Contains(st.ActionStatement, "upgrade") {
				t.Errorf("action statement %q says no upgrade", st.ActionStatement)
			}
		})
	}
	// The worker's statements must not claim app@v1.4.0.
	if got := doc.Matches("GO-2099-0001", "pkg:golang/example.com/app@v1.4.0", nil); len(got) != 0 {
		t.Errorf("a statement about a build without a version matches app@v1.4.0: %+v", got)
	}
	if n := len(doc.Statements); n != 7 {
		t.Errorf("%d statements, want one per finding and product: 7", n)
	}
}

// TestOpenVEXNotWatched: a finding whose symbols reach did not watch all
// the time is affected (the code is in the binary, as for linked), and its
// notes say that whether it ran is unknown, with when it was watched and
// why not, and never that it did not run.
func TestOpenVEXNotWatched(t *testing.T) {
	doc := parseVEX(t, fixtureReport())
	got := doc.Matches("GO-2021-0061", "pkg:golang/example.com/app@v1.4.0", nil)
	if len(got) != 1 {
		t.Fatalf("%d statements for GO-2021-0061, want 1", len(got))
	}
	st := got[0]
	if st.Status != vex.StatusAffected || st.Justification != "" {
		t.Errorf("status %s (%s), want affected", st.Status, st.Justification)
	}
	for _, want := range []string{"not watched", "whether it ran is unknown", "gopkg.in/yaml.v2.Unmarshal (watched 2025-03-14 09:00:00 UTC to 2025-03-14 09:10:00 UTC; not watched: not selected by the targets in force)", "gopkg.in/yaml.v2.decoder.unmarshal (never watched"} {
		if !strings.Contains(st.StatusNotes, want) {
			t.Errorf("notes lack %q: %s", want, st.StatusNotes)
		}
	}
	if strings.Contains(st.StatusNotes, "not seen running") {
		t.Errorf("notes say an unwatched symbol was not seen running: %s", st.StatusNotes)
	}
	// A reached finding with a symbol not watched in one process says so.
	got = doc.Matches("GO-2022-0969", "pkg:golang/example.com/app@v1.4.0", nil)
	if len(got) != 1 || !strings.Contains(got[0].StatusNotes, "could not be armed in process 4243") {
		t.Errorf("GO-2022-0969 notes lack the unwatched process: %+v", got)
	}
}

// TestOpenVEXSharedProduct: two binaries of the same product give one
// statement per vulnerability, with the most severe status and both
// binaries in the notes.
func TestOpenVEXSharedProduct(t *testing.T) {
	r := fixtureReport()
	r.Binaries[1].MainVersion = "v1.4.0" // worker now is the same product as app
	doc := parseVEX(t, r)
	got := doc.Matches("GO-2021-0113", "pkg:golang/example.com/app@v1.4.0", nil)
	if len(got) != 1 {
		t.Fatalf("%d statements for GO-2021-0113, want 1", len(got))
	}
	st := got[0]
	if st.Status != vex.StatusAffected || !strings.Contains(st.StatusNotes, "/srv/bin/app") || !strings.Contains(st.StatusNotes, "/srv/bin/worker") {
		t.Errorf("statement = %+v", st)
	}
	if !strings.Contains(st.StatusNotes, "reached") {
		t.Errorf("notes lose that app reached it: %q", st.StatusNotes)
	}
	if n := len(doc.Statements); n != 6 {
		t.Errorf("%d statements, want 6", n)
	}
}

func TestOpenVEXDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteOpenVEX(&a, fixtureReport()); err != nil {
		t.Fatal(err)
	}
	if err := WriteOpenVEX(&b, fixtureReport()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same report gave two documents")
	}
	r := fixtureReport()
	r.Binaries[0].Findings[0].Status = Linked
	if da, dr := parseVEX(t, fixtureReport()).ID, parseVEX(t, r).ID; da == dr {
		t.Error("@id did not change with the content")
	}
}

func TestPurl(t *testing.T) {
	tests := []struct{ mod, ver, want string }{
		{"golang.org/x/text", "v0.3.5", "pkg:golang/golang.org/x/text@v0.3.5"},
		{"stdlib", "v1.19.0", "pkg:golang/stdlib@v1.19.0"},
		{"example.com/app", "", "pkg:golang/example.com/app"},
		{"example.com/a b", "v0.0.0-20200101000000-abcdef012345", "pkg:golang/example.com/a%20b@v0.0.0-20200101000000-abcdef012345"},
	}
	for _, tt := range tests {
		if got := purl(tt.mod, tt.ver); got != tt.want {
			t.Errorf("purl(%q, %q) = %q, want %q", tt.mod, tt.ver, got, tt.want)
		}
		if !vex.PurlMatches(tt.want, tt.want) {
			t.Errorf("go-vex cannot parse purl %q", tt.want)
		}
	}
}

// TestOpenVEXDecide: a decision replaces what reach saw, and a statement
// over several findings states the most cautious of their decisions.
func TestOpenVEXDecide(t *testing.T) {
	r := fixtureReport()
	r.Binaries[1].MainVersion = "v1.4.0" // worker is the same product as app
	app, worker := r.Binaries[0], r.Binaries[1]
	decisions := map[*Finding]*VEXDecision{
		app.Findings[3]:    {Status: VEXNotAffected, Justification: "vulnerable_code_cannot_be_controlled_by_adversary", Impact: "input is trusted", Note: "Triaged by alice."},
		app.Findings[4]:    {Status: VEXFixed, Note: "Fixed by bob."},
		app.Findings[0]:    {Status: VEXUnderInvestigation},
		app.Findings[1]:    {Status: VEXNotAffected, Justification: "inline_mitigations_already_exist"},
		worker.Findings[0]: {Status: VEXNotAffected, Justification: "vulnerable_code_not_in_execute_path"},
	}
	o := OpenVEXOptions{Decide: func(b *Binary, f *Finding) *VEXDecision { return decisions[f] }}
	var buf bytes.Buffer
	if err := o.Write(&buf, r); err != nil {
		t.Fatal(err)
	}
	doc, err := vex.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		vuln          string
		status        vex.Status
		justification vex.Justification
		notes         string
	}{
		{"GO-2021-0061", vex.StatusNotAffected, vex.VulnerableCodeCannotBeControlledByAdversary, "Triaged by alice."},
		{"GO-2023-1571", vex.StatusFixed, "", "Fixed by bob."},
		{"GO-2020-0036", vex.StatusUnderInvestigation, "", "imported"},
		// Both binaries not affected: the first justification.
		{"GO-2021-0113", vex.StatusNotAffected, vex.InlineMitigationsAlreadyExist, "/srv/bin/worker"},
		// No decision: reach's own.
		{"GO-2022-0969", vex.StatusAffected, "", "reached"},
	}
	for _, tt := range tests {
		got := doc.Matches(tt.vuln, "pkg:golang/example.com/app@v1.4.0", nil)
		if len(got) != 1 {
			t.Fatalf("%s: %d statements, want 1", tt.vuln, len(got))
		}
		st := got[0]
		if err := st.Validate(); err != nil {
			t.Errorf("%s: %v", tt.vuln, err)
		}
		if st.Status != tt.status || st.Justification != tt.justification || !strings.Contains(st.StatusNotes, tt.notes) {
			t.Errorf("%s: %s (%s) %q, want %s (%s) with %q", tt.vuln, st.Status, st.Justification, st.StatusNotes, tt.status, tt.justification, tt.notes)
		}
	}
	// One binary affected makes the product affected.
	decisions[worker.Findings[0]] = nil
	buf.Reset()
	if err := o.Write(&buf, r); err != nil {
		t.Fatal(err)
	}
	doc, err = vex.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got := doc.Matches("GO-2021-0113", "pkg:golang/example.com/app@v1.4.0", nil)
	if len(got) != 1 || got[0].Status != vex.StatusAffected || !strings.Contains(got[0].ActionStatement, "go get golang.org/x/text@v0.3.7") {
		t.Errorf("GO-2021-0113 with worker affected: %+v", got)
	}
}
