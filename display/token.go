package display

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Token renders the bytes of a token faithfully for display, one visible
// glyph or escape per byte or character:
//
//   - every space (U+0020, not only a leading one) is "␣", so " Paris" is
//     "␣Paris" and a run of spaces stays countable;
//   - "\n" is "↵" and "\t" is "⇥";
//   - each byte of any other control character (C0, DEL, C1) and of a
//     bidirectional formatting character (U+202E and the like, which would
//     reorder the text around it) is "<0xNN>";
//   - each byte that is not part of a valid UTF-8 sequence is "<0xNN>", so a
//     token holding part of a character shows as, say, "<0xE2><0x80>".
//
// Everything else, including other invisible characters such as U+200D, is
// copied unchanged.
func Token(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == ' ':
			sb.WriteString("␣")
		case r == '\n':
			sb.WriteString("↵")
		case r == '\t':
			sb.WriteString("⇥")
		case r == utf8.RuneError && n == 1, unicode.IsControl(r), isBidi(r):
			for _, c := range b[:n] {
				fmt.Fprintf(&sb, "<0x%02X>", c)
			}
		default:
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}
