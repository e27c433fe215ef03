package probe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// read turns ring buffer records into hits until the reader is closed.
func (e *engine) read() {
	defer e.wg.Done()
	var rec ringbuf.Record
	for {
		if err := e.reader.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return
			}
			if errors.Is(err, ringbuf.ErrFlushed) {
				e.flushed()
				continue
			}
			e.log.Warn("read ring buffer", "err", err)
			continue
		}
		r, err := decodeRecord(rec.RawSample)
		if err != nil {
			e.log.Warn("skip ring buffer record", "err", err)
			continue
		}
		hit, ok := e.hit(r)
		if !ok {
			continue
		}
		select {
		case e.hits <- hit:
			e.delivered.Add(1)
		case <-e.done:
			return
		}
	}
}

// Flush implements Engine. Concurrent calls may return as soon as the
// earliest of them is done.
func (e *engine) Flush(ctx context.Context) (uint64, error) {
	done := make(chan struct{})
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return e.delivered.Load(), ErrClosed
	}
	e.flushes = append(e.flushes, done)
	e.mu.Unlock()
	if err := e.reader.Flush(); err != nil {
		return e.delivered.Load(), fmt.Errorf("flush the ring buffer: %w", err)
	}
	select {
	case <-done:
		return e.delivered.Load(), nil
	case <-e.done:
		return e.delivered.Load(), ErrClosed
	case <-ctx.Done():
		return e.delivered.Load(), ctx.Err()
	}
}

// flushed wakes the Flush calls waiting: the reader has delivered every
// record queued before them.
func (e *engine) flushed() {
	e.mu.Lock()
	waiting := e.flushes
	e.flushes = nil
	e.mu.Unlock()
	for _, c := range waiting {
		close(c)
	}
}

// hit turns a record into a Hit and, for the first hit of a one-shot group,
// starts removing the group.
func (e *engine) hit(r record) (Hit, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.byID[cookieArm(r.cookie)]
	site := cookieSite(r.cookie)
	if a == nil || site >= len(a.sites) {
		e.log.Warn("skip record with unknown cookie", "cookie", r.cookie)
		return Hit{}, false
	}
	s := a.sites[site]
	h := Hit{
		PID:   r.pid,
		TID:   r.tid,
		Group: a.group,
		Site:  site,
		Kind:  s.Kind,
		// In count mode the kernel reports new stacks; the first
		// report of a site in a process is its first hit.
		Callsite: r.flags&flagFirst == 0 && a.reported[[2]int{r.pid, site}],
		Time:     time.Unix(0, int64(r.ktime)+e.wallMinus),
		IP:       r.ip,
		SP:       r.sp,
		BP:       r.bp,
		Bias:     r.ip - s.PC,
		Return:   r.ret,
		Key:      r.key,
		Stack:    r.stack,
		Count:    r.count,
	}
	a.reported[[2]int{r.pid, site}] = true
	if r.flags&flagFirst != 0 {
		e.oneShotLocked(a)
	}
	return h, true
}

// oneShotLocked starts removing a one-shot arming after its first hit.
func (e *engine) oneShotLocked(a *arming) {
	if a.mode != OneShot || a.removing || e.closed {
		return
	}
	a.removing = true
	k := groupInProcess{a.pid, a.group}
	if e.current[k] != a {
		return // being disarmed already
	}
	delete(e.current, k)
	e.wg.Go(func() {
		if err := e.remove(a); err != nil {
			e.log.Warn("remove one-shot group after its first hit", "pid", a.pid, "group", a.group, "err", err)
		}
	})
}

// sweep finds first hits whose records the kernel dropped for want of room
// in the ring buffer, from the counters, and reports them as lost hits.
func (e *engine) sweep() {
	defer e.wg.Done()
	defer close(e.swept)
	tick := time.NewTicker(e.opts.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-e.done:
			return
		case <-tick.C:
		}
		for _, h := range e.lostHits() {
			select {
			case e.hits <- h:
				e.delivered.Add(1) // Flush counts every hit sent on e.hits
			case <-e.done:
				return
			}
		}
	}
}

func (e *engine) lostHits() []Hit {
	var lost uint64
	if err := e.objs.lost.Lookup(uint32(0), &lost); err != nil {
		e.log.Warn("read lost-record counter", "err", err)
		return nil
	}
	// A first hit whose record is still queued is not lost: wait until the
	// reader has caught up.
	if e.reader.AvailableBytes() > 0 {
		return nil
	}
	e.mu.Lock()
	if lost == e.lostSeen {
		e.mu.Unlock()
		return nil
	}
	e.log.Warn("the ring buffer was full: looking for lost first hits in the counters", "records_lost", lost-e.lostSeen)
	e.lostSeen = lost
	e.mu.Unlock()

	var (
		key   counterKey
		value uint64
		found = map[counterKey]uint64{}
	)
	e.countMu.Lock()
	it := e.objs.counters.Iterate()
	for it.Next(&key, &value) {
		found[key] = value
	}
	err := it.Err()
	e.countMu.Unlock()
	if err != nil {
		e.log.Warn("read counters", "err", err)
		return nil
	}

	now := time.Now()
	var hits []Hit
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, n := range found {
		a := e.byID[cookieArm(k.Cookie)]
		site := cookieSite(k.Cookie)
		if a == nil || site >= len(a.sites) || n == 0 || a.reported[[2]int{int(k.TGID), site}] {
			continue
		}
		a.reported[[2]int{int(k.TGID), site}] = true
		hits = append(hits, Hit{
			PID: int(k.TGID), Group: a.group, Site: site, Kind: a.sites[site].Kind,
			Lost: true, Time: now, Count: n,
		})
		e.oneShotLocked(a)
	}
	return hits
}
