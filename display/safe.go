package display

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxSafe is how many bytes of an untrusted string Safe keeps: enough for
// any real path, model id or tensor name, small enough that a hostile 5 MB
// name cannot flood a terminal or a log.
const MaxSafe = 256

// Safe returns untrusted text (a prompt, a file or tensor name, a cache
// folder, a terminal type sent over SSH) fit to be shown on one line of a
// terminal or a log: see SafeN, with the limit MaxSafe.
func Safe(s string) string { return SafeN(s, MaxSafe) }

// SafeN escapes what a terminal would act on or reorder, visibly and
// unambiguously, in Go's escape syntax:
//
//   - control characters (C0 including \n and \t, DEL, C1) as \n, \t, \x1b, \u0085;
//   - bidirectional formatting characters (U+061C, U+200E/F, U+202A–U+202E,
//     U+2066–U+2069), which can make text display in another order than it
//     is read, as \u202e;
//   - bytes that are not valid UTF-8 as \xff;
//   - a backslash as \\, so an escape in the output always means one of the above.
//
// If s is longer than n bytes (n > 0), it is cut at a character boundary and
// the cut is stated: "abc… (5242880 bytes)".
func SafeN(s string, n int) string {
	cut := n > 0 && len(s) > n
	src := s
	if cut {
		src = s[:n]
		for len(src) > 0 && !utf8.FullRuneInString(src[lastStart(src):]) {
			src = src[:lastStart(src)] // do not split the last character
		}
	}
	var b strings.Builder
	b.Grow(len(src))
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRuneInString(src[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, src[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r) || isBidi(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(src[i : i+size])
		}
		i += size
	}
	if cut {
		fmt.Fprintf(&b, "… (%d bytes)", len(s))
	}
	return b.String()
}

// lastStart is the index of the first byte of s's last (possibly partial)
// UTF-8 sequence.
func lastStart(s string) int {
	i := len(s) - 1
	for i > 0 && i > len(s)-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}

// isBidi reports whether r is a bidirectional formatting character: marks,
// embeddings, overrides and isolates (Unicode TR9, "explicit formatting").
func isBidi(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
