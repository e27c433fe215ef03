package cli

// errnoMessage: Plan 9's errors are strings, not numbers; those that
// startError names are said already.
func errnoMessage(err error) (string, bool) { return "", false }
