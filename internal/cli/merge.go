package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/safefile"
)

// mergeReport merges r into the JSON report in the file name, or writes r
// there when the file is missing or empty, and returns what it wrote.
// Processes merging into the same file at once take turns: each holds an
// exclusive lock (flock) on the file while it reads, merges and replaces
// it, and one that locked a file another had replaced in the meantime
// locks the new one. The file is replaced whole or not at all.
func mergeReport(name string, r *report.Report) (*report.Report, error) {
	for {
		// Not through a symbolic link, and never blocking on a FIFO.
		f, err := openMerge(name)
		if err != nil {
			return nil, fmt.Errorf("-merge: open %s: %w; give the path of a regular file", name, err)
		}
		merged, retry, err := mergeLocked(f, name, r)
		f.Close() // unlocks
		if !retry {
			return merged, err
		}
	}
}

// mergeLocked does mergeReport's work on f, open on name: retry means that
// name was replaced before f was locked.
func mergeLocked(f *os.File, name string, r *report.Report) (_ *report.Report, retry bool, _ error) {
	if err := lockMerge(f); err != nil {
		return nil, false, fmt.Errorf("-merge: lock %s: %w", name, err)
	}
	locked, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("-merge: %w", err)
	}
	if !locked.Mode().IsRegular() {
		return nil, false, fmt.Errorf("-merge: %s is not a regular file (%s); give the path of a JSON report", name, locked.Mode().Type())
	}
	if now, err := os.Stat(name); err != nil || !os.SameFile(locked, now) {
		return nil, true, nil
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, false, fmt.Errorf("-merge: read %s: %w", name, err)
	}
	out := r
	if len(bytes.TrimSpace(data)) > 0 {
		old, err := report.ReadJSON(bytes.NewReader(data))
		if err != nil {
			return nil, false, fmt.Errorf("-merge: %s: %w; merge into a JSON report that reach wrote, or an empty or missing file", name, err)
		}
		report.Merge(old, r)
		out = old
	}
	if err := safefile.ReplaceFile(name, 0o644, func(w io.Writer) error { return report.WriteJSON(w, out) }); err != nil {
		return nil, false, fmt.Errorf("-merge: write report %s: %w", name, err)
	}
	return out, false, nil
}
