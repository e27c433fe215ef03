package observe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/module"

	"github.com/reach-sca/reach/internal/safefile"
)

// ErrBadSelector reports a target selector that is neither an OSV ID, a
// package.Symbol nor "*".
var ErrBadSelector = errors.New("bad target selector")

// Selection selects the vulnerable symbols a Session watches: what the
// user's targets (the -targets flag or targets file) name. The zero value
// selects nothing. A Selection is immutable once built.
type Selection struct {
	all  bool
	ids  map[string]bool // OSV IDs and aliases
	syms map[string]bool // "pkg.Symbol", or "pkg" for all of a package's
	// file is the targets file the set was read from, and lines the line
	// of each selector in it (its first); see selection.go.
	file  string
	lines map[string]int
}

// SelectAll selects every vulnerable symbol.
func SelectAll() Selection { return Selection{all: true} }

// NewSelection returns the selection of the given selectors, each one of
//
//   - every vulnerable symbol
//     GO-2021-0113, CVE-..., GHSA-...    the symbols of one OSV entry
//     golang.org/x/text/language.Parse   one symbol, as OSV entries spell it
//     example.com/p.Decoder.Decode       a method
//     net/mail                           every symbol of a package (its last
//     path element must have no dot)
func NewSelection(selectors ...string) (Selection, error) {
	var t Selection
	for _, sel := range selectors {
		if err := t.add(sel); err != nil {
			return Selection{}, err
		}
	}
	return t, nil
}

// ParseTargets reads a targets file: one selector (see NewSelection) per
// line; blank lines and text after '#' are ignored. name is used in
// errors, which give file:line. An empty file selects nothing.
func ParseTargets(r io.Reader, name string) (Selection, error) {
	t := Selection{file: name, lines: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if err := t.add(line); err != nil {
			return Selection{}, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if _, ok := t.lines[line]; !ok {
			t.lines[line] = n
		}
	}
	if err := sc.Err(); err != nil {
		return Selection{}, fmt.Errorf("read targets %s: %w", name, err)
	}
	return t, nil
}

var stdPath = regexp.MustCompile(`^[a-z0-9_]+(/[a-z0-9_]+)*$`)

var idPattern = regexp.MustCompile(`^(GO-[0-9]{4}-[0-9]{4,}|CVE-[0-9]{4}-[0-9]{4,}|GHSA(-[23456789cfghjmpqrvwx]{4}){3})$`)

// maxQuoted bounds how much of a bad selector an error quotes: a targets
// file's line ends up in messages and reports, and must not carry what
// the file holds besides selectors.
const maxQuoted = 32

// quote quotes at most maxQuoted bytes of s, escaped as ASCII, marking a
// cut with "...".
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.QuoteToASCII(s)
	}
	cut := s[:maxQuoted]
	for len(cut) > 0 && !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	return strconv.QuoteToASCII(cut) + "..."
}

func (t *Selection) add(sel string) error {
	switch {
	case sel == "*":
		t.all = true
	case sel != "" && 'A' <= sel[0] && sel[0] <= 'Z':
		if !idPattern.MatchString(sel) {
			return fmt.Errorf("%s: %w: an OSV ID looks like GO-2021-0113, CVE-2021-38561 or GHSA-ppp9-7jff-5vj2", quote(sel), ErrBadSelector)
		}
		if t.ids == nil {
			t.ids = map[string]bool{}
		}
		t.ids[sel] = true
	default:
		if err := checkSymbolSelector(sel); err != nil {
			return fmt.Errorf("%s: %w: %v", quote(sel), ErrBadSelector, err)
		}
		if t.syms == nil {
			t.syms = map[string]bool{}
		}
		t.syms[sel] = true
	}
	return nil
}

// gopkgVersion matches a last path element of the gopkg.in kind, which
// ends in a major version after a dot: "yaml.v2".
var gopkgVersion = regexp.MustCompile(`^[^.]+\.v[0-9]+`)

// splitSelector splits a symbol selector into its package path and its
// symbol ("" for a package). The package's last path element has no dot,
// or ends in one followed by a major version (gopkg.in/yaml.v2.Decoder.Decode).
func splitSelector(sel string) (pkg, sym string) {
	start := strings.LastIndexByte(sel, '/') + 1
	if m := gopkgVersion.FindString(sel[start:]); m != "" && (len(sel) == start+len(m) || sel[start+len(m)] == '.') {
		start += len(m)
	}
	if dot := strings.IndexByte(sel[start:], '.'); dot >= 0 {
		return sel[:start+dot], sel[start+dot+1:]
	}
	return sel, ""
}

