package probe

import (
	"errors"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/reach-sca/reach/internal/probe/keeper"
)

// holder creates the links of armings and holds their descriptors until
// asked to close them: in this process (localHolder, with
// Options.NoKeeper or when no keeper could start), or in the keeper process
// (keeperHolder), which removes the probes even when this process is killed. The
// engine arms and disarms through it alone.
type holder interface {
	// attach creates the links of armings, all in the executable ex at
	// path, with prog, a uprobe_multi program when multi is set, else a
	// classic one; it returns one result per arming, in order, or an
	// error for them all.
	attach(ex *link.Executable, path string, prog *ebpf.Program, multi bool, armings []*arming) ([]linkResult, error)
	// close closes the links of the armings ids and returns once their
	// probes are removed.
	close(ids ...uint32) error
	// drop closes the links of the armings ids, whose processes are gone
	// (the probes went with them): it may return before they are closed.
	drop(ids ...uint32) error
	// warm readies the kernel for arming in the executable at path soon
	// (see Warm), with the uprobe_multi program prog.
	warm(prog *ebpf.Program, path string) error
	// stop closes every link still held and ends the holder.
	stop() error
}

// linkResult is the outcome of attaching one arming.
type linkResult struct {
	err  error
	site int // the failing site of a classic attach; -1 for the whole link
}

// localHolder holds the links in this process.
type localHolder struct {
	mu    sync.Mutex
	links map[uint32][]link.Link // by arming
}

func newLocalHolder() *localHolder {
	return &localHolder{links: map[uint32][]link.Link{}}
}

func (h *localHolder) attach(ex *link.Executable, _ string, prog *ebpf.Program, multi bool, armings []*arming) ([]linkResult, error) {
	res := make([]linkResult, len(armings))
	for i, a := range armings {
		offsets, cookies := a.offsetsCookies()
		links, site, err := keeper.CreateLinks(ex, prog, multi, a.pid, offsets, cookies)
		res[i] = linkResult{err: err, site: site}
		if err == nil {
			h.mu.Lock()
			h.links[a.id] = links
			h.mu.Unlock()
		}
	}
	return res, nil
}

// close closes the links of each arming in parallel, each arming's one
// after the other: closing a uprobe_multi link waits for the kernel's
// grace periods, 20-70 ms, most of it idle.
func (h *localHolder) close(ids ...uint32) error {
	h.mu.Lock()
	todo := make([][]link.Link, len(ids))
	for i, id := range ids {
		todo[i] = h.links[id]
		delete(h.links, id)
	}
	h.mu.Unlock()
	errs := make([]error, len(todo))
	closeOne := func(i int) {
		var lerrs []error
		for _, l := range todo[i] {
			if err := l.Close(); err != nil {
				lerrs = append(lerrs, err)
			}
		}
		errs[i] = errors.Join(lerrs...)
	}
	if len(todo) == 1 {
		closeOne(0)
		return errs[0]
	}
	var wg sync.WaitGroup
	for i := range todo {
		wg.Go(func() { closeOne(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// drop closes the links as close does: this process holds them, and its
// closing them cannot outlive it.
func (h *localHolder) drop(ids ...uint32) error { return h.close(ids...) }

func (h *localHolder) warm(prog *ebpf.Program, path string) error {
	l, err := keeper.WarmLink(prog, path)
	if err != nil {
		return err
	}
	return l.Close()
}

func (h *localHolder) stop() error {
	h.mu.Lock()
	ids := make([]uint32, 0, len(h.links))
	for id := range h.links {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	return h.close(ids...)
}

// keeperHolder holds the links in the keeper process.
type keeperHolder struct{ c *keeper.Client }

func (h keeperHolder) attach(_ *link.Executable, path string, prog *ebpf.Program, multi bool, armings []*arming) ([]linkResult, error) {
	as := make([]keeper.Arming, len(armings))
	for i, a := range armings {
		offsets, cookies := a.offsetsCookies()
		as[i] = keeper.Arming{ID: a.id, PID: a.pid, Offsets: offsets, Cookies: cookies}
	}
	res, err := h.c.Attach(prog, multi, path, as)
	if err != nil {
		return nil, err
	}
	out := make([]linkResult, len(res))
	for i, r := range res {
		out[i] = linkResult{err: r.Err, site: r.Site}
	}
	return out, nil
}

func (h keeperHolder) close(ids ...uint32) error { return h.c.Close(ids...) }

func (h keeperHolder) drop(ids ...uint32) error { return h.c.Drop(ids...) }

func (h keeperHolder) warm(prog *ebpf.Program, path string) error { return h.c.Warm(prog, path) }

func (h keeperHolder) stop() error { return h.c.Stop() }
