//go:build linux

package keeper

import (
	"errors"
	"reflect"
	"testing"
)

func TestWireRoundTrip(t *testing.T) {
	reqs := []request{
		{},
		{ID: 1, Op: opProg, Prog: progMulti},
		{ID: 1<<64 - 1, Op: opAttach, Attach: []attachRequest{
			{ID: 7, Prog: progMulti, Path: "/usr/bin/prog", PID: 1234, Offsets: []uint64{0x1000, 0x2345}, Cookies: []uint64{1 << 63, 2}},
			{ID: 8, Prog: progClassic, Path: "", PID: -1},
		}},
		{ID: 3, Op: opClose, Close: []uint32{1, 2, 1<<32 - 1}},
		// Attaches as small as they come: 25 bytes each.
		{ID: 4, Op: opAttach, Attach: []attachRequest{{ID: 1}, {ID: 2}, {ID: 3}}},
	}
	for _, req := range reqs {
		got, err := decodeRequest(appendRequest(nil, req))
		if err != nil {
			t.Fatalf("decode %+v: %v", req, err)
		}
		if !reflect.DeepEqual(got, req) {
			t.Errorf("round trip of a request:\n got %+v\nwant %+v", got, req)
		}
	}
	reps := []response{
		{},
		{ID: 2, Err: &wireError{Msg: "no such file", Errno: 2, NotExist: true}},
		{ID: 3, Errs: []attachResult{}},
		{ID: 4, Errs: []attachResult{{Site: -1}, {Err: &wireError{Msg: "x", NotSupported: true}, Site: 5}}},
	}
	for _, rep := range reps {
		got, err := decodeReply(appendReply(nil, rep))
		if err != nil {
			t.Fatalf("decode %+v: %v", rep, err)
		}
		if !reflect.DeepEqual(got, rep) {
			t.Errorf("round trip of a reply:\n got %+v\nwant %+v", got, rep)
		}
	}
}

func TestWireMalformed(t *testing.T) {
	full := appendRequest(nil, request{ID: 9, Op: opAttach, Attach: []attachRequest{
		{ID: 1, Path: "/bin/x", PID: 5, Offsets: []uint64{1, 2, 3}, Cookies: []uint64{4, 5, 6}},
	}})
	// Every truncation fails, as does trailing data.
	for n := range len(full) {
		if _, err := decodeRequest(full[:n]); !errors.Is(err, errWire) {
			t.Errorf("request truncated to %d of %d bytes: err = %v, want errWire", n, len(full), err)
		}
	}
	if _, err := decodeRequest(append(full, 0)); !errors.Is(err, errWire) {
		t.Errorf("request with a trailing byte: err = %v, want errWire", err)
	}
	// A count larger than the message cannot hold is refused before any
	// allocation for it.
	huge := appendRequest(nil, request{})
	huge[10] = 0xff // the attach count's low byte
	huge[13] = 0x7f
	if _, err := decodeRequest(huge); !errors.Is(err, errWire) {
		t.Errorf("request with a huge count: err = %v, want errWire", err)
	}
	rep := appendReply(nil, response{ID: 1, Errs: []attachResult{{Err: &wireError{Msg: "m"}}}})
	for n := range len(rep) {
		if _, err := decodeReply(rep[:n]); !errors.Is(err, errWire) {
			t.Errorf("reply truncated to %d of %d bytes: err = %v, want errWire", n, len(rep), err)
		}
	}
	bad := appendReply(nil, response{ID: 1, Err: &wireError{}})
	bad[8] = 2 // the error marker
	if _, err := decodeReply(bad); !errors.Is(err, errWire) {
		t.Errorf("reply with a bad error marker: err = %v, want errWire", err)
	}
}

// FuzzDecodeKeeperMessage checks that any bytes decode or fail cleanly,
// and that what decodes encodes back to the same bytes.
func FuzzDecodeKeeperMessage(f *testing.F) {
	f.Add(appendRequest(nil, request{ID: 1, Op: opAttach, Attach: []attachRequest{{ID: 1, Path: "/p", PID: 3, Offsets: []uint64{8}, Cookies: []uint64{9}}}}))
	f.Add(appendRequest(nil, request{ID: 2, Op: opClose, Close: []uint32{4}}))
	f.Add(appendReply(nil, response{ID: 3, Errs: []attachResult{{Err: &wireError{Msg: "e", Errno: 1}, Site: -1}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if req, err := decodeRequest(b); err == nil {
			if again := appendRequest(nil, req); string(again) != string(b) {
				t.Errorf("request %x decodes to %+v, which encodes to %x", b, req, again)
			}
		}
		if rep, err := decodeReply(b); err == nil {
			if again := appendReply(nil, rep); string(again) != string(b) {
				t.Errorf("reply %x decodes to %+v, which encodes to %x", b, rep, again)
			}
		}
	})
}
