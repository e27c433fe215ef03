package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/reach-sca/reach/internal/report"
)

// slogVerbose is the logger of -v: every record, as key=value text.
func slogVerbose(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// plainHandler writes warnings and errors for people, one line each:
// "reach: warning: " and the message, then its attributes' values ("err"
// after a colon, others as "key value" in parentheses). Without -v, it is
// reach's logger; it drops the rest, and the "component" attribute, which
// is for -v.
type plainHandler struct {
	mu    *sync.Mutex // shared with the handlers WithAttrs returns
	w     io.Writer
	attrs []slog.Attr
}

func (h *plainHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *plainHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("reach: warning: ")
	b.WriteString(r.Message)
	var errs, others []string
	add := func(a slog.Attr) bool {
		switch {
		case a.Key == "component" || a.Key == "source":
		case a.Key == "err":
			errs = append(errs, a.Value.String())
		default:
			others = append(others, a.Key+" "+a.Value.String())
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	for _, e := range errs {
		b.WriteString(": " + e)
	}
	if len(others) > 0 {
		b.WriteString(" (" + strings.Join(others, ", ") + ")")
	}
	line := report.PrintableLines(b.String())
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := fmt.Fprintln(h.w, line)
	return err
}

func (h *plainHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &plainHandler{mu: h.mu, w: h.w, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

// WithGroup keeps the attributes flat: the plain form has no groups.
func (h *plainHandler) WithGroup(string) slog.Handler { return h }

func newPlainLogger(w io.Writer) *slog.Logger {
	return slog.New(&plainHandler{mu: new(sync.Mutex), w: w})
}
