package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/weights/builtin/model"
)

// gpt2Files returns GPT-2's vocab.json and its merge rules (without the
// #version line).
func gpt2Files(t *testing.T) (vocab []byte, merges []string) {
	t.Helper()
	vocab, m, err := model.GPT2Vocabulary()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(m), "\n") {
		if line != "" && !strings.HasPrefix(line, "#version") {
			merges = append(merges, line)
		}
	}
	return vocab, merges
}

// TestTokenizerDegenerateMerges: GPT-2's vocabulary with no merges, a
// truncated or a scrambled merge table is refused with one line saying so,
// in both file layouts, rather than splitting "Hello world" into bytes.
func TestTokenizerDegenerateMerges(t *testing.T) {
	vocab, merges := gpt2Files(t)
	reversed := slices.Clone(merges)
	slices.Reverse(reversed)
	for _, tc := range []struct {
		name   string
		merges []string
		want   string
	}{
		{"none", nil, "merges: no merge rules for a vocabulary of 50000 multi-byte tokens"},
		{"truncated", merges[:100], "merges: 100 rules make only 100 of the vocabulary's 50000 multi-byte tokens"},
		{"reversed", reversed, "rules make tokens that BPE does not make from their own bytes"},
	} {
		t.Run(tc.name+"/merges.txt", func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "vocab.json"), vocab)
			writeFile(t, filepath.Join(dir, "merges.txt"), []byte("#version: 0.2\n"+strings.Join(tc.merges, "\n")))
			checkRefused(t, dir, tc.want)
		})
		t.Run(tc.name+"/tokenizer.json", func(t *testing.T) {
			var v map[string]int
			if err := json.Unmarshal(vocab, &v); err != nil {
				t.Fatal(err)
			}
			m := tc.merges
			if m == nil {
				m = []string{}
			}
			model, _ := json.Marshal(map[string]any{"type": "BPE", "vocab": v, "merges": m})
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "tokenizer.json"), []byte(`{"added_tokens":[{"id":50256,"content":"<|endoftext|>"}],"model":`+string(model)+`}`))
			checkRefused(t, dir, tc.want)
		})
	}
	// The whole table loads, and "Hello world" is two tokens.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "vocab.json"), vocab)
	writeFile(t, filepath.Join(dir, "merges.txt"), []byte(strings.Join(merges, "\n")))
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.EncodeIDs("Hello world"); !slices.Equal(got, []int{15496, 995}) {
		t.Errorf("Hello world = %v", got)
	}
}

func checkRefused(t *testing.T, dir, want string) {
	t.Helper()
	tok, err := Load(dir)
	if err == nil {
		t.Fatalf("loaded; Hello world = %v", tok.EncodeIDs("Hello world"))
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "tokenizer: ") || !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
		t.Errorf("err = %v\nwant one line containing %q", err, want)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// FuzzTokenizerJSON: any tokenizer.json either loads into a tokenizer whose
// spans tile the text and round-trip, or fails with one short line; never
// a panic.
func FuzzTokenizerJSON(f *testing.F) {
	vocab := map[string]int{}
	for b := range 256 {
		vocab[string(bpeByteRune[b])] = b
	}
	for i, tok := range []string{"He", "ll", "llo", "Hello", "Ġw", "or", "Ġwor", "ld", "Ġworld"} {
		vocab[tok] = 256 + i
	}
	merges := []string{"H e", "l l", "ll o", "He llo", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"}
	model, _ := json.Marshal(map[string]any{"type": "BPE", "vocab": vocab, "merges": merges})
	good := `{"added_tokens":[{"id":265,"content":"<|endoftext|>"}],"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false},"model":` + string(model) + `}`
	f.Add([]byte(good))
	f.Add([]byte(strings.Replace(good, `"merges":[`, `"merges":[["a","b"],`, 1)))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":16777215},"merges":[]}}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{},"merges":[]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseJSON(data)
		if err != nil {
			if msg := err.Error(); len(msg) > 2000 || strings.ContainsAny(msg, "\n\x1b") {
				t.Fatalf("error of %d bytes: %.200q", len(msg), msg)
			}
			return
		}
		for _, s := range []string{"Hello world", " <|endoftext|>Hello\xff  world\n", ""} {
			checkSpans(t, tok, s, tok.Encode(s))
			if got := tok.Decode(tok.EncodeIDs(s)); got != s {
				t.Fatalf("round trip of %q: %q", s, got)
			}
		}
	})
}
