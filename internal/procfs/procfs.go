// Package procfs reads what reach needs of /proc/PID/stat: a process's
// state and start time, and from them whether it has exited.
//
// One reading of "exited" for every caller: a process has exited when its
// /proc/PID/stat is missing (it was reaped, or never existed), or its state
// is Z (a zombie, not yet reaped by its parent) or X (dead, being torn
// down). Neither of the last two runs any more code, though signals still
// find a zombie.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Stat is the part of /proc/PID/stat that reach reads.
type Stat struct {
	// State is field 3: R, S, D, T, t, Z, X, I, ...
	State byte
	// Start is field 22, the start time in clock ticks since boot: it
	// tells a process from a later one that reuses its PID.
	Start uint64
}

// Exited reports whether the state is that of a process that runs no more
// code: Z (zombie) or X (dead).
func (s Stat) Exited() bool { return s.State == 'Z' || s.State == 'X' }

// ReadStat reads /proc/PID/stat. A process that does not exist gives an
// error wrapping os.ErrNotExist.
func ReadStat(pid int) (Stat, error) {
	name := "/proc/" + strconv.Itoa(pid) + "/stat"
	b, err := os.ReadFile(name)
	if err != nil {
		return Stat{}, err
	}
	st, err := ParseStat(b)
	if err != nil {
		return Stat{}, fmt.Errorf("%s: %w", name, err)
	}
	return st, nil
}

// ParseStat parses the contents of a /proc/PID/stat file.
func ParseStat(b []byte) (Stat, error) {
	// The command name, field 2, is in parentheses and may hold spaces
	// and parentheses: the last ')' ends it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, errors.New("malformed: no command name")
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is field 3 (the state); the start time is field 22.
	if len(fields) < 20 || len(fields[0]) != 1 {
		return Stat{}, errors.New("malformed: too few fields")
	}
	start, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("malformed start time: %w", err)
	}
	return Stat{State: fields[0][0], Start: start}, nil
}

// Exited reports whether process pid has exited: its /proc/PID/stat is
// missing, or it is a zombie or dead. Any other failure to read the file
// (which every process may read) leaves the process counted as running.
func Exited(pid int) bool {
	if pid <= 0 {
		return false
	}
	st, err := ReadStat(pid)
	if err != nil {
		return errors.Is(err, os.ErrNotExist) || noProcess(err)
	}
	return st.Exited()
}