// checkSymbolSelector checks "pkg", "pkg.Func" and "pkg.Type.Method" (see
// splitSelector). Its errors quote nothing of sel: the caller quotes a
// prefix of it.
func checkSymbolSelector(sel string) error {
	pkg, sym := splitSelector(sel)
	if err := module.CheckImportPath(pkg); err != nil {
		// Its message quotes the whole path: give only the reason.
		var ipe *module.InvalidPathError
		if errors.As(err, &ipe) && ipe.Err != nil {
			err = ipe.Err
		}
		return fmt.Errorf("package path: %v", err)
	}
	if strings.Contains(pkg, "..") {
		return errors.New("package path: empty element between dots")
	}
	if first, _, _ := strings.Cut(pkg, "/"); !strings.Contains(first, ".") && !stdPath.MatchString(pkg) {
		return errors.New("package path: neither a standard library package nor a module path (whose first element has a dot)")
	}
	if sym == "" {
		if strings.HasSuffix(sel, ".") {
			return errors.New("empty symbol after the package path")
		}
		return nil
	}
	parts := strings.Split(sym, ".")
	if len(parts) > 2 {
		return fmt.Errorf("symbol: %d dot-separated names, want Func or Type.Method", len(parts))
	}
	for i, p := range parts {
		if !isIdent(p) {
			return fmt.Errorf("symbol: name %d is not a Go identifier", i+1)
		}
	}
	return nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r != '_' && !unicode.IsLetter(r) && (i == 0 || !unicode.IsDigit(r)) {
			return false
		}
	}
	return true
}

// All reports whether the set selects everything.
func (t Selection) All() bool { return t.all }

