//go:build linux

package keeper

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Env names the environment variable that asks a process to be a
// keeper.
const Env = "REACH_PROBE_KEEPER"

// socketFD is the keeper's end of the socket pair.
const socketFD = 3

// Hook is set once RunIfRequested (probe.RunKeeperIfRequested) has run in
// this process: the executable then takes the keeper role when started as
// one.
var Hook atomic.Bool

// startTimeout bounds the wait for a new keeper's greeting.
const startTimeout = 5 * time.Second

const (
	opProg   uint8 = iota + 1 // register the program sent with SCM_RIGHTS as Prog
	opAttach                  // attach Attach
	opClose                   // close the links of Close
	opWarm                    // register and close a WarmLink of Prog in Attach[0].Path
	opDrop                    // answer at once, then close the links of Close
)

// Program keys.
const (
	progMulti   uint8 = 1
	progClassic uint8 = 2
)

// request is a message from the engine.
type request struct {
	ID     uint64
	Op     uint8
	Prog   uint8
	Attach []attachRequest
	Close  []uint32
}

// attachRequest asks for the probes of one arming, kept under ID.
type attachRequest struct {
	ID      uint32
	Prog    uint8
	Path    string
	PID     int
	Offsets []uint64
	Cookies []uint64
}

// response answers a request; ID 0 is the keeper's greeting.
type response struct {
	ID   uint64
	Err  *wireError
	Errs []attachResult // one per attachRequest, in order
}

type attachResult struct {
	Err  *wireError
	Site int // the failing site of a classic attach; -1 for the whole link
}

// wireError carries an error across the socket with what the engine tests
// with errors.Is.
type wireError struct {
	Msg          string
	Errno        uintptr
	NotSupported bool
	NotExist     bool
}

func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	w := &wireError{
		Msg:          err.Error(),
		NotSupported: errors.Is(err, link.ErrNotSupported),
		NotExist:     errors.Is(err, os.ErrNotExist),
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		w.Errno = uintptr(errno)
	}
	return w
}

func (w *wireError) err() error {
	if w == nil {
		return nil
	}
	return remoteError{*w}
}

// remoteError is an error the keeper reported.
type remoteError struct{ w wireError }

func (e remoteError) Error() string { return e.w.Msg }

func (e remoteError) Unwrap() []error {
	var errs []error
	if e.w.Errno != 0 {
		errs = append(errs, unix.Errno(e.w.Errno))
	}
	if e.w.NotSupported {
		errs = append(errs, link.ErrNotSupported)
	}
	if e.w.NotExist {
		errs = append(errs, os.ErrNotExist)
	}
	return errs
}

// writeFrame sends a message as one frame, with fds attached to its first
// byte. frame is the message's encoding after 4 bytes of room for the
// length.
func writeFrame(conn *net.UnixConn, frame []byte, fds []int) error {
	binary.LittleEndian.PutUint32(frame, uint32(len(frame)-4))
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, _, err := conn.WriteMsgUnix(frame, oob, nil)
	if err != nil {
		return err
	}
	if n < len(frame) {
		_, err = conn.Write(frame[n:])
	}
	return err
}

// maxFrame bounds a frame: MaxSites offsets and cookies, with room.
const maxFrame = 1 << 30

// readFrame reads one request and returns the descriptors that came with
// it.
func readFrame(conn *net.UnixConn) (request, []int, error) {
	var req request
	body, fds, err := readRaw(conn)
	if err != nil {
		return req, nil, err
	}
	if req, err = decodeRequest(body); err != nil {
		closeFDs(fds)
		return req, nil, fmt.Errorf("decode keeper request: %w", err)
	}
	return req, fds, nil
}

func readRaw(conn *net.UnixConn) ([]byte, []int, error) {
	var hdr [4]byte
	oob := make([]byte, unix.CmsgSpace(4*4))
	var fds []int
	got := 0
	for got < len(hdr) {
		n, oobn, _, _, err := conn.ReadMsgUnix(hdr[got:], oob)
		if oobn > 0 {
			msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
			if perr == nil {
				for _, m := range msgs {
					if rights, err := unix.ParseUnixRights(&m); err == nil {
						fds = append(fds, rights...)
					}
				}
			}
		}
		if err != nil {
			closeFDs(fds)
			if got > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, err
		}
		if n == 0 {
			closeFDs(fds)
			if got > 0 {
				return nil, nil, io.ErrUnexpectedEOF
			}
			return nil, nil, io.EOF
		}
		got += n
	}
	size := binary.LittleEndian.Uint32(hdr[:])
	if size > maxFrame {
		closeFDs(fds)
		return nil, nil, fmt.Errorf("keeper frame of %d bytes, more than %d", size, maxFrame)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(conn, body); err != nil {
		closeFDs(fds)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, err
	}
	return body, fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
