package display

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSafe(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"gpt2", "gpt2"},
		{"models--org--name", "models--org--name"},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"\x1b[31mred", `\x1b[31mred`},
		{"a\r\nb\tc", `a\r\nb\tc`},
		{"\x7f\u0085", `\x7f\u0085`},
		{"abc\u202Egpj.exe", `abc\u202egpj.exe`},
		{"\u2066x\u2069\u200e\u200f\u061c", `\u2066x\u2069\u200e\u200f\u061c`},
		{"\xff\xfe ok", `\xff\xfe ok`},
		{`C:\path`, `C:\\path`},
		{"Café 日本語 👩‍💻", "Café 日本語 👩‍💻"},
		{"", ""},
	} {
		if got := Safe(c.in); got != c.want {
			t.Errorf("Safe(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSafeCuts(t *testing.T) {
	long := strings.Repeat("x", 5<<20)
	got := Safe(long)
	if want := strings.Repeat("x", MaxSafe) + "… (5242880 bytes)"; got != want {
		t.Errorf("Safe(5 MiB) has %d bytes, want %d", len(got), len(want))
	}
	// A cut never splits a character: 300 bytes of 3-byte runes.
	s := strings.Repeat("語", 100)
	got = SafeN(s, 100)
	if !utf8.ValidString(got) || !strings.HasPrefix(got, strings.Repeat("語", 33)+"…") || !strings.HasSuffix(got, "(300 bytes)") {
		t.Errorf("SafeN(300 bytes of 語, 100) = %q", got)
	}
	if got := SafeN(s, 0); got != s {
		t.Errorf("SafeN(s, 0) cut the string")
	}
}

// FuzzSafe checks the promises: valid UTF-8 out, no byte a terminal acts on
// (C0, DEL, C1, bidi), and bounded length.
func FuzzSafe(f *testing.F) {
	for _, s := range []string{"", "\x1b[2J", "a\u202eb", "\xe2\x80", strings.Repeat("é", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Safe(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Safe(%q) = %q: invalid UTF-8", s, got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || isBidi(r) {
				t.Fatalf("Safe(%q) = %q keeps %U", s, got, r)
			}
		}
		if len(got) > 4*MaxSafe+len("… (18446744073709551615 bytes)") {
			t.Fatalf("Safe of %d bytes gave %d bytes", len(s), len(got))
		}
	})
}
