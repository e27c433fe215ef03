package vulndb

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/reach-sca/reach/internal/safefile"
)

// source reads the endpoints of a v1 database.
type source interface {
	// get returns the uncompressed bytes of endpoint ("index/modules",
	// "ID/GO-2021-0113"). A missing endpoint gives an error wrapping
	// ErrNotFound.
	get(ctx context.Context, endpoint string) ([]byte, error)
	// where names endpoint for messages: a URL or a file path.
	where(endpoint string) string
}

// dirSource reads a database from a directory that holds the v1 layout,
// each endpoint as <endpoint>.json or <endpoint>.json.gz.
type dirSource struct {
	dir    string
	limits limits
}

// limits are the largest index and entry a source or the cache accepts,
// before and after decompression.
type limits struct{ index, entry int64 }

// of returns the limit for endpoint.
func (l limits) of(endpoint string) int64 {
	if strings.HasPrefix(endpoint, entryDir+"/") {
		return l.entry
	}
	return l.index
}

func (s *dirSource) where(endpoint string) string {
	return filepath.Join(s.dir, filepath.FromSlash(endpoint)+".json")
}

func (s *dirSource) get(ctx context.Context, endpoint string) ([]byte, error) {
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	name := s.where(endpoint)
	max := s.limits.of(endpoint)
	data, err := readFileMax(name, max)
	if errors.Is(err, fs.ErrNotExist) {
		gz, gzErr := readFileMax(name+".gz", max)
		if gzErr == nil {
			data, err = gunzip(gz, max)
			if err != nil {
				return nil, fmt.Errorf("read %s.gz: %w", name, err)
			}
			return data, nil
		}
		if !errors.Is(gzErr, fs.ErrNotExist) {
			return nil, gzErr
		}
		return nil, fmt.Errorf("read %s: %w", name, ErrNotFound)
	}
	return data, err
}

// readFileMax reads a regular file of at most max bytes. It opens name
// without blocking (safefile.Open), so that a FIFO planted in a database
// directory or the cache is refused instead of waiting for a writer
// forever.
func readFileMax(name string, max int64) ([]byte, error) {
	f, err := safefile.Open(name)
	if errors.Is(err, safefile.ErrNotRegular) {
		return nil, fmt.Errorf("read %s: %w: remove it, or give a database whose files are regular files", name, err)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("read %s: %w (more than %d bytes)", name, ErrTooLarge, max)
	}
	return data, nil
}

// gzipMagic starts every gzip stream.
var gzipMagic = []byte{0x1f, 0x8b}

// gunzip decompresses data, refusing more than max bytes of output.
func gunzip(data []byte, max int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not gzip data: %w", err)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, max+1))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	if int64(len(out)) > max {
		return nil, fmt.Errorf("%w: decompresses to more than %d bytes", ErrTooLarge, max)
	}
	return out, nil
}
