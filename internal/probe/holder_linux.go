package probe

import (
	"errors"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// holder creates the links of armings and holds their descriptors until
// asked to close them: in this process (localHolder, with
// Options.NoKeeper or when no keeper could start), or in the keeper process
// (keeper), which removes the probes even when this process is killed. The
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

// createLinks attaches prog to the sites at offsets, with their cookies, in
// ex, for process pid (or every process when 0): one uprobe_multi link when
// multi is set, else a classic uprobe per site. A classic attach that
// fails closes the links made and returns the index of the failing site;
// site is -1 otherwise.
func createLinks(ex *link.Executable, prog *ebpf.Program, multi bool, pid int, offsets, cookies []uint64) (links []link.Link, site int, err error) {
	if multi {
		l, err := ex.UprobeMulti(nil, prog, &link.UprobeMultiOptions{Addresses: offsets, Cookies: cookies, PID: uint32(pid)})
		if err != nil {
			return nil, -1, err
		}
		return []link.Link{l}, -1, nil
	}
	links = make([]link.Link, 0, len(offsets))
	for i, off := range offsets {
		l, err := ex.Uprobe("", prog, &link.UprobeOptions{Address: off, Cookie: cookies[i], PID: pid})
		if err != nil {
			closeLinks(links)
			return nil, i, err
		}
		links = append(links, l)
	}
	return links, -1, nil
}

func closeLinks(links []link.Link) {
	for _, l := range links {
		l.Close()
	}
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
		links, site, err := createLinks(ex, prog, multi, a.pid, offsets, cookies)
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
	l, err := warmLink(prog, path)
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
