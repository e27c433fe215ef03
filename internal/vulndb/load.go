package vulndb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// hint ends errors about an unreachable or broken remote database.
const hint = "check the network, or pass a local copy of the database with -db"

// hintFor returns what to do about err from a remote database: hint, or,
// when the source served something over reach's limits, to check it.
func hintFor(err error) string {
	if errors.Is(err, ErrTooLarge) {
		return "the Go vulnerability database stays far below these limits: check that -db names it, or an unaltered copy"
	}
	return hint
}

// index returns the database index, loading it on first use. A failed load
// is not remembered: the next call tries again. A local source reads
// index/vulns.json only when needVulns is set: ByModules does without it.
func (c *Client) index(ctx context.Context, needVulns bool) (*index, error) {
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	c.mu.Lock()
	idx := c.idx
	c.mu.Unlock()
	if idx != nil && (idx.vulns != nil || !needVulns) {
		return idx, nil
	}

	var err error
	if c.isHTTP() {
		idx, err = c.loadRemoteIndex(ctx)
	} else {
		idx, err = c.loadLocalIndex(ctx, idx, needVulns)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.idx = idx
	c.mu.Unlock()
	return idx, nil
}

func (c *Client) isHTTP() bool {
	_, ok := c.src.(*httpSource)
	return ok
}

// loadLocalIndex reads what prev lacks of the index of a local source, and
// returns a new index: readers of prev see it unchanged.
func (c *Client) loadLocalIndex(ctx context.Context, prev *index, needVulns bool) (_ *index, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("read vulnerability database %s: %w; is it a Go vulnerability database in the v1 layout (index/db.json, index/modules.json, index/vulns.json, ID/)?", c.source, err)
		}
	}()
	idx := &index{}
	if prev != nil {
		*idx = *prev
	} else {
		data, err := c.src.get(ctx, endpointDB)
		if err != nil {
			return nil, err
		}
		if idx.db, err = parseDBIndex(data); err != nil {
			return nil, fmt.Errorf("%s: %w", c.src.where(endpointDB), err)
		}
		if idx.modules, _, err = c.fetchModules(ctx); err != nil {
			return nil, err
		}
	}
	if needVulns && idx.vulns == nil {
		if idx.vulns, _, err = c.fetchVulns(ctx); err != nil {
			return nil, err
		}
	}
	return idx, nil
}

// fetchIndexRest reads and parses index/modules.json and index/vulns.json,
// returning their bytes too.
func (c *Client) fetchIndexRest(ctx context.Context, db dbIndex) (*index, [2][]byte, error) {
	var raw [2][]byte
	var err error
	idx := &index{db: db}
	if idx.modules, raw[0], err = c.fetchModules(ctx); err != nil {
		return nil, raw, err
	}
	if idx.vulns, raw[1], err = c.fetchVulns(ctx); err != nil {
		return nil, raw, err
	}
	return idx, raw, nil
}

func (c *Client) fetchModules(ctx context.Context) (modulesIndex, []byte, error) {
	data, err := c.src.get(ctx, endpointModules)
	if err != nil {
		return nil, nil, err
	}
	m, err := parseModulesIndex(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c.src.where(endpointModules), err)
	}
	return m, data, nil
}

func (c *Client) fetchVulns(ctx context.Context) (vulnsIndex, []byte, error) {
	data, err := c.src.get(ctx, endpointVulns)
	if err != nil {
		return nil, nil, err
	}
	v, err := parseVulnsIndex(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c.src.where(endpointVulns), err)
	}
	return v, data, nil
}

// loadRemoteIndex loads the index of an HTTP source through the cache: it
// checks index/db.json, refreshes the rest when it changed, and falls back
// to the cached index with a warning when the source fails.
func (c *Client) loadRemoteIndex(ctx context.Context) (*index, error) {
	var cached *cachedIndex
	if c.cache != nil {
		ci, err := c.cache.loadIndex()
		switch {
		case err == nil && ci.source != c.source:
			c.log.Debug("cache belongs to another source: ignoring it", "dir", c.cache.dir, "cached", ci.source)
		case err == nil:
			cached = ci
		case !errors.Is(err, fs.ErrNotExist):
			c.log.Debug("cache unusable: refetching", "dir", c.cache.dir, "err", err)
		}
	}
	idx, err := c.refreshIndex(ctx, cached)
	if err == nil {
		return idx, nil
	}
	if cached == nil || ctx.Err() != nil {
		return nil, fmt.Errorf("load vulnerability database %s: %w; %s", c.source, err, hintFor(err))
	}
	age := c.now().Sub(cached.checked)
	c.warn(fmt.Sprintf("using cached database from %s ago: %v", humanAge(age), err))
	c.mu.Lock()
	c.offline = true
	c.checked = cached.checked
	c.mu.Unlock()
	return &cached.index, nil
}

// refreshIndex fetches index/db.json and, when it differs from the cached
// one, the rest of the index, and updates the cache.
func (c *Client) refreshIndex(ctx context.Context, cached *cachedIndex) (*index, error) {
	dbData, err := c.src.get(ctx, endpointDB)
	if err != nil {
		return nil, err
	}
	db, err := parseDBIndex(dbData)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.src.where(endpointDB), err)
	}
	now := c.now()
	if cached != nil && cached.db.Modified.Equal(db.Modified) {
		c.log.Debug("cached index is current", "modified", db.Modified)
		c.setChecked(now)
		c.cacheErr(c.cache.writeMeta(cacheMeta{Source: c.source, Checked: now}))
		return &cached.index, nil
	}
	idx, raw, err := c.fetchIndexRest(ctx, db)
	if err != nil {
		return nil, err
	}
	c.log.Debug("fetched index", "modified", db.Modified, "modules", len(idx.modules), "entries", len(idx.vulns))
	c.setChecked(now)
	if c.cache != nil {
		c.cacheErr(c.storeIndex(cached, idx, [3][]byte{raw[0], raw[1], dbData}, now))
	}
	return idx, nil
}

func (c *Client) setChecked(t time.Time) {
	c.mu.Lock()
	c.checked = t
	c.mu.Unlock()
}

// storeIndex writes a new index to the cache and drops the cached entries
// that changed or disappeared since the cached index.
// raw holds the bytes of index/modules.json, index/vulns.json and
// index/db.json, written in that order so that an interrupted write leaves
// an old db.json, which makes the next run refetch.
func (c *Client) storeIndex(cached *cachedIndex, idx *index, raw [3][]byte, now time.Time) error {
	if cached == nil {
		if err := c.cache.clearEntries(); err != nil {
			return err
		}
	} else {
		for id, old := range cached.vulns {
			if mod, ok := idx.vulns[id]; ok && mod.modified.Equal(old.modified) {
				continue
			}
			c.log.Debug("dropping changed entry from cache", "id", id)
			if err := c.cache.remove(entryEndpoint(id)); err != nil {
				return err
			}
		}
	}
	for i, endpoint := range []string{endpointModules, endpointVulns, endpointDB} {
		if err := c.cache.write(endpoint, raw[i]); err != nil {
			return err
		}
	}
	return c.cache.writeMeta(cacheMeta{Source: c.source, Checked: now})
}

// cacheErr reports a failure to write the cache once; the client goes on
// without it.
func (c *Client) cacheErr(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	first := !c.cacheWarn
	c.cacheWarn = true
	c.mu.Unlock()
	if first {
		c.warn(fmt.Sprintf("cannot write the database cache in %s (results are not affected): %v", c.cache.dir, err))
	}
}
