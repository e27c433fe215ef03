package observe

import "os/exec"

// signalled: on Plan 9 a note ends a program, not a numbered signal; Run
// needs Linux anyway.
func signalled(err *exec.ExitError) (int, bool) { return 0, false }
