package safefile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Open opens name for reading, following symbolic links. It does not block
// on a FIFO or a device: anything but a regular file is refused with
// ErrNotRegular, and nothing is read from it.
func Open(name string) (*os.File, error) {
	return openRead(name, 0)
}

// OpenNoFollow is Open, except that a symbolic link as the last element of
// name is refused with ErrSymlink instead of followed.
func OpenNoFollow(name string) (*os.File, error) {
	return openRead(name, unix.O_NOFOLLOW)
}

func openRead(name string, flags int) (*os.File, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		if err == unix.ELOOP && flags&unix.O_NOFOLLOW != 0 {
			return nil, &fs.PathError{Op: "open", Path: name, Err: ErrSymlink}
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w (%s)", ErrNotRegular, kind(st.Mode))}
	}
	if err := realUserMayRead(fd); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	// Reads of a regular file never wait; blocking mode keeps the runtime
	// from trying its poller on it.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// realUserMayRead checks, for an ordinary user, that they may read the
// open file fd themselves. reach given file capabilities (CAP_DAC_READ_SEARCH
// among them) opens what its user names with more than that user's rights:
// a targets file, a database or a binary would read, and quote, a file
// such as /etc/shadow for them. faccessat2 without AT_EACCESS judges by
// the real user, without capabilities. Root (real user 0) may read all.
func realUserMayRead(fd int) error {
	if os.Getuid() == 0 {
		return nil
	}
	err := unix.Faccessat2(fd, "", unix.R_OK, unix.AT_EMPTY_PATH)
	switch err {
	case nil, unix.ENOSYS, unix.EINVAL:
		return nil // before Linux 5.8, which the probes need anyway
	case unix.EACCES, unix.EPERM:
		return fmt.Errorf("%w: user %d, who runs reach, may not read it", fs.ErrPermission, os.Getuid())
	}
	return err
}

// kind names the type of a file mode for messages.
func kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return fmt.Sprintf("file type %#o", mode&unix.S_IFMT)
}

// dir is an open directory that names are resolved in.
type dir struct {
	fd   int
	path string
	st   unix.Stat_t
}

// openDir opens the directory that holds name, which must name a file in
// it: not end in a slash, ".", or "..".
func openDir(name string) (*dir, error) {
	if base := filepath.Base(name); name == "" || strings.HasSuffix(name, "/") || base == "." || base == ".." {
		return nil, &fs.PathError{Op: "write", Path: name, Err: errors.New("names a directory, not a file")}
	}
	path := filepath.Dir(name)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open directory", Path: path, Err: err}
	}
	d := &dir{fd: fd, path: path}
	if err := unix.Fstat(fd, &d.st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return d, nil
}

func (d *dir) close() { unix.Close(d.fd) }

// othersWrite reports whether a user other than its owner (and root) may
// create and rename files in the directory.
func (d *dir) othersWrite() bool { return d.st.Mode&0o022 != 0 }

// trusted reports whether only root or the effective user can change the
// directory's entries.
func (d *dir) trusted() bool {
	uid := uint32(os.Geteuid())
	return (d.st.Uid == 0 || d.st.Uid == uid) && !d.othersWrite()
}

// proc reports whether the directory is in procfs, whose links (such as
// /proc/self/fd/1) are the kernel's, not paths.
func (d *dir) proc() bool {
	var st unix.Statfs_t
	return unix.Fstatfs(d.fd, &st) == nil && st.Type == unix.PROC_SUPER_MAGIC
}

// stickyShared reports a sticky directory others can write, such as /tmp.
func (d *dir) stickyShared() bool {
	return d.st.Mode&unix.S_ISVTX != 0 && d.othersWrite()
}

// ReplaceFile writes what write produces to name, whole or not at all: to
// a new file created with mode perm (less the umask) in name's directory,
// renamed over name when write succeeds. Whatever name was, a file, a
// symbolic link or anything else, it is replaced, not written to; the
// target of a link is untouched.
func ReplaceFile(name string, perm os.FileMode, write func(io.Writer) error) error {
	d, err := openDir(name)
	if err != nil {
		return err
	}
	defer d.close()
	return d.replace(filepath.Base(name), name, perm, write)
}

