package binfo

import (
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"github.com/reach-sca/reach/internal/testprog"
)

// prologuePush returns the PC of f's PUSH RBP when it is the first
// instruction that moves RSP, or 0 when something else moves RSP first or
// control leaves before (frameless functions).
func prologuePush(t *testing.T, b *Binary, f *Func) uint64 {
	t.Helper()
	code, err := b.im.readAddr(f.Entry, f.End-f.Entry)
	if err != nil {
		t.Fatalf("read code of %s: %v", f.Name, err)
	}
	for off := 0; off < len(code); {
		ins, err := x86asm.Decode(code[off:], 64)
		if err != nil {
			return 0
		}
		switch {
		case ins.Op == x86asm.PUSH && ins.Args[0] == x86asm.RBP:
			return f.Entry + uint64(off)
		case ins.Op == x86asm.PUSH, ins.Op == x86asm.POP, ins.Op == x86asm.PUSHF, ins.Op == x86asm.POPF,
			ins.Op == x86asm.CALL, ins.Op == x86asm.RET, ins.Op == x86asm.JMP,
			ins.Args[0] == x86asm.RSP && ins.Op != x86asm.CMP && ins.Op != x86asm.TEST:
			return 0
		}
		off += ins.Len
	}
	return 0
}

// TestEntrySite checks every function's entry site against a disassembly:
// on Go 1.21+ builds a function whose prologue pushes RBP gets SitePushBP
// on that very instruction, and one that does not (frameless) gets
// SiteEntry at its entry. Go 1.19's prologue saves RBP with a MOV, so its
// functions get SiteEntry.
func TestEntrySite(t *testing.T) {
	for _, v := range []testprog.Variant{testprog.Plain, testprog.StrippedPIE, go121, go119} {
		t.Run(v.Name, func(t *testing.T) {
			b := fixture(t, "frames", v)
			counts := map[SiteKind]int{}
			mismatches := 0
			for i := range b.Funcs {
				f := &b.Funcs[i]
				site, err := b.EntrySite(f)
				if err != nil {
					t.Fatalf("EntrySite(%s): %v", f.Name, err)
				}
				counts[site.Kind]++
				if off, err := b.FileOffset(site.PC); err != nil || off != site.Offset {
					t.Errorf("%s: site offset %#x, FileOffset(%#x) = %#x, %v", f.Name, site.Offset, site.PC, off, err)
				}
				want := Site{Kind: SiteEntry, PC: f.Entry}
				if push := prologuePush(t, b, f); push != 0 {
					want = Site{Kind: SitePushBP, PC: push}
				}
				if site.Kind != want.Kind || site.PC != want.PC {
					mismatches++
					if mismatches <= 10 {
						t.Errorf("%s: EntrySite = %v at %#x, disassembly says %v at %#x", f.Name, site.Kind, site.PC, want.Kind, want.PC)
					}
				}
			}
			t.Logf("%d functions: %d push-bp, %d entry, %d mismatches", len(b.Funcs), counts[SitePushBP], counts[SiteEntry], mismatches)
			if v.Toolchain != "go1.19.13" && counts[SitePushBP] < len(b.Funcs)/2 {
				t.Errorf("only %d of %d functions have a push-bp site", counts[SitePushBP], len(b.Funcs))
			}
			if main := lookup(t, b, "main.main"); v.Toolchain != "go1.19.13" {
				if s, _ := b.EntrySite(main); s.Kind != SitePushBP {
					t.Errorf("main.main: site %v, want push-bp", s.Kind)
				}
			}
		})
	}
}
