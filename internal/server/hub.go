package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/server/store"
)

// hub keeps the current configuration and wakes the long polls waiting
// for a change. It learns of changes made through this server at once
// (set), and of those made through other servers on the same database by
// reading the store's configuration every poll interval. It is safe for
// concurrent use.
type hub struct {
	store *store.Store
	poll  time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	cfg     fleet.Config
	changed chan struct{} // closed, and replaced, when cfg changes
	closed  chan struct{} // closed by close: waiters give up
	once    sync.Once
	failing bool // the last poll failed (logged once until it works again)
}

func newHub(ctx context.Context, st *store.Store, poll time.Duration, log *slog.Logger) (*hub, error) {
	cfg, err := st.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the configuration: %w", err)
	}
	return &hub{
		store:   st,
		poll:    poll,
		log:     log,
		cfg:     cfg,
		changed: make(chan struct{}),
		closed:  make(chan struct{}),
	}, nil
}

// current returns the configuration, a channel closed when it changes,
// and one closed when the hub closes.
func (h *hub) current() (fleet.Config, <-chan struct{}, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cfg, h.changed, h.closed
}

// version returns the current configuration's version.
func (h *hub) version() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cfg.Version
}

// set makes cfg current, and wakes the waiters, when it is newer than
// what the hub has: versions only go up (a poll that read an older
// version while SetConfig ran does not go back).
func (h *hub) set(cfg fleet.Config) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cfg.Version <= h.cfg.Version {
		return
	}
	h.cfg = cfg
	close(h.changed)
	h.changed = make(chan struct{})
}

// run polls the store until ctx is done.
func (h *hub) run(ctx context.Context) {
	t := time.NewTicker(h.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.refresh(ctx)
	}
}

// refresh reads the store's configuration version, and the configuration
// when the version is not the hub's: the cheap query every poll, the whole
// configuration only on a change.
func (h *hub) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := h.store.ConfigVersion(ctx)
	if err == nil && v != h.version() {
		var cfg fleet.Config
		if cfg, err = h.store.Config(ctx); err == nil {
			h.set(cfg)
		}
	}
	if err != nil {
		if ctx.Err() == nil && !h.failing {
			h.log.Warn("configuration hub: cannot read the configuration; agents keep the last one", "err", err)
		}
		h.failing = true
		return
	}
	if h.failing {
		h.log.Info("configuration hub: the store answers again")
		h.failing = false
	}
}

// catchUp reads the configuration from the store now, for a request
// that knows of a newer version than the hub.
func (h *hub) catchUp(ctx context.Context) error {
	cfg, err := h.store.Config(ctx)
	if err != nil {
		return fmt.Errorf("read the configuration: %w", err)
	}
	h.set(cfg)
	return nil
}

// close wakes every waiter for good: the server is shutting down.
func (h *hub) close() {
	h.once.Do(func() {
		h.mu.Lock()
		close(h.closed)
		h.mu.Unlock()
	})
}
