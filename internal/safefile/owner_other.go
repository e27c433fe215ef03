//go:build !unix

package safefile

import "os"

// Owner returns the user ID that owns the file fi describes, and false
// when fi does not say, as on this system it never does.
func Owner(fi os.FileInfo) (uint32, bool) { return 0, false }

// Links returns the number of names (hard links) of the file fi
// describes, and false when fi does not say, as on this system it never
// does.
func Links(fi os.FileInfo) (uint64, bool) { return 0, false }
