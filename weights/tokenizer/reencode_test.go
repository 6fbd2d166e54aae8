package tokenizer

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/logitlens/logitlens/weights/builtin"
)

// builtinGPT2 loads GPT-2's vocabulary as the built-in model embeds it (no
// fixture needed).
func builtinGPT2(t testing.TB) *Tokenizer {
	t.Helper()
	vocab, merges, err := builtin.GPT2Vocabulary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"vocab.json": vocab, "merges.txt": merges} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestReencodeEqualsEncode edits generated texts at random places (typing
// at the end, inserting, deleting, replacing, pasting across an
// <|endoftext|>, bytes that are not UTF-8) and checks Reencode against
// Encode of the edited text.
func TestReencodeEqualsEncode(t *testing.T) {
	tok := builtinGPT2(t)
	r := rand.New(rand.NewPCG(5, 6))
	texts := generate(11, 300)
	pieces := []string{" ", "a", "'s", "  ", "\n", "\t", "<|endoftext|>", "<|endof", "text|>", "é", "\u0301",
		"日本", "👍🏽", "\xe2\x80", "\xff", " Paris", "123", "!!", "\r\n", "'"}
	reused := 0
	for i, text := range texts {
		prev := tok.Encode(text)
		for range 8 {
			a := r.IntN(len(text) + 1)
			b := min(len(text), a+r.IntN(4))
			ins := pieces[r.IntN(len(pieces))]
			switch r.IntN(4) {
			case 0: // type at the end
				a, b = len(text), len(text)
			case 1: // delete only
				ins = ""
			}
			next := text[:a] + ins + text[b:]
			got := tok.Reencode(text, prev, next)
			want := tok.Encode(next)
			if !slices.Equal(got, want) {
				t.Fatalf("text %d: edit [%d:%d]→%q of %q:\nReencode %v\nEncode   %v", i, a, b, ins, text, got, want)
			}
			if a > 32 {
				reused++
			}
			text, prev = next, got
		}
	}
	if reused == 0 {
		t.Error("no edit far enough from the start to reuse anything")
	}
}

// A prev that is not Encode(prevText) falls back to a whole encode.
func TestReencodeForeignPrev(t *testing.T) {
	tok := builtinGPT2(t)
	text := "The quick brown fox jumps over the lazy dog and keeps running"
	bogus := []Token{{ID: 1, Start: 0, End: 3}, {ID: 2, Start: 5, End: 9}}
	if got, want := tok.Reencode(text, bogus, text+"!"), tok.Encode(text+"!"); !slices.Equal(got, want) {
		t.Errorf("Reencode with a foreign prev = %v, want %v", got, want)
	}
}

// BenchmarkReencodeTypeAtEnd64K types one character at the end of a 64 KiB
// prompt, against BenchmarkEncode64K, which tokenizes it whole.
func BenchmarkReencodeTypeAtEnd64K(b *testing.B) {
	tok := builtinGPT2(b)
	text := longText(64 << 10)
	prev := tok.Encode(text)
	b.ResetTimer()
	for range b.N {
		tok.Reencode(text, prev, text+"s")
	}
}

func BenchmarkEncode64K(b *testing.B) {
	tok := builtinGPT2(b)
	text := longText(64<<10) + "s"
	b.ResetTimer()
	for range b.N {
		tok.Encode(text)
	}
}

func longText(n int) string {
	var s []byte
	for _, line := range generate(3, 100000) {
		s = append(s, line...)
		s = append(s, '\n')
		if len(s) >= n {
			break
		}
	}
	return string(s[:n])
}
