//go:build !linux

package safefile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Open opens name for reading, following symbolic links. Anything but a
// regular file is refused with ErrNotRegular, checked by name before it
// is opened so that a FIFO does not block the open.
func Open(name string) (*os.File, error) {
	return openRead(name, os.Stat)
}

// OpenNoFollow is Open, except that a symbolic link as the last element of
// name is refused with ErrSymlink instead of followed.
func OpenNoFollow(name string) (*os.File, error) {
	return openRead(name, os.Lstat)
}

func openRead(name string, stat func(string) (fs.FileInfo, error)) (*os.File, error) {
	fi, err := stat(name)
	if err != nil {
		return nil, err
	}
	if err := regular(name, fi); err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	// The same check on what was opened, in case name changed meanwhile.
	if fi, err = f.Stat(); err == nil {
		err = regular(name, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func regular(name string, fi fs.FileInfo) error {
	switch m := fi.Mode(); {
	case m&fs.ModeSymlink != 0:
		return &fs.PathError{Op: "open", Path: name, Err: ErrSymlink}
	case !m.IsRegular():
		return &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w (%s)", ErrNotRegular, kind(m))}
	}
	return nil
}

// kind names the type of a file mode for messages.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return fmt.Sprintf("file type %v", m.Type())
}

// ReplaceFile writes what write produces to name, whole or not at all: to
// a new file in name's directory, renamed over name when write succeeds.
func ReplaceFile(name string, perm os.FileMode, write func(io.Writer) error) (err error) {
	if base := filepath.Base(name); name == "" || os.IsPathSeparator(name[len(name)-1]) || base == "." || base == ".." {
		return &fs.PathError{Op: "write", Path: name, Err: fmt.Errorf("names a directory, not a file")}
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".reach-*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(perm.Perm()); err != nil {
		return err
	}
	if err := write(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return &fs.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return &fs.PathError{Op: "rename to", Path: name, Err: err}
	}
	return nil
}

// WriteFile writes what write produces to name, as an output that a user
// named: a regular file, or nothing yet, is written whole or not at all
// as ReplaceFile does; a device, a FIFO or a socket is written to, never
// replaced.
func WriteFile(name string, perm os.FileMode, write func(io.Writer) error) error {
	fi, err := os.Stat(name)
	if err != nil || fi.Mode().IsRegular() {
		return ReplaceFile(name, perm, write)
	}
	if fi.IsDir() {
		return &fs.PathError{Op: "write", Path: name, Err: fmt.Errorf("is a directory")}
	}
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return &fs.PathError{Op: "write", Path: name, Err: err}
	}
	return nil
}

// OpenAppend opens name for appending, creating it with mode perm (less
// the umask) when it does not exist. It refuses a symbolic link
// (ErrSymlink) and anything but a regular file (ErrNotRegular).
func OpenAppend(name string, perm os.FileMode) (*os.File, error) {
	if fi, err := os.Lstat(name); err == nil {
		if err := regular(name, fi); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, perm)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = regular(name, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// MkdirAll creates the directory path and its missing parents with mode
// perm (less the umask), as os.MkdirAll does. The ownership checks it
// makes on Linux, where reach runs as root, are not made here.
func MkdirAll(path string, perm os.FileMode) error {
	return os.MkdirAll(path, perm)
}
