package binfo

import (
	"errors"
	"testing"

	"github.com/reach-sca/reach/internal/testprog"
)

// TestDWARFInlinesInPclntab proves that the stripped path loses nothing:
// every inlined copy DWARF reports is in the pclntab inline tree of its
// caller, with the same inlined function and call line, and the pclntab
// symbolizes the copy's first pc with that function in its frames.
func TestDWARFInlinesInPclntab(t *testing.T) {
	for _, v := range []testprog.Variant{testprog.Plain, testprog.Inlined, go121} {
		t.Run(v.Name, func(t *testing.T) {
			b := fixture(t, "frames", v)
			dw, err := b.DWARFInlines()
			if err != nil {
				t.Fatal(err)
			}
			if len(dw) < 100 {
				t.Fatalf("only %d inlined copies in DWARF", len(dw))
			}
			missing := 0
			for _, d := range dw {
				f := b.FuncAt(d.Ranges[0].Lo)
				if f == nil || f.Name != d.Caller {
					t.Fatalf("%s inlined at %#x: no caller in the pclntab", d.Func, d.Ranges[0].Lo)
				}
				ok := false
				for _, in := range f.Inlines {
					if in.Func == d.Func && in.CallLine == d.CallLine && in.CallFile == d.CallFile {
						ok = true
						break
					}
				}
				inFrames := false
				for _, fr := range b.Frames(d.Ranges[0].Lo) {
					inFrames = inFrames || (fr.Inlined && fr.Function == d.Func)
				}
				if !ok || !inFrames {
					missing++
					if missing <= 10 {
						t.Errorf("%s: DWARF copy of %s called at %s:%d (%#x) not in the inline tree (found %v) or frames (found %v)", d.Caller, d.Func, d.CallFile, d.CallLine, d.Ranges[0].Lo, ok, inFrames)
					}
				}
			}
			t.Logf("%d DWARF inlined copies, %d missing from the pclntab", len(dw), missing)
		})
	}
}

func TestDWARFInlinesStripped(t *testing.T) {
	b := fixture(t, "frames", testprog.Stripped)
	if _, err := b.DWARFInlines(); !errors.Is(err, ErrNoDWARF) {
		t.Errorf("DWARFInlines on a stripped binary: %v, want ErrNoDWARF", err)
	}
}
