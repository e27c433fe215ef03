package binfo

// dominators returns, by instruction index, the immediate dominator of
// each instruction of fc: the last instruction that every path from a root
// (the function's entry or deferreturn point) to it runs before it. It is
// -1 at the roots, and -2 at instructions that no root leads to. It uses
// the iterative algorithm of Cooper, Harvey and Kennedy ("A Simple, Fast
// Dominance Algorithm", 2001) over a virtual root that leads to the roots.
// The result is computed once and kept.
func (fc *funcCode) dominators() []int {
	fc.domOnce.Do(func() { fc.idom = computeDominators(fc) })
	return fc.idom
}

func computeDominators(fc *funcCode) []int {
	n := len(fc.insts)
	virtual := n
	// Reverse postorder from the virtual root, iteratively.
	order := make([]int, n+1) // postorder number, by index; -1 unreached
	for k := range order {
		order[k] = -1
	}
	var post []int
	succ := func(k int, yield func(int)) {
		if k == virtual {
			for _, r := range fc.roots {
				yield(r)
			}
			return
		}
		fc.successors(k, yield)
	}
	type frame struct {
		k    int
		next []int
	}
	visited := make([]bool, n+1)
	var stack []frame
	push := func(k int) {
		visited[k] = true
		var next []int
		succ(k, func(s int) { next = append(next, s) })
		stack = append(stack, frame{k, next})
	}
	push(virtual)
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if len(top.next) == 0 {
			order[top.k] = len(post)
			post = append(post, top.k)
			stack = stack[:len(stack)-1]
			continue
		}
		s := top.next[0]
		top.next = top.next[1:]
		if !visited[s] {
			push(s)
		}
	}
	preds := make([][]int, n+1)
	for _, k := range post {
		succ(k, func(s int) { preds[s] = append(preds[s], k) })
	}
	idom := make([]int, n+1)
	for k := range idom {
		idom[k] = -2
	}
	idom[virtual] = virtual
	intersect := func(a, b int) int {
		for a != b {
			for order[a] < order[b] {
				a = idom[a]
			}
			for order[b] < order[a] {
				b = idom[b]
			}
		}
		return a
	}
	for changed := true; changed; {
		changed = false
		for i := len(post) - 2; i >= 0; i-- { // reverse postorder, the virtual root (last) aside
			k := post[i]
			d := -2
			for _, p := range preds[k] {
				if idom[p] == -2 {
					continue
				}
				if d == -2 {
					d = p
				} else {
					d = intersect(p, d)
				}
			}
			if d != idom[k] {
				idom[k] = d
				changed = true
			}
		}
	}
	out := idom[:n]
	for k, d := range out {
		if d == virtual {
			out[k] = -1
		}
	}
	return out
}

// commonDominators returns, by instruction index, whether the instruction
// dominates every instruction k for which set[k] is true (none when no
// instruction is in set): code that runs before any of them, each time.
func (fc *funcCode) commonDominators(set []bool) []bool {
	idom := fc.dominators()
	out := make([]bool, len(fc.insts))
	depth := func(k int) int {
		d := 0
		for ; k >= 0; k = idom[k] {
			d++
		}
		return d
	}
	nca := -2
	for k, in := range set {
		if !in || idom[k] == -2 {
			continue
		}
		if nca == -2 {
			nca = k
			continue
		}
		a, b := nca, k
		da, db := depth(a), depth(b)
		for ; da > db; da-- {
			a = idom[a]
		}
		for ; db > da; db-- {
			b = idom[b]
		}
		for a != b && a >= 0 {
			a, b = idom[a], idom[b]
		}
		nca = a // -1: only the virtual root dominates both
		if nca < 0 {
			break
		}
	}
	for k := nca; k >= 0; k = idom[k] {
		out[k] = true
	}
	return out
}
