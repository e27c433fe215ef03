package testprog

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of the Chromium browser that tests drive:
// $REACH_TEST_CHROMIUM, else chromium, chromium-browser or
// chromium-headless-shell on $PATH. It skips the test when there is none,
// except under CI=true, where it fails it.
func Chromium(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("REACH_TEST_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("REACH_TEST_CHROMIUM: %v", err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "chromium-headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Skip(tb, "no Chromium: set REACH_TEST_CHROMIUM to the browser's path, or install Debian's package chromium (as root, `. .ci/services` does and sets it)")
	return ""
}

// ChromeOptions returns the options for chromedp.NewExecAllocator that
// run browser headless (chromedp's default) in a test: no sandbox (Chromium refuses to start
// as root with one), no GPU, /tmp rather than a small /dev/shm, a
// 1280×800 window, and a fresh profile in userDataDir.
func ChromeOptions(browser, userDataDir string) []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 800),
		chromedp.UserDataDir(userDataDir),
	)
}

// ChromeContext starts headless Chromium (see Chromium and ChromeOptions)
// and returns a context for chromedp.Run that drives one tab of it; the
// browser exits when the test ends. A browser that cannot start fails the
// test, with what it printed.
func ChromeContext(tb testing.TB) context.Context {
	tb.Helper()
	browser := Chromium(tb)
	dir := tb.TempDir()
	out, err := os.Create(filepath.Join(dir, "chromium.log"))
	if err != nil {
		tb.Fatal(err)
	}
	opts := append(ChromeOptions(browser, filepath.Join(dir, "profile")), chromedp.CombinedOutput(out))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	tb.Cleanup(func() {
		cancel()
		cancelAlloc()
		out.Close()
	})
	// Start the browser now, so that a browser that cannot start fails
	// here and says why, rather than in the test's first action.
	if err := chromedp.Do(ctx); err != nil {
		log, _ := os.ReadFile(out.Name())
		tb.Fatalf("start %s: %v\n%s", browser, err, log)
	}
	return ctx
}
