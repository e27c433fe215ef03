package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"github.com/reach-sca/reach/internal/observe"
	"github.com/reach-sca/reach/internal/report"
)

// TestStreamEscapes checks that -stream, often standard error on a
// terminal, escapes what a program's file name or a crafted binary's
// function and file names could send to it (ESC, BEL, CR, DEL, the C1 CSI,
// a bidirectional override), and that the line still decodes to them.
func TestStreamEscapes(t *testing.T) {
	const hostile = "x\x1b[2J\x1b]0;title\x07\rforged\u202egnp.exe\u009b31m\x7f end"
	var buf bytes.Buffer
	s := &eventStream{w: &buf}
	ev := observe.Event{
		Binary:   "/tmp/prog" + hostile,
		Symbol:   "F" + hostile,
		Callsite: &report.Frame{Function: "main.f" + hostile, File: "/src/" + hostile + ".go", Line: 3},
	}
	s.write(ev)
	out := buf.String()
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("not one JSON line: %q", out)
	}
	for _, r := range strings.TrimSuffix(out, "\n") {
		if !unicode.IsPrint(r) && r != ' ' {
			t.Fatalf("stream holds %U unescaped: %q", r, out)
		}
	}
	var got observe.Event
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Binary != ev.Binary || got.Symbol != ev.Symbol || *got.Callsite != *ev.Callsite {
		t.Errorf("round trip changed the event: %+v", got)
	}
}
