package binfo

import (
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reach-sca/reach/internal/testprog"
)

// TestSharedInlineTrees points every function with an inline tree at the
// largest one: each tree is then decoded once per function, a cost that
// grows with the square of the file's size. Open must refuse the file.
func TestSharedInlineTrees(t *testing.T) {
	good := fixture(t, "frames", testprog.Stripped)
	big, bigTree, bigInl := -1, uint32(0), uint32(0)
	for i := range good.Funcs {
		if big < 0 || len(good.Funcs[i].Inlines) > len(good.Funcs[big].Inlines) {
			big = i
		}
	}
	t.Logf("largest inline tree: %s, %d entries", good.Funcs[big].Name, len(good.Funcs[big].Inlines))
	tab := good.tab
	r, _ := tab.fn(good.funcOff[big])
	bigTree, _ = r.funcdata(funcdataInlTree)
	bigInl = r.pcdata(pcdataInlTreeIndex)

	data, err := os.ReadFile(good.Path)
	if err != nil {
		t.Fatal(err)
	}
	functabOff := good.im.f.Section(".gopclntab").Offset + tab.pclnOff
	patched := 0
	for i := range good.Funcs {
		r, _ := tab.fn(good.funcOff[i])
		if _, ok := r.funcdata(funcdataInlTree); !ok || r.npcdata() <= pcdataInlTreeIndex {
			continue
		}
		rec := functabOff + uint64(good.funcOff[i])
		copy(data[rec+uint64(tab.funcSize)+4*pcdataInlTreeIndex:], le32(bigInl))
		copy(data[rec+uint64(tab.funcSize)+4*uint64(r.npcdata()+funcdataInlTree):], le32(bigTree))
		patched++
	}
	path := filepath.Join(t.TempDir(), "shared")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d functions point at the tree", patched)
	b, err := Open(path)
	if err == nil {
		n := 0
		for _, f := range b.Funcs {
			n += len(f.Inlines)
		}
		b.Close()
		t.Fatalf("Open succeeded with %d inline entries", n)
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "inline trees") {
		t.Errorf("Open: %v, want ErrCorrupt about inline trees", err)
	}
	t.Log(err)
}

// TestAnalysisLimit checks that what one analysis reads and allocates is
// charged against maxAnalysis, and that going over fails as unsupported.
func TestAnalysisLimit(t *testing.T) {
	im := &image{name: "x"}
	if err := im.charge(maxAnalysis - 10); err != nil {
		t.Fatal(err)
	}
	if err := im.charge(10); err != nil {
		t.Errorf("charging up to the limit: %v", err)
	}
	if err := im.charge(1); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "1024 MiB") {
		t.Errorf("charging past the limit: %v, want ErrUnsupported stating the limit", err)
	}
	if err := (&image{}).charge(1 << 62); !errors.Is(err, ErrUnsupported) {
		t.Errorf("charging 2^62 bytes: %v, want ErrUnsupported", err)
	}
}

// TestInlineTreesDisjoint checks the fact loadFuncs's limit on inline
// entries rests on: in binaries the Go linker writes, the inline trees of
// different functions do not overlap.
func TestInlineTreesDisjoint(t *testing.T) {
	for _, v := range allVariants {
		t.Run(v.Name, func(t *testing.T) {
			b := fixture(t, "frames", v)
			esize := uint64(inlEntry120)
			if b.tab.magic == magic118 {
				esize = inlEntry118
			}
			type span struct{ lo, hi uint64 }
			var spans []span
			for i, f := range b.Funcs {
				if len(f.Inlines) == 0 {
					continue
				}
				r, _ := b.tab.fn(b.funcOff[i])
				off, _ := r.funcdata(funcdataInlTree)
				spans = append(spans, span{uint64(off), uint64(off) + uint64(len(f.Inlines))*esize})
			}
			slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
			for i := 1; i < len(spans); i++ {
				if spans[i].lo < spans[i-1].hi {
					t.Fatalf("inline trees at %#x and %#x overlap", spans[i-1].lo, spans[i].lo)
				}
			}
			if len(spans) < 10 {
				t.Fatalf("only %d functions with inline trees", len(spans))
			}
			t.Logf("%d inline trees, none overlapping", len(spans))
		})
	}
}
