package display

import "testing"

func TestToken(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{" Paris", "␣Paris"},
		{"Paris", "Paris"},
		{"\n", "↵"},
		{"\n\n", "↵↵"},
		{"\t", "⇥"},
		{"   ", "␣␣␣"},
		{"a b", "a␣b"},
		{"\r\n", "<0x0D>↵"},
		{"\x00\x1b\x7f", "<0x00><0x1B><0x7F>"},
		{"\u0085", "<0xC2><0x85>"},
		{"\xe2", "<0xE2>"},
		{"\xe2\x80", "<0xE2><0x80>"},
		{"\x80 x", "<0x80>␣x"},
		{"\xff\xfe", "<0xFF><0xFE>"},
		{"é", "é"},
		{" 日本", "␣日本"},
		{"👩‍💻", "👩‍💻"},
		{"\u00a0", "\u00a0"},
		{"a\u202eb", "a<0xE2><0x80><0xAE>b"},
		{"\u2066", "<0xE2><0x81><0xA6>"},
		{"", ""},
	} {
		if got := Token([]byte(c.in)); got != c.want {
			t.Errorf("Token(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestProb(t *testing.T) {
	for _, c := range []struct {
		p    float64
		want string
	}{
		{0.421, "42.1%"}, {0.1, "10.0%"}, {0.032, "3.20%"}, {0.001, "0.10%"}, {4e-5, "4e-05"}, {0, "0%"}, {1, "100.0%"},
	} {
		if got := Prob(c.p); got != c.want {
			t.Errorf("Prob(%g) = %q, want %q", c.p, got, c.want)
		}
	}
}

func TestBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536 << 20, "1.5 GiB"}, {3 << 40, "3.0 TiB"}, {5 << 50, "5120.0 TiB"},
	} {
		if got := Bytes(c.n); got != c.want {
			t.Errorf("Bytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
