package vulndb

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
	dir      string
	maxBytes int64
}

func (s *dirSource) where(endpoint string) string {
	return filepath.Join(s.dir, filepath.FromSlash(endpoint)+".json")
}

func (s *dirSource) get(ctx context.Context, endpoint string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := s.where(endpoint)
	data, err := readFileMax(name, s.maxBytes)
	if errors.Is(err, fs.ErrNotExist) {
		gz, gzErr := readFileMax(name+".gz", s.maxBytes)
		if gzErr == nil {
			data, err = gunzip(gz, s.maxBytes)
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

// readFileMax reads a file of at most max bytes.
func readFileMax(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
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
