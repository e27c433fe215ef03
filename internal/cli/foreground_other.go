//go:build !unix

package cli

// terminalForeground reports whether reach runs in the foreground process
// group of its terminal: systems without process groups say no.
func terminalForeground() bool { return false }
