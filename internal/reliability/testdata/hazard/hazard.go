// Package hazard is a fake vulnerable package for reach's reliability
// tests. The fixture database says every version below v1.0.1 is
// vulnerable.
package hazard

// Mix is small enough to be inlined into every caller: reach must probe
// each inlined copy.
func Mix(h, x uint64) uint64 { return (h ^ x) * 1099511628211 }

// Digest is never inlined and has a frame: reach probes the push of its
// frame pointer.
//
//go:noinline
func Digest(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h = Mix(h, uint64(c))
	}
	return Leaf(h)
}

// Leaf is a frameless leaf function: reach probes its first instruction.
//
//go:noinline
func Leaf(x uint64) uint64 { return x>>7 ^ x<<3 }

// Unused is linked in but never called.
//
//go:noinline
func Unused(x uint64) uint64 { return x + 1 }
