package vulndb

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/osv"
	"github.com/reach-sca/reach/internal/safefile"
)

// cache keeps what an HTTP source served under one directory, in the v1
// layout without compression, plus meta.json that records when the index
// was last confirmed with the source:
//
//	meta.json
//	index/db.json, index/modules.json, index/vulns.json
//	ID/<id>.json
//
// Every write goes to a temporary file in the same directory and is renamed
// into place, so readers (and other reach processes) see whole files only.
type cache struct {
	dir    string
	limits limits
}

type cacheMeta struct {
	Source  string    `json:"source"`
	Checked time.Time `json:"checked"` // last time the index matched the source
}

// path returns the file of endpoint, which must be an index endpoint or an
// entry endpoint of a valid ID.
func (c *cache) path(endpoint string) (string, error) {
	if id, ok := strings.CutPrefix(endpoint, entryDir+"/"); ok && !ValidID(id) {
		return "", fmt.Errorf("cache %s: %w %q", c.dir, ErrInvalidID, id)
	}
	p := filepath.Join(c.dir, filepath.FromSlash(endpoint)+".json")
	// Defence in depth: never touch anything outside the cache directory.
	if rel, err := filepath.Rel(c.dir, p); err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("cache %s: endpoint %q leaves the cache directory", c.dir, endpoint)
	}
	return p, nil
}

func (c *cache) read(endpoint string) ([]byte, error) {
	p, err := c.path(endpoint)
	if err != nil {
		return nil, err
	}
	return readFileMax(p, c.limits.of(endpoint))
}

func (c *cache) write(endpoint string, data []byte) error {
	p, err := c.path(endpoint)
	if err != nil {
		return err
	}
	return writeFileAtomic(p, data)
}

func (c *cache) remove(endpoint string) error {
	p, err := c.path(endpoint)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// clearEntries removes every cached entry.
func (c *cache) clearEntries() error {
	return os.RemoveAll(filepath.Join(c.dir, entryDir))
}

func (c *cache) metaPath() string { return filepath.Join(c.dir, "meta.json") }

func (c *cache) readMeta() (cacheMeta, error) {
	var m cacheMeta
	data, err := readFileMax(c.metaPath(), 1<<16)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("parse %s: %w", c.metaPath(), err)
	}
	return m, nil
}

func (c *cache) writeMeta(m cacheMeta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeFileAtomic(c.metaPath(), data)
}

// cachedIndex is a parsed index from the cache with the time it was last
// confirmed with the source.
type cachedIndex struct {
	index
	source  string
	checked time.Time
}

// loadIndex reads the cached index. It fails when any part is missing or
// malformed: the cache is then treated as empty.
func (c *cache) loadIndex() (*cachedIndex, error) {
	meta, err := c.readMeta()
	if err != nil {
		return nil, err
	}
	ci := &cachedIndex{source: meta.Source, checked: meta.Checked}
	data, err := c.read(endpointDB)
	if err != nil {
		return nil, err
	}
	if ci.db, err = parseDBIndex(data); err != nil {
		return nil, err
	}
	if data, err = c.read(endpointModules); err != nil {
		return nil, err
	}
	if ci.modules, err = parseModulesIndex(data); err != nil {
		return nil, err
	}
	if data, err = c.read(endpointVulns); err != nil {
		return nil, err
	}
	if ci.vulns, err = parseVulnsIndex(data); err != nil {
		return nil, err
	}
	return ci, nil
}

// readEntry returns the cached entry id, or an error when it is absent or
// malformed.
func (c *cache) readEntry(id string) (*osv.Entry, error) {
	data, err := c.read(entryEndpoint(id))
	if err != nil {
		return nil, err
	}
	return parseEntry(data, id)
}

// writeFileAtomic writes data to a temporary file beside name and renames
// it into place (safefile.ReplaceFile: created with its mode, renamed
// relative to the directory, never resolved by name in between).
func writeFileAtomic(name string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return safefile.ReplaceFile(name, 0o644, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// sanitizeSource turns a source into a directory name: the letters, digits,
// '.' and '-' after the scheme (others become '_'), at most 64 of them, then
// a hash of the whole source so that distinct sources never share a cache:
// "https://vuln.go.dev" becomes "vuln.go.dev-<12 hex digits>".
func sanitizeSource(source string) string {
	readable := source
	if _, rest, ok := strings.Cut(source, "://"); ok {
		readable = rest
	}
	var b strings.Builder
	for _, r := range readable {
		if b.Len() >= 64 {
			break
		}
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(source))
	return strings.TrimLeft(b.String(), ".") + "-" + hex.EncodeToString(sum[:6])
}

// humanAge formats an age for a warning: "40s", "12m", "3h", "5d".
func humanAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
