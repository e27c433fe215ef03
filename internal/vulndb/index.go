package vulndb

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The endpoints of a v1 database, without extension. An HTTP source serves
// each as <endpoint>.json.gz, a directory holds <endpoint>.json (or .json.gz).
const (
	endpointDB      = "index/db"
	endpointModules = "index/modules"
	endpointVulns   = "index/vulns"
	entryDir        = "ID"
)

func entryEndpoint(id string) string { return entryDir + "/" + id }

// maxIDLen bounds the length of an entry ID; real IDs are ~13 bytes.
const maxIDLen = 128

// ValidID reports whether id is safe to use as an entry ID: 1 to 128 bytes
// of ASCII letters, digits, '-', '_' and '.', starting with a letter or a
// digit and without "..". Every Go database ID (GO-2021-0113) qualifies, as
// do OSV IDs of other databases (GHSA-xxxx-xxxx-xxxx). IDs are checked with
// ValidID before they become file names or URL paths.
func ValidID(id string) bool {
	if id == "" || len(id) > maxIDLen || strings.Contains(id, "..") {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '-' || c == '_' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// dbIndex is index/db.json.
type dbIndex struct {
	Modified time.Time `json:"modified"`
}

// moduleVuln is one element of a module's "vulns" in index/modules.json.
// Its "modified" and "fixed" are not needed (index/vulns.json has the
// former, the entries the latter) and are left unparsed.
type moduleVuln struct {
	ID string `json:"id"`
}

type moduleIndexEntry struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

// vulnIndexEntry is one element of index/vulns.json.
type vulnIndexEntry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
}

// modulesIndex maps a module path to the sorted, deduplicated IDs of the
// entries that affect it.
type modulesIndex map[string][]string

// vulnsIndex maps an entry ID to its modified time and aliases.
type vulnsIndex map[string]vulnInfo

// vulnInfo is what index/vulns.json says of an entry.
type vulnInfo struct {
	modified time.Time
	aliases  []string
}

// index is the parsed index of a database.
type index struct {
	db      dbIndex
	modules modulesIndex
	vulns   vulnsIndex
}

func parseDBIndex(data []byte) (dbIndex, error) {
	var d struct {
		Modified *time.Time `json:"modified"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return dbIndex{}, fmt.Errorf("parse %s.json: %w: %w", endpointDB, ErrMalformed, err)
	}
	if d.Modified == nil {
		return dbIndex{}, fmt.Errorf("parse %s.json: %w: no \"modified\" field", endpointDB, ErrMalformed)
	}
	return dbIndex{Modified: *d.Modified}, nil
}

func parseModulesIndex(data []byte) (modulesIndex, error) {
	var list []moduleIndexEntry
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("parse %s.json: %w: %w", endpointModules, ErrMalformed, err)
	}
	idx := make(modulesIndex, len(list))
	all := make(map[string]bool)
	for i, m := range list {
		if m.Path == "" {
			return nil, fmt.Errorf("parse %s.json: %w: module %d has no path", endpointModules, ErrMalformed, i)
		}
		ids := idx[m.Path]
		for _, v := range m.Vulns {
			if !ValidID(v.ID) {
				return nil, fmt.Errorf("parse %s.json: %w: module %s names invalid entry ID %q", endpointModules, ErrMalformed, m.Path, v.ID)
			}
			ids = append(ids, v.ID)
			all[v.ID] = true
		}
		if len(all) > MaxEntries {
			return nil, fmt.Errorf("parse %s.json: %w: more than %d entries listed", endpointModules, ErrTooLarge, MaxEntries)
		}
		idx[m.Path] = ids
	}
	for path, ids := range idx {
		idx[path] = sortedUnique(ids)
		if n := len(idx[path]); n > MaxModuleEntries {
			return nil, fmt.Errorf("parse %s.json: %w: module %.200q lists %d entries, more than %d", endpointModules, ErrTooLarge, path, n, MaxModuleEntries)
		}
	}
	return idx, nil
}

func parseVulnsIndex(data []byte) (vulnsIndex, error) {
	var list []vulnIndexEntry
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("parse %s.json: %w: %w", endpointVulns, ErrMalformed, err)
	}
	if len(list) > MaxEntries {
		return nil, fmt.Errorf("parse %s.json: %w: %d entries, more than %d", endpointVulns, ErrTooLarge, len(list), MaxEntries)
	}
	idx := make(vulnsIndex, len(list))
	for _, v := range list {
		if !ValidID(v.ID) {
			return nil, fmt.Errorf("parse %s.json: %w: invalid entry ID %q", endpointVulns, ErrMalformed, v.ID)
		}
		idx[v.ID] = vulnInfo{modified: v.Modified, aliases: v.Aliases}
	}
	return idx, nil
}

// sortedUnique sorts ids and removes duplicates in place.
func sortedUnique(ids []string) []string {
	if len(ids) < 2 {
		return ids
	}
	sort.Strings(ids)
	out := ids[:1]
	for _, id := range ids[1:] {
		if id != out[len(out)-1] {
			out = append(out, id)
		}
	}
	return out
}
