package binfo

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/testprog"
)

// stack is one stack the frames fixture printed.
type stack struct {
	tag    string
	pcs    []uint64
	frames []Frame // Inlined is not printed: compare without it
}

// runFrames runs the frames fixture and parses its output.
func runFrames(t *testing.T, path string) (mainPC uint64, stacks []stack) {
	t.Helper()
	out, err := exec.Command(path).Output()
	if err != nil {
		t.Fatalf("run %s: %v", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		word, rest, _ := strings.Cut(line, " ")
		switch word {
		case "main.main":
			mainPC, err = strconv.ParseUint(rest, 0, 64)
		case "stack":
			stacks = append(stacks, stack{tag: rest})
		case "pc":
			var pc uint64
			pc, err = strconv.ParseUint(rest, 0, 64)
			stacks[len(stacks)-1].pcs = append(stacks[len(stacks)-1].pcs, pc)
		case "frame":
			f := strings.Split(rest, "\t")
			if len(f) != 3 {
				t.Fatalf("bad line %q", line)
			}
			var n int
			n, err = strconv.Atoi(f[2])
			stacks[len(stacks)-1].frames = append(stacks[len(stacks)-1].frames, Frame{Function: f[0], File: f[1], Line: n})
		}
		if err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
	}
	if mainPC == 0 || len(stacks) < 5 {
		t.Fatalf("%s printed no main.main address or too few stacks:\n%s", path, out)
	}
	return mainPC, stacks
}

// TestFramesMatchRuntime checks Frames against runtime.CallersFrames: for
// each PC runtime.Callers returned (a return address, or a virtual PC for
// an inlined frame), Frames(pc-1) must give the logical frames
// CallersFrames gave from that PC outwards.
func TestFramesMatchRuntime(t *testing.T) {
	for _, v := range allVariants {
		t.Run(v.Name, func(t *testing.T) {
			b := fixture(t, "frames", v)
			mainPC, stacks := runFrames(t, b.Path)
			// The load bias of a PIE process: where main.main runs minus
			// where it was linked.
			bias := mainPC - lookup(t, b, "main.main").Entry
			if !b.PIE && bias != 0 {
				t.Fatalf("non-PIE binary ran with load bias %#x", bias)
			}
			inlined := 0
			for _, s := range stacks {
				if len(s.pcs) != len(s.frames) {
					t.Fatalf("stack %s: %d pcs but %d frames", s.tag, len(s.pcs), len(s.frames))
				}
				for k, pc := range s.pcs {
					pc -= bias
					if f := b.FuncAt(pc); f != nil && pc > f.Entry {
						pc-- // as CallersFrames does
					}
					got := b.Frames(pc)
					var plain []Frame
					for _, f := range got {
						if f.Inlined {
							inlined++
						}
						f.Inlined = false
						plain = append(plain, f)
					}
					want := s.frames[k:min(k+len(got), len(s.frames))]
					if fmt.Sprint(plain) != fmt.Sprint(want) {
						t.Errorf("stack %s, pc %d (%#x): Frames =\n\t%v\nruntime:\n\t%v", s.tag, k, pc, plain, s.frames[k:])
					}
				}
			}
			if inlined == 0 {
				t.Errorf("no inlined frame seen: the fixture no longer tests inlining")
			}
		})
	}
}

func TestFramesOutside(t *testing.T) {
	b := fixture(t, "frames", testprog.Plain)
	if f := b.Frames(0); f != nil {
		t.Errorf("Frames(0) = %v, want nil", f)
	}
	last := b.Funcs[len(b.Funcs)-1]
	if f := b.Frames(last.End + 1); f != nil {
		t.Errorf("Frames past the last function = %v, want nil", f)
	}
}
