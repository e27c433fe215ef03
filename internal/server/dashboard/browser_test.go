package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/reach-sca/reach/internal/server/store"
	"github.com/reach-sca/reach/internal/testprog"
)

// TestBrowser drives the dashboard in headless Chromium as a security
// engineer would: it reads each main page, filters, triages a finding
// and pauses the fleet through the forms, and checks the store. It saves
// a screenshot of each main page under testprog.Artifacts("dashboard").
func TestBrowser(t *testing.T) {
	td, id := fixture(t)
	row := fmt.Sprintf("#finding-%d", id)
	srv := serve(t, td)
	ctx, cancel := context.WithTimeout(testprog.ChromeContext(t), 3*time.Minute)
	defer cancel()
	shots := testprog.Artifacts(t, "dashboard")
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	eval := func(js string) bool {
		t.Helper()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return ok
	}
	// waitFor waits until js is true in the page, across the navigation
	// that a click or a submit starts.
	waitFor := func(js string) {
		t.Helper()
		var err error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			var ok bool
			ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete" && (`+js+`)`))
			if err == nil && ok {
				return
			}
		}
		t.Fatalf("waiting for %s: %v", js, err)
	}
	shot := func(name string) {
		t.Helper()
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		checkScreenshot(t, name, b)
		if err := os.WriteFile(filepath.Join(shots, name+".png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The overview: the vulnerability two services reached first, the
	// timeline with a bar on each of the two days something was reached.
	do(chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("svg.timeline")))
	ranked := text("table.ranked tbody")
	if i, j := strings.Index(ranked, "GO-2024-0001"), strings.Index(ranked, "GO-2024-0002"); i < 0 || j < i {
		t.Errorf("ranked vulnerabilities:\n%s\nwant GO-2024-0001 (2 services reached it) before GO-2024-0002", ranked)
	}
	if !eval(`document.querySelectorAll("svg.timeline rect.bar").length === 90 &&
		Array.from(document.querySelectorAll("svg.timeline rect.bar")).filter(r => r.getAttribute("height") > 0).length === 2`) {
		t.Error("the timeline does not have 90 days with bars on 2 of them")
	}
	shot("overview")

	// Sorting by a click on a header: the vulnerabilities linked in most
	// services first.
	do(chromedp.Click(chromedp.CSS(`table.ranked th:nth-child(6)`)))
	if first := text("table.ranked tbody tr:first-child td:nth-child(2)"); !strings.Contains(first, "GO-2024-0002") && !strings.Contains(first, "GO-2024-0003") {
		t.Errorf("first row sorted by linked services, most first: %q, want GO-2024-0002 or GO-2024-0003 (1 service each)", first)
	}

	// A filter, set in the form: only linked vulnerabilities, in the URL.
	do(chromedp.SetValue(chromedp.CSS(`#filters select[name=status]`), "linked"),
		chromedp.Submit(chromedp.CSS(`#filters select[name=status]`)))
	waitFor(`location.search.includes("status=linked")`)
	if got := text("table.ranked tbody"); !strings.Contains(got, "GO-2024-0002") || strings.Contains(got, "GO-2024-0001") {
		t.Errorf("ranked vulnerabilities with status=linked:\n%s\nwant GO-2024-0002 alone", got)
	}

	// The vulnerability's page, through its link; the hostile symbol is
	// text, and its script never ran.
	do(chromedp.Navigate(srv.URL+"/"), chromedp.Click(chromedp.CSS(`table.ranked a[href^="/vulns/GO-2024-0001"]`)))
	waitFor(`document.querySelector("#triage") !== null`)
	if got := text("table.upgrades"); !strings.Contains(got, "go get example.com/m@v1.2.3") {
		t.Errorf("fix table:\n%s\nwant the upgrade command", got)
	}
	if got := text(row); !strings.Contains(got, hostile) || !strings.Contains(got, "main.serve") {
		t.Errorf("finding %d's row:\n%s\nwant its symbol %s as text and its callsite", id, got, hostile)
	}
	if !eval(`window.pwned === undefined`) {
		t.Error("the hostile symbol's script ran")
	}
	shot("vuln")

	// Triage through the form: not affected, with a justification and a
	// note; the page comes back showing it, and the store has it.
	do(chromedp.Click(chromedp.CSS(row+` input[name=finding]`)),
		chromedp.SetValue(chromedp.CSS(`#triage-state`), "not_affected"),
		chromedp.SetValue(chromedp.CSS(`#triage select[name=justification]`), "vulnerable_code_not_in_execute_path"),
		chromedp.SendKeys(chromedp.CSS(`#triage-note`), "only called from tests"),
		chromedp.Click(chromedp.CSS(`#triage-submit`)))
	waitFor(`document.querySelector("` + row + ` .tr-not_affected") !== null`)
	if got := text(row); !strings.Contains(got, "only called from tests") || !strings.Contains(got, "alice") {
		t.Errorf("finding %d's row after triage:\n%s\nwant the note and who", id, got)
	}
	f, err := td.st.Finding(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if f.Triage.State != store.StateNotAffected || f.Triage.Justification != "vulnerable_code_not_in_execute_path" ||
		f.Triage.Note != "only called from tests" || f.Triage.By != "alice" {
		t.Errorf("stored triage of finding %d = %+v", id, f.Triage)
	}

	// A service's page.
	do(chromedp.Navigate(srv.URL+"/services/api"), chromedp.WaitVisible(chromedp.CSS("table.binaries")))
	if got := text("table.binaries"); !strings.Contains(got, "b-api-1") || !strings.Contains(got, "go1.26.8") {
		t.Errorf("api's binaries:\n%s", got)
	}
	if got := text("table.findings"); !strings.Contains(got, "GO-2024-0001") || !strings.Contains(got, "GO-2024-0003") || strings.Contains(got, "GO-2024-0002") {
		t.Errorf("api's findings:\n%s\nwant GO-2024-0001 and GO-2024-0003 only", got)
	}
	shot("service")

	// The agents, one with an error applying its configuration.
	do(chromedp.Navigate(srv.URL+"/agents"), chromedp.WaitVisible(chromedp.CSS("table.agents")))
	if got := text("table.agents"); !strings.Contains(got, "<b>h2</b>") || !strings.Contains(got, "bad target <x>") || !strings.Contains(got, "v0.9.0") {
		t.Errorf("agents:\n%s", got)
	}
	shot("agents")

	// The configuration: pause the fleet and add a rule for api.
	do(chromedp.Navigate(srv.URL+"/config"), chromedp.WaitVisible(chromedp.CSS("#config")),
		chromedp.Click(chromedp.CSS(`#paused`)),
		chromedp.SetValue(chromedp.CSS(`input[name=rule_service]`), "api"),
		chromedp.SetValue(chromedp.CSS(`input[name=rule_targets]`), "GO-2024-0001 example.com/m/p"),
		chromedp.SetValue(chromedp.CSS(`select[name=rule_mode]`), "count"),
		chromedp.Click(chromedp.CSS(`#config-submit`)))
	waitFor(`document.querySelector("#saved") !== null`)
	cfg, err := td.st.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Paused || len(cfg.Rules) != 1 || cfg.Rules[0].Service != "api" || !cfg.Rules[0].Count ||
		!slices.Equal(cfg.Rules[0].Targets, []string{"GO-2024-0001", "example.com/m/p"}) || cfg.UpdatedBy != "alice" {
		t.Errorf("stored configuration = %+v", cfg)
	}
	if !eval(`document.querySelector("#paused").checked`) {
		t.Error("the configuration page does not show the fleet paused")
	}
	shot("config")
}

// checkScreenshot fails the test unless b is a PNG of the 1280-pixel
// window with some content: many colours, not a blank page.
func checkScreenshot(t *testing.T, name string, b []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	bounds := img.Bounds()
	if bounds.Dx() != 1280 || bounds.Dy() < 400 {
		t.Errorf("screenshot %s is %v, want the 1280-pixel-wide page", name, bounds)
	}
	colours := map[[3]uint32]bool{}
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 3 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
		}
	}
	if len(colours) < 50 {
		t.Errorf("screenshot %s has %d colours: a blank or unstyled page?", name, len(colours))
	}
}
