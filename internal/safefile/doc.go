// Package safefile opens and writes files the way a tool that runs as root
// must, in directories and on paths other users may control: a checkout,
// /tmp, a file an orchestrator writes.
//
//   - Reading never blocks on a FIFO or a device: files are opened
//     non-blocking and anything but a regular file is refused before a
//     byte is read.
//   - A file is written under a temporary name created (with its final
//     mode) relative to a descriptor of its directory, and renamed relative
//     to that descriptor: no name is resolved twice, so a link planted
//     meanwhile is never followed.
//   - An output that is a device, a FIFO or a socket is written to, never
//     replaced.
//   - Appending refuses a symbolic link, and a file another user owns in a
//     sticky world-writable directory (the kernel's protected_regular).
//
// The guarantees above hold on Linux, where reach runs as root with
// probes. Elsewhere (scan and db on a developer's machine) the package
// keeps the same API with portable checks made by name, which a
// concurrent change of the file between check and open can defeat.
package safefile

import "errors"

var (
	// ErrNotRegular reports a file that is not a regular file where only
	// one will do.
	ErrNotRegular = errors.New("not a regular file")
	// ErrSymlink reports a symbolic link where reach does not follow one.
	ErrSymlink = errors.New("a symbolic link")
	// ErrUntrusted reports a file reach refuses to use because of who
	// owns it or how it is linked.
	ErrUntrusted = errors.New("not a file reach may trust")
)