// Selectors returns the set's selectors, sorted.
func (t Selection) Selectors() []string {
	var out []string
	if t.all {
		out = append(out, "*")
	}
	for id := range t.ids {
		out = append(out, id)
	}
	for s := range t.syms {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func (t Selection) String() string { return strings.Join(t.Selectors(), " ") }

func (t Selection) clone() Selection {
	c := Selection{all: t.all, file: t.file}
	if t.lines != nil {
		c.lines = maps.Clone(t.lines)
	}
	if t.ids != nil {
		c.ids = make(map[string]bool, len(t.ids))
		for k := range t.ids {
			c.ids[k] = true
		}
	}
	if t.syms != nil {
		c.syms = make(map[string]bool, len(t.syms))
		for k := range t.syms {
			c.syms[k] = true
		}
	}
	return c
}

func (t Selection) selects(g *group) bool {
	if t.all || t.ids[g.osv] || t.syms[g.selector()] || t.syms[g.pkg] {
		return true
	}
	for _, a := range g.alias {
		if t.ids[a] {
			return true
		}
	}
	return false
}

// Targets returns the set the session watches.
func (s *Session) Targets() Selection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.targets.clone()
}

// SetTargets changes the watched symbols in every observed process: it
// arms the newly selected groups and removes the deselected ones. One-shot
// groups that fired in a process are not armed there again. When the new
// set needs more than Options.MaxSites probe sites in some process,
// SetTargets fails with ErrTooManySites and changes nothing.
func (s *Session) SetTargets(ctx context.Context, t Selection) error {
	if s.isClosed() {
		return ErrClosed
	}
	s.armingMu.Lock()
	defer s.armingMu.Unlock()
	s.mu.Lock()
	procs := make([]*process, 0, len(s.procs))
	for _, p := range s.procs {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	slices.SortFunc(procs, func(a, b *process) int { return a.pid - b.pid })

	want := make([][]*group, len(procs))
	limits := make([]map[uint64]int, len(procs))
	for i, p := range procs {
		s.mu.Lock()
		want[i] = p.selected(t)
		s.mu.Unlock()
		var n int
		var err error
		if limits[i], n, err = s.plan(want[i]); err != nil {
			return fmt.Errorf("targets %s: process %d (%s) would need %d probe sites, more than the cap of %d: %w; the old targets stay",
				t, p.pid, p.bin.path, n, s.opts.MaxSites, err)
		}
	}
	s.mu.Lock()
	s.targets = t.clone()
	s.recordSelection(t)
	for i, p := range procs {
		p.limits = limits[i]
	}
	s.mu.Unlock()

	var errs []error
	for i, p := range procs {
		keep := map[uint64]bool{}
		for _, g := range want[i] {
			keep[g.id] = true
		}
		var drop []uint64
		for _, id := range s.armedIDs(p) {
			if !keep[id] {
				drop = append(drop, id)
			}
		}
		if err := s.disarmGroups(ctx, p, drop); err != nil {
			errs = append(errs, err)
		}
		s.noteCut(p, want[i])
		if err := s.armGroups(ctx, p, want[i]); err != nil {
			errs = append(errs, err)
		}
	}
	s.log.Info("targets changed", "targets", t.String(), "processes", len(procs))
	s.warnUnmatched()
	return errors.Join(errs...)
}

// WatchTargets reads the targets file at path, applies it, and then polls
// it every interval (0 means 200ms) until Close, applying each valid
// change. The file must be a regular file with one name owned by root or
// by the user reach runs as, and keep its first owner; a symbolic link,
// a FIFO or a device is refused without waiting on it (see
// readTargetsFile). An invalid file is rejected with an error naming file:line, and
// the targets stay as they were: WatchTargets returns the error for the
// first read, and logs it (and notes it in the report) for later ones.
func (s *Session) WatchTargets(ctx context.Context, path string, interval time.Duration) error {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	data, stamp, owner, err := readTargetsFile(path, -1)
	if err != nil {
		return err
	}
	t, err := ParseTargets(bytes.NewReader(data), path)
	if err != nil {
		return err
	}
	if err := s.SetTargets(ctx, t); err != nil {
		return err
	}
	return s.goUnlessClosed(func() {
		pending := stamp
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			st, err := os.Lstat(path) // a link swapped in is a change, refused when read
			if err != nil {
				if fileStamp(nil) != stamp {
					s.targetsFileProblem(path, err)
					stamp = fileStamp(nil)
				}
				continue
			}
			cur := fileStamp(st)
			if cur == stamp {
				continue
			}
			// Apply a change once the file has stayed the same for a whole
			// interval, so that a file being written is not read half-way.
			if cur != pending {
				pending = cur
				continue
			}
			data, newStamp, _, err := readTargetsFile(path, owner)
			if err != nil {
				s.targetsFileProblem(path, err)
				stamp = cur
				continue
			}
			stamp = newStamp
			t, err := ParseTargets(bytes.NewReader(data), path)
			if err == nil {
				err = s.SetTargets(ctx, t)
			}
			if err != nil && !errors.Is(err, ErrClosed) {
				s.log.Warn("targets file rejected: keeping the current targets", "err", err)
				s.rec.Note(fmt.Sprintf("targets file %s rejected at %s, the targets stayed as they were: %v", path, time.Now().Format(time.RFC3339), err))
			}
		}
	})
}

// fileStamp is what tells a changed file: modification time, size and
// inode (an editor or an atomic rename replaces the inode).
type stamp struct {
	mtime int64
	size  int64
	ino   uint64
}

func fileStamp(fi os.FileInfo) stamp {
	if fi == nil {
		return stamp{mtime: -1}
	}
	st := stamp{mtime: fi.ModTime().UnixNano(), size: fi.Size()}
	if id, ok := statID(fi); ok {
		st.ino = id.ino
	}
	return st
}

// maxTargetsFile caps the size of a targets file.
const maxTargetsFile = 1 << 20

// targetsFileProblem logs and notes in the report that the targets file
// could not be read, and that the targets stay as they were.
func (s *Session) targetsFileProblem(path string, err error) {
	s.log.Warn("read targets file: keeping the current targets", "file", path, "err", err)
	s.rec.Note(fmt.Sprintf("targets file %s could not be read at %s, the targets stayed as they were: %v", path, time.Now().Format(time.RFC3339), err))
}

// readTargetsFile reads the targets file at path, and returns its content,
// stamp and owner. It reads only a regular file (never a link, a FIFO or a
// device: it does not wait on one) with one name, owned by root or by the
// user reach runs as; with owner 0 or more, only one that owner still
// owns. Anything else is refused before a byte is read, so that no error
// quotes what it holds.
func readTargetsFile(path string, owner int) ([]byte, stamp, int, error) {
	f, err := safefile.OpenNoFollow(path)
	if err != nil {
		return nil, stamp{}, -1, fmt.Errorf("%w; give a regular file (not a link, FIFO or device) owned by root or by you", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, stamp{}, -1, err // a *fs.PathError naming path
	}
	if err := trustTargetsFile(path, fi, owner); err != nil {
		return nil, stamp{}, -1, err
	}
	uid, _ := safefile.Owner(fi)
	data, err := io.ReadAll(io.LimitReader(f, maxTargetsFile+1))
	if err != nil {
		return nil, stamp{}, -1, fmt.Errorf("read targets file %s: %w", path, err)
	}
	if len(data) > maxTargetsFile {
		return nil, stamp{}, -1, fmt.Errorf("targets file %s: larger than %d bytes: list fewer selectors, or use * for all", path, maxTargetsFile)
	}
	return data, fileStamp(fi), int(uid), nil
}

// trustTargetsFile checks who owns the open targets file fi, and that it
// has one name: a hard link could make another file's lines show up in
// messages.
func trustTargetsFile(path string, fi os.FileInfo, owner int) error {
	uid, ok := safefile.Owner(fi)
	if !ok {
		return fmt.Errorf("targets file %s: cannot tell who owns it", path)
	}
	if uid != 0 && int(uid) != os.Geteuid() && int(uid) != os.Getuid() {
		return fmt.Errorf("targets file %s is owned by user %d: reach reads a targets file only when root or the user it runs as (%d) owns it; chown it, or write it as that user", path, uid, os.Geteuid())
	}
	if owner >= 0 && int(uid) != owner {
		return fmt.Errorf("targets file %s changed owner from user %d to user %d since reach first read it: not read", path, owner, uid)
	}
	if n, ok := safefile.Links(fi); ok && n != 1 {
		return fmt.Errorf("targets file %s has %d names (hard links): reach reads a targets file only when it has one; copy it instead", path, n)
	}
	return nil
}