func (d *dir) replace(base, name string, perm os.FileMode, write func(io.Writer) error) (err error) {
	var tmp string
	var fd int
	for range 100 {
		tmp = ".reach-" + randomHex() + ".tmp"
		// O_EXCL with O_NOFOLLOW creates a new inode or fails: a name
		// another user planted is never opened.
		fd, err = unix.Openat(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
		if err != unix.EEXIST {
			break
		}
	}
	if err != nil {
		return &fs.PathError{Op: "create a temporary file in", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(d.path, tmp))
	defer func() {
		if err != nil {
			f.Close()
			unix.Unlinkat(d.fd, tmp, 0)
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return &fs.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	if err := unix.Renameat(d.fd, tmp, d.fd, base); err != nil {
		return &fs.PathError{Op: "rename to", Path: name, Err: err}
	}
	return nil
}

func randomHex() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// WriteFile writes what write produces to name, as an output that a user
// named:
//
//   - a regular file, or nothing yet: written whole or not at all, as
//     ReplaceFile does;
//   - a device (such as /dev/null or a terminal), a FIFO or a socket:
//     written to, never replaced; in a sticky directory others can write
//     (such as /tmp), only when the effective user or the directory's
//     owner owns it, and in another directory root or the effective user
//     cannot alone change, only when one of them owns it (ErrUntrusted
//     otherwise);
//   - a symbolic link in a directory that only root or the effective user
//     can write (such as /dev/stdout): followed, and what it leads to is
//     written as above (a regular file is replaced in its own directory,
//     never the link);
//   - a symbolic link in a directory others can write (such as /tmp or
//     another user's checkout): replaced as a regular file would be; its
//     target is untouched.
func WriteFile(name string, perm os.FileMode, write func(io.Writer) error) error {
	return writeFile(name, perm, write, 0)
}

// maxLinks bounds the trusted links WriteFile follows, as the kernel's
// 40 does.
const maxLinks = 40

func writeFile(name string, perm os.FileMode, write func(io.Writer) error, links int) error {
	d, err := openDir(name)
	if err != nil {
		return err
	}
	defer d.close()
	base := filepath.Base(name)
	fd, err := unix.Openat(d.fd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return d.replace(base, name, perm, write)
	}
	if err != nil {
		return &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	unix.Close(fd)
	if err != nil {
		return &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return d.replace(base, name, perm, write)
	case unix.S_IFDIR:
		return &fs.PathError{Op: "write", Path: name, Err: syscall.EISDIR}
	case unix.S_IFLNK:
		if !d.trusted() {
			return d.replace(base, name, perm, write)
		}
		// Only root or this user could have put the link there. A
		// /proc/PID/fd link leads to a pipe or a terminal with no name
		// of its own: open it through. Other links are followed a step
		// at a time, each judged by its own directory, so that a link
		// planted along the way is not followed either.
		if d.proc() {
			f, err := openSpecial(d, base, name, 0)
			if err != nil {
				return err
			}
			if f != nil {
				return writeTo(f, write)
			}
		}
		if links >= maxLinks {
			return &fs.PathError{Op: "open", Path: name, Err: syscall.ELOOP}
		}
		target, err := readlinkat(d.fd, base)
		if err != nil {
			return &fs.PathError{Op: "readlink", Path: name, Err: err}
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(d.path, target)
		}
		return writeFile(target, perm, write, links+1)
	}
	if uid := uint32(os.Geteuid()); d.stickyShared() && st.Uid != uid && st.Uid != d.st.Uid {
		// As the kernel's protected_fifos: another user's FIFO in /tmp
		// could read the report, or never read it and stall reach.
		return &fs.PathError{Op: "write", Path: name, Err: fmt.Errorf("%w: %s owned by user %d in a sticky directory others can write; remove it or choose another name", ErrUntrusted, kind(st.Mode), st.Uid)}
	} else if !d.trusted() && st.Uid != uid && st.Uid != 0 {
		// The same in another user's directory (a checkout): a reader
		// that never reads stalls reach for good, in a write no signal
		// interrupts.
		return &fs.PathError{Op: "write", Path: name, Err: fmt.Errorf("%w: %s owned by user %d in a directory another user can write; remove it or choose another name", ErrUntrusted, kind(st.Mode), st.Uid)}
	}
	f, err := openSpecial(d, base, name, unix.O_NOFOLLOW)
	if err != nil {
		return err
	}
	if f == nil {
		// Replaced by a regular file since: that is replaced in turn.
		return d.replace(base, name, perm, write)
	}
	return writeTo(f, write)
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// openSpecial opens base in d for writing, without creating it, when it is
// (or with flags 0, leads to) a device, a FIFO or a socket. It returns nil
// and no error when base is a regular file, a dangling link or gone, which
// the caller replaces. It does not wait for a FIFO's reader.
func openSpecial(d *dir, base, name string, flags int) (*os.File, error) {
	fd, err := unix.Openat(d.fd, base, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC|flags, 0)
	switch {
	case err == unix.ENOENT:
		return nil, nil // a dangling link (never created through), or gone since
	case err == unix.ENXIO:
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("a FIFO with no reader (start the reader first), a socket, or a device that is not there")}
	case err == unix.ELOOP:
		return nil, nil // became a link since: replace it
	case err != nil:
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		unix.Close(fd)
		return nil, nil
	case unix.S_IFDIR:
		unix.Close(fd)
		return nil, &fs.PathError{Op: "write", Path: name, Err: syscall.EISDIR}
	}
	// A reader is there (or it is a device): writes may wait for it, as
	// writes to a pipe do.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

func writeTo(f *os.File, write func(io.Writer) error) error {
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return &fs.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	return nil
}

// OpenAppend opens name for appending, creating it with mode perm (less
// the umask) when it does not exist. It refuses, before writing anything:
//
//   - a symbolic link (ErrSymlink), dangling or not: nothing is created
//     where a link points;
//   - anything but a regular file (ErrNotRegular), without waiting on a
//     FIFO;
//   - in a sticky directory others can write (such as /tmp), a file owned
//     by neither the effective user nor the directory's owner, as the
//     kernel's protected_regular does (ErrUntrusted);
//   - in a directory another user can write (its owner too), a file with
//     more than one link, which could be another file's hard link
//     (ErrUntrusted).
func OpenAppend(name string, perm os.FileMode) (*os.File, error) {
	d, err := openDir(name)
	if err != nil {
		return nil, err
	}
	defer d.close()
	base := filepath.Base(name)
	// Open what is there, else create it anew (O_EXCL): never O_CREAT on
	// its own, which the kernel answers differently for a link in a
	// sticky directory depending on its protected_* settings.
	const flags = unix.O_WRONLY | unix.O_APPEND | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	var fd int
	for range 10 {
		fd, err = unix.Openat(d.fd, base, flags, 0)
		if err != unix.ENOENT {
			break
		}
		fd, err = unix.Openat(d.fd, base, flags|unix.O_CREAT|unix.O_EXCL, uint32(perm.Perm()))
		if err != unix.EEXIST {
			break
		}
	}
	if err != nil {
		if err == unix.ELOOP {
			return nil, &fs.PathError{Op: "open", Path: name, Err: ErrSymlink}
		}
		if err == unix.ENXIO {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w (a FIFO)", ErrNotRegular)}
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	if err := checkAppend(d, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

func checkAppend(d *dir, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%w (%s)", ErrNotRegular, kind(st.Mode))
	}
	uid := uint32(os.Geteuid())
	if d.stickyShared() && st.Uid != uid && st.Uid != d.st.Uid {
		return fmt.Errorf("%w: owned by user %d in a sticky directory others can write; remove it or choose another name", ErrUntrusted, st.Uid)
	}
	if !d.trusted() && st.Nlink > 1 {
		return fmt.Errorf("%w: it has %d links, in a directory another user can write; remove it or choose another name", ErrUntrusted, st.Nlink)
	}
	return nil
}

// MkdirAll creates the directory path and its missing parents with mode
// perm (less the umask), as os.MkdirAll does, for a directory reach keeps
// files in from one run to the next (its caches), which it will read back
// and write into. It refuses, with ErrUntrusted and before creating
// anything, a path another user could change: once symbolic links are
// resolved, every directory on it must be owned by root or the effective
// user and writable by no one else, unless sticky (as /tmp is). A cache
// under another user's home (XDG_CACHE_HOME or HOME kept by sudo) could
// otherwise hold links that make root replace files elsewhere, or
// contents that lie.
func MkdirAll(path string, perm os.FileMode) error {
	if err := checkDirs(path); err != nil {
		return err
	}
	if err := os.MkdirAll(path, perm); err != nil {
		return err
	}
	return checkDirs(path)
}

// checkDirs checks the directories on path that exist, as MkdirAll
// describes: it walks path from the root as the kernel resolves it, and
// checks each directory before it looks inside, and each symbolic link
// (which must be root's or the effective user's) before it follows it.
func checkDirs(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	uid := uint32(os.Geteuid())
	cur := "/"
	if err := checkDir(cur, uid); err != nil {
		return err
	}
	rest := strings.Split(abs, "/")
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur) // checked on the way down
			continue
		}
		next := filepath.Join(cur, c)
		var st unix.Stat_t
		err := unix.Lstat(next, &st)
		if errors.Is(err, unix.ENOENT) {
			return nil // the rest is created in cur, which no one else can change
		}
		if err != nil {
			return &fs.PathError{Op: "stat", Path: next, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if err := checkDir(next, uid); err != nil {
				return err
			}
			cur = next
			continue
		}
		if st.Uid != 0 && st.Uid != uid {
			return fmt.Errorf("%w: %s is a symbolic link owned by user %d", ErrUntrusted, next, st.Uid)
		}
		if links++; links > maxLinks {
			return &fs.PathError{Op: "stat", Path: path, Err: syscall.ELOOP}
		}
		target, err := os.Readlink(next)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return nil
}

// checkDir checks that dir is a directory that only root or uid can
// change, or a sticky one (in which others cannot replace what root or
// uid put there).
func checkDir(dir string, uid uint32) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: dir, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("%w: %s is %s, not a directory", ErrUntrusted, dir, kind(st.Mode))
	case st.Uid != 0 && st.Uid != uid:
		return fmt.Errorf("%w: %s is owned by user %d", ErrUntrusted, dir, st.Uid)
	case st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0:
		return fmt.Errorf("%w: %s is writable by others (mode %#o)", ErrUntrusted, dir, st.Mode&0o7777)
	}
	return nil
}
