package probe

import (
	"context"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

func (e *engine) Counts(ctx context.Context) ([]SiteCount, error) {
	counts, live, err := readCounters[counterKey](e, e.objs.counters, e.final)
	if err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	e.mu.Lock()
	for k, v := range live {
		if a := e.byID[cookieArm(k.Cookie)]; a != nil {
			counts[countKey{int(k.TGID), a.group, cookieSite(k.Cookie)}] += v
		}
	}
	e.mu.Unlock()
	return sortCounts(counts), nil
}

func (e *engine) CallsiteCounts(ctx context.Context) ([]CallsiteCount, error) {
	counts, live, err := readCounters[callsiteMapKey](e, e.objs.callsites, e.finalSites)
	if err != nil {
		return nil, fmt.Errorf("read callsite counters: %w", err)
	}
	e.mu.Lock()
	for k, v := range live {
		a := e.byID[cookieArm(k.Cookie)]
		if a == nil || cookieSite(k.Cookie) >= len(a.sites) {
			continue
		}
		counts[callsiteCountKey{int(k.TGID), a.group, cookieSite(k.Cookie), k.Key}] += v
	}
	e.mu.Unlock()
	return sortCallsiteCounts(counts), nil
}

// readCounters copies the final counts of removed armings (final, guarded
// by countMu) and reads the kernel counter map m, in one step under
// countMu, so that no count moves from one to the other between the two.
// A key evicted during the walk can make it start over: assigning, not
// adding, keeps keys seen twice right.
func readCounters[K, F comparable](e *engine, m *ebpf.Map, final map[F]uint64) (map[F]uint64, map[K]uint64, error) {
	leave, err := e.enter(nil)
	if err != nil {
		return nil, nil, err
	}
	defer leave()

	e.countMu.Lock()
	defer e.countMu.Unlock()
	counts := make(map[F]uint64, len(final))
	for k, v := range final {
		counts[k] = v
	}
	var (
		key   K
		value uint64
		live  = map[K]uint64{}
	)
	it := m.Iterate()
	for it.Next(&key, &value) {
		live[key] = value
	}
	return counts, live, it.Err()
}

func (e *engine) KeyByReturn(ctx context.Context, pid int, group uint64, site int, ret uint64) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	a := e.current[groupInProcess{pid, group}]
	if a == nil {
		a = e.current[groupInProcess{0, group}] // armed for every process running the file
	}
	if a == nil || site < 0 || site >= len(a.sites) || a.mode != Count || a.sites[site].Uncounted {
		e.mu.Unlock()
		return fmt.Errorf("count site %d of group %d in process %d by return address: %w", site, group, pid, ErrNotArmed)
	}
	s := a.sites[site]
	key := callsiteMapKey{Cookie: makeCookie(a.id, site, s.Kind, siteMode(s, a.mode)), Key: ret, TGID: uint32(pid)}
	e.mu.Unlock()
	var zero uint64
	if err := e.objs.callsites.Update(&key, &zero, ebpf.UpdateNoExist); err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
		return fmt.Errorf("count site %d of group %d in process %d by return address: %w", site, group, pid, err)
	}
	return nil
}
