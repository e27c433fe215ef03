package cli

import (
	"io"
	"os"
	"path/filepath"

	"golang.org/x/mod/modfile"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/safefile"
)

// maxGoMod bounds the go.mod reach reads for SARIF locations.
const maxGoMod = 4 << 20

// renderer returns the renderer of -format: SARIF with the source root
// (-srcroot, else the main module's directory when reach finds it) and its
// go.mod.
func (o *outputFlags) renderer(r *report.Report) (report.RenderFunc, error) {
	if o.format != "sarif" {
		render, err := report.Renderer(o.format)
		if err != nil {
			return nil, usageError("-format: %v", err)
		}
		return render, nil
	}
	root := o.srcRoot
	if root == "" {
		root = findSrcRoot(r)
	}
	opts := report.SARIFOptions{}
	if root != "" {
		if abs, err := filepath.Abs(root); err == nil {
			root = abs
		}
		opts.SourceRoot = root
		opts.GoMod, _ = readGoMod(filepath.Join(root, "go.mod"))
	}
	return opts.Write, nil
}

// findSrcRoot returns the directory of the go.mod of a binary's main
// module: the working directory or one above it, or one above a file of
// the report's callsites and stacks. It returns "" when there is none.
func findSrcRoot(r *report.Report) string {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, b := range r.Binaries {
		for _, f := range b.Findings {
			for _, s := range f.Symbols {
				for _, c := range s.Callsites {
					if filepath.IsAbs(c.File) {
						starts = append(starts, filepath.Dir(c.File))
					}
				}
			}
		}
	}
	mains := map[string]bool{}
	for _, b := range r.Binaries {
		if b.MainModule != "" {
			mains[b.MainModule] = true
		}
	}
	if len(mains) == 0 {
		return ""
	}
	seen := map[string]bool{}
	for _, dir := range starts {
		for ; !seen[dir]; dir = filepath.Dir(dir) {
			seen[dir] = true
			if data, err := readGoMod(filepath.Join(dir, "go.mod")); err == nil {
				if mains[modfile.ModulePath(data)] {
					return dir
				}
			}
		}
	}
	return ""
}

// readGoMod reads a go.mod: a regular file (no FIFO or device) of bounded
// size.
func readGoMod(path string) ([]byte, error) {
	f, err := safefile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxGoMod))
}
