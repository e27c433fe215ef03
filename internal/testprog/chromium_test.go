package testprog

import (
	"bytes"
	"context"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// page's script writes the text that the test reads, so reading it proves
// that the browser ran the page's JavaScript; its red background shows in
// the screenshot.
const page = `<!doctype html>
<html><head><title>reach test</title></head>
<body style="margin:0;background:rgb(200,30,40)">
<p id="out">not run</p>
<script>document.getElementById("out").textContent = "ran " + (6*7) + " " + location.pathname</script>
</body></html>`

func TestChromeContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	}))
	defer srv.Close()

	ctx := ChromeContext(t)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/overview")); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#out")))
	if err != nil {
		t.Fatal(err)
	}
	if text != "ran 42 /overview" {
		t.Errorf("text of #out = %q, want the script's %q", text, "ran 42 /overview")
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil || title != "reach test" {
		t.Errorf("title = %q, %v; want %q", title, err, "reach test")
	}

	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "overview.png")
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot %s: %v", file, err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() < 600 {
		t.Errorf("screenshot is %v, want the 1280-pixel-wide window", b)
	}
	// Bottom right, below the text: the page's background.
	b := img.Bounds()
	r, g, bl, _ := img.At(b.Max.X-10, b.Max.Y-10).RGBA()
	if got := (color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 0}); got.R < 190 || got.G > 40 || got.B > 50 {
		t.Errorf("screenshot pixel = %v, want the page's red rgb(200,30,40)", got)
	}
}

func TestChromium(t *testing.T) {
	p := Chromium(t)
	if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("Chromium() = %s: not an executable file (%v)", p, err)
	}
}
