package vulndb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/reach-sca/reach/internal/osv"
)

// ByModules returns the entries that index/modules.json lists for any of
// modulePaths ("stdlib" and "toolchain" name the Go distribution), sorted
// by ID and without duplicates. It reads only those entries, at most
// Options.MaxConcurrency at a time. Paths the database does not know
// contribute nothing.
//
// The entries are not filtered by version: combine with package semver.
// Withdrawn entries are included (see Withdrawn). A malformed entry is
// skipped with a warning naming its ID (see Warnings); any other failure to
// read an entry fails the call, since the result would be incomplete.
func (c *Client) ByModules(ctx context.Context, modulePaths []string) ([]*osv.Entry, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	idx, err := c.index(ctx, false)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, p := range modulePaths {
		ids = append(ids, idx.modules[p]...)
	}
	ids = sortedUnique(ids)
	if len(ids) > MaxQueryEntries {
		return nil, fmt.Errorf("read entries of %s: %w: the index lists %d entries for these %d modules, more than %d; %s", c.source, ErrTooLarge, len(ids), len(modulePaths), MaxQueryEntries, hintFor(ErrTooLarge))
	}
	return c.byIDs(ctx, idx, ids)
}

// ByModule returns the entries that affect modulePath, as ByModules. The
// CLI's "reach db lookup MODULE@VERSION" combines it with package semver's
// version filter.
func (c *Client) ByModule(ctx context.Context, modulePath string) ([]*osv.Entry, error) {
	return c.ByModules(ctx, []string{modulePath})
}

// ByID returns the entry id. It fails with ErrInvalidID for an ID unsafe to
// look up, ErrNotFound when the database's index does not list it and
// ErrMalformed when the entry is malformed.
func (c *Client) ByID(ctx context.Context, id string) (*osv.Entry, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("entry %q: %w (IDs look like GO-2021-0113)", id, ErrInvalidID)
	}
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	idx, err := c.index(ctx, true)
	if err != nil {
		return nil, err
	}
	if _, ok := idx.vulns[id]; !ok {
		return nil, fmt.Errorf("entry %s: %w in %s", id, ErrNotFound, c.source)
	}
	return c.entry(ctx, idx, id, nil)
}

// Lookup returns the IDs of the entries whose ID or one of whose aliases
// (CVE-..., GHSA-...) is id, sorted: none when the database has no such
// entry. It reads index/vulns.json, not the entries.
func (c *Client) Lookup(ctx context.Context, id string) ([]string, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	idx, err := c.index(ctx, true)
	if err != nil {
		return nil, err
	}
	if _, ok := idx.vulns[id]; ok {
		return []string{id}, nil
	}
	var out []string
	for gid, v := range idx.vulns {
		if slices.Contains(v.aliases, id) {
			out = append(out, gid)
		}
	}
	slices.Sort(out)
	return out, nil
}

// byIDs reads entries concurrently, skipping malformed ones with a warning.
func (c *Client) byIDs(ctx context.Context, idx *index, ids []string) ([]*osv.Entry, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	entries := make([]*osv.Entry, len(ids))
	errs := make([]error, len(ids))
	var fetched atomic.Int64 // bytes fetched, against c.maxQuery
	sem := make(chan struct{}, c.maxConc)
	var wg sync.WaitGroup
loop:
	for i, id := range ids {
		// Entries already in memory need no goroutine.
		if e := c.cached(id); e != nil {
			entries[i] = e
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			entries[i], errs[i] = c.entry(ctx, idx, id, &fetched)
			if errs[i] != nil && !errors.Is(errs[i], ErrMalformed) {
				cancel() // the call fails: stop the other fetches
			}
		}()
	}
	wg.Wait()

	var firstErr error
	out := make([]*osv.Entry, 0, len(ids))
	for i, err := range errs {
		switch {
		case err == nil:
			if entries[i] != nil {
				out = append(out, entries[i])
			}
		case errors.Is(err, ErrMalformed):
			c.warn(fmt.Sprintf("skipping malformed entry %s: %v", ids[i], err))
		case firstErr == nil || (errors.Is(firstErr, context.Canceled) && !errors.Is(err, context.Canceled)):
			firstErr = err
		}
	}
	if firstErr != nil {
		if c.isHTTP() {
			return nil, fmt.Errorf("read entries of %s: %w; %s", c.source, firstErr, hintFor(firstErr))
		}
		return nil, fmt.Errorf("read entries of %s: %w", c.source, firstErr)
	}
	if ctx.Err() != nil && len(out)+countMalformed(errs) < len(ids) {
		return nil, context.Cause(ctx)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func countMalformed(errs []error) int {
	n := 0
	for _, err := range errs {
		if errors.Is(err, ErrMalformed) {
			n++
		}
	}
	return n
}

func (c *Client) cached(id string) *osv.Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[id]
}

// entry reads one entry: from memory, from the cache when it is as recent
// as the index says (or the source is offline), or from the source. The
// bytes fetched from the source are added to fetched, when not nil, and
// may not take it over c.maxQuery.
func (c *Client) entry(ctx context.Context, idx *index, id string, fetched *atomic.Int64) (*osv.Entry, error) {
	if !ValidID(id) { // the index parsers already refuse these
		return nil, fmt.Errorf("entry %q: %w", id, ErrInvalidID)
	}
	if e := c.cached(id); e != nil {
		return e, nil
	}
	var stale *osv.Entry
	if c.cache != nil {
		e, err := c.cache.readEntry(id)
		if err == nil {
			c.mu.Lock()
			offline := c.offline
			c.mu.Unlock()
			mod, listed := idx.vulns[id]
			if offline || !listed || mod.modified.Equal(e.Modified) {
				return c.remember(e), nil
			}
			stale = e
		}
	}
	data, err := c.src.get(ctx, entryEndpoint(id))
	if err != nil {
		if stale != nil && ctx.Err() == nil {
			c.warn(fmt.Sprintf("using cached copy of entry %s, which the index says is outdated: %v", id, err))
			return c.remember(stale), nil
		}
		return nil, err
	}
	if fetched != nil && fetched.Add(int64(len(data))) > c.maxQuery {
		return nil, fmt.Errorf("%s: %w: the entries of this query take more than %d bytes", c.src.where(entryEndpoint(id)), ErrTooLarge, c.maxQuery)
	}
	e, err := parseEntry(data, id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.src.where(entryEndpoint(id)), err)
	}
	if c.cache != nil {
		c.cacheErr(c.cache.write(entryEndpoint(id), data))
	}
	return c.remember(e), nil
}

func (c *Client) remember(e *osv.Entry) *osv.Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.entries[e.ID]; ok {
		return prev
	}
	c.entries[e.ID] = e
	return e
}
