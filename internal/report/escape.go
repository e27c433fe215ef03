package report

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Printable returns s with every character that could act on a terminal
// instead of being shown replaced by its Go escape, as %q would write it:
// control characters (C0, DEL and C1, so ANSI escape sequences too, and
// newlines), format characters such as the bidirectional overrides, line
// and paragraph separators, and bytes that are not UTF-8 (as \xNN). It
// returns s itself when there is nothing to escape.
//
// Database entries, binaries and files are input that another user may
// control: every string reach prints for people (the text report, reach
// db, error messages and warnings) passes through Printable. Text with
// several lines is escaped one line at a time.
func Printable(s string) string {
	i := firstUnprintable(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])>>4, 16))
			b.WriteString(strconv.FormatUint(uint64(s[i])&0xf, 16))
		case printable(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r) // '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// PrintableLines is Printable for text of several lines: it keeps the
// newlines and escapes the rest of each line.
func PrintableLines(s string) string {
	if firstUnprintable(s) < 0 {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Printable(l)
	}
	return strings.Join(lines, "\n")
}

func printable(r rune) bool { return r == ' ' || strconv.IsPrint(r) }

// firstUnprintable returns the index of the first byte of s that Printable
// escapes, or -1.
func firstUnprintable(s string) int {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c < ' ' || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !printable(r) {
			return i
		}
		i += size
	}
	return -1
}

// printableJSON rewrites the JSON document js so that it shows safely on a
// terminal too: encoding/json escapes the C0 controls but writes DEL, C1
// controls and format characters such as bidirectional overrides as they
// are. Outside strings JSON is ASCII, so escaping every such character as
// \uXXXX keeps the document's meaning.
func printableJSON(js []byte) []byte {
	i := firstUnprintable(string(js))
	if i < 0 {
		return js
	}
	out := make([]byte, 0, len(js)+16)
	out = append(out, js[:i]...)
	for i < len(js) {
		r, size := utf8.DecodeRune(js[i:])
		switch {
		case r == '\n' || r == '\t' || r == '\r' || (r != utf8.RuneError || size > 1) && printable(r):
			out = append(out, js[i:i+size]...)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			out = appendU(appendU(out, r1), r2)
		default: // encoding/json writes valid UTF-8 only: r is below 0x10000
			out = appendU(out, r)
		}
		i += size
	}
	return out
}

func appendU(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}
