// Package keeper runs and talks to the probe keeper: a helper process
// that creates and owns the probe engine's links, so that the kernel
// removes the probes in a healthy process even when the engine's process
// dies by SIGKILL. protocol.go and wire.go are the messages between them,
// server.go the keeper process, client.go the engine's end, confine.go
// what the keeper may do, links.go creating links (which the engine also
// does in its own process without a keeper).
//
// Why: a link's probes are removed when the last file descriptor of the
// link is closed. When a process is killed, its descriptors are closed
// during its exit, by a thread with SIGKILL pending; the kernel then fails
// to write the original instruction back (get_user_pages_remote gives up on
// a fatal signal), logs "failed to unregister, leaking uprobe" and leaves
// the breakpoints in the observed program until it exits. The same happens
// when the process is killed while it creates a link. The keeper creates
// every link, holds its only descriptor, closes it when the engine asks,
// and, when the engine's end of their socket closes (the engine exited,
// however), closes every link it still holds and exits normally.
//
// The keeper is the engine's own executable (/proc/self/exe) started with
// Env set; probe.RunKeeperIfRequested must run first in that program's main
// (or TestMain) to take that role. It runs in its own session, ignores the
// terminal's signals, and talks over a socket pair passed as file
// descriptor 3: frames of a 4-byte little-endian length and a message
// (wire.go). Program descriptors travel with SCM_RIGHTS.
package keeper
