package tokenizer

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	tiktoken "github.com/tiktoken-go/tokenizer"

	"github.com/logitlens/logitlens/weights/builtin/model"
	"github.com/logitlens/logitlens/weights/testmodel"
)

// update rewrites testdata/corpus.golden with the reference
// tokenizer (its own flag name: other tests of the package may own -update).
var update = flag.Bool("tokupdate", false, "rewrite testdata/corpus.golden from the reference gpt2_bpe.py")

const goldenPath = "testdata/corpus.golden"

// repoRoot is the directory above the package that holds go.mod.
func repoRoot(t testing.TB) string {
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

var (
	gpt2Mu  sync.Mutex
	gpt2Tok *Tokenizer
)

// gpt2Dir writes GPT-2's own vocab.json and merges.txt (the built-in
// model's copy: OpenAI's encoder.json and vocab.bpe byte for byte) into a
// temporary directory.
func gpt2Dir(t testing.TB) string {
	t.Helper()
	vocab, merges, err := model.GPT2Vocabulary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"vocab.json": vocab, "merges.txt": merges} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// gpt2 loads GPT-2's own vocabulary once per test binary.
func gpt2(t testing.TB) *Tokenizer {
	t.Helper()
	gpt2Mu.Lock()
	defer gpt2Mu.Unlock()
	if gpt2Tok != nil {
		return gpt2Tok
	}
	tok, err := Load(gpt2Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	gpt2Tok = tok
	return tok
}

// checkSpans fails unless the spans tile text in order and each token's
// bytes are the bytes of its span.
func checkSpans(t testing.TB, tok *Tokenizer, text string, toks []Token) {
	t.Helper()
	pos := 0
	for i, tk := range toks {
		if tk.Start != pos || tk.End <= tk.Start || tk.End > len(text) {
			t.Fatalf("%q: token %d %+v: span does not continue at byte %d", text, i, tk, pos)
		}
		if got := tok.TokenBytes(tk.ID); string(got) != text[tk.Start:tk.End] {
			t.Fatalf("%q: token %d %+v: bytes %q != span %q", text, i, tk, got, text[tk.Start:tk.End])
		}
		pos = tk.End
	}
	if pos != len(text) {
		t.Fatalf("%q: spans end at %d, text has %d bytes", text, pos, len(text))
	}
}

func TestTokenizerSelfTest(t *testing.T) {
	tok := gpt2(t)
	for _, c := range []struct {
		text string
		want []int
	}{
		{"The Eiffel Tower is in the city of", []int{464, 412, 733, 417, 8765, 318, 287, 262, 1748, 286}},
		{"Hello world", []int{15496, 995}},
		{"<|endoftext|>", []int{50256}},
		{"", []int{}},
	} {
		got := tok.EncodeIDs(c.text)
		if !slices.Equal(got, c.want) {
			t.Errorf("EncodeIDs(%q) = %v, want %v", c.text, got, c.want)
		}
		if rt := tok.Decode(got); rt != c.text {
			t.Errorf("Decode(EncodeIDs(%q)) = %q", c.text, rt)
		}
	}
	if n := tok.VocabSize(); n != 50257 {
		t.Errorf("VocabSize() = %d, want 50257", n)
	}
	if id, ok := tok.EOT(); id != 50256 || !ok {
		t.Errorf("EOT() = %d, %v; want 50256, true", id, ok)
	}
	if b := tok.TokenBytes(6342); string(b) != " Paris" {
		t.Errorf("TokenBytes(6342) = %q, want \" Paris\"", b)
	}
	for _, id := range []int{-1, 50257, 1 << 40} {
		if b := tok.TokenBytes(id); b != nil {
			t.Errorf("TokenBytes(%d) = %q, want nil", id, b)
		}
	}
	if got := tok.Decode([]int{15496, -5, 99999, 995}); got != "Hello world" {
		t.Errorf("Decode with out-of-range ids = %q, want \"Hello world\"", got)
	}
}

// TestTokenizerFormats: tokenizer.json with "a b" merges, with ["a","b"]
// merges, and vocab.json + merges.txt give the same ids as GPT-2's files.
func TestTokenizerFormats(t *testing.T) {
	ref := gpt2(t)
	units := corpusUnits(t)
	for _, name := range []string{"tiny-f32", "tiny-pairs", "tiny-vocabmerges"} {
		t.Run(name, func(t *testing.T) {
			dir := testmodel.Dir(t, name)
			tok, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if tok.VocabSize() != ref.VocabSize() {
				t.Fatalf("VocabSize() = %d, want %d", tok.VocabSize(), ref.VocabSize())
			}
			if id, ok := tok.EOT(); id != 50256 || !ok {
				t.Errorf("EOT() = %d, %v", id, ok)
			}
			for _, u := range units {
				if got, want := tok.EncodeIDs(u), ref.EncodeIDs(u); !slices.Equal(got, want) {
					t.Fatalf("%q: %v, GPT-2 files give %v", u, got, want)
				}
			}
		})
	}
}

// TestTokenizerGolden compares with the reference gpt2_bpe.py, through ids
// it wrote to corpus.golden, on every unit of the corpus.
func TestTokenizerGolden(t *testing.T) {
	tok := gpt2(t)
	units := corpusUnits(t)
	input := unitsJSONL(units)
	sum := sha256.Sum256(input)
	if *update {
		writeGolden(t, input)
	}
	golden := readGolden(t, hex.EncodeToString(sum[:]))
	if len(golden) != len(units) {
		t.Fatalf("%s has %d units, the corpus %d", goldenPath, len(golden), len(units))
	}
	bad := 0
	for i, u := range units {
		if got := tok.EncodeIDs(u); !slices.Equal(got, golden[i]) {
			if bad++; bad <= 5 {
				t.Errorf("unit %d %q:\n got %v\nwant %v", i, u, got, golden[i])
			}
		}
		checkSpans(t, tok, u, tok.Encode(u))
	}
	t.Logf("%d units (%d bytes) compared with gpt2_bpe.py: %d mismatches", len(units), len(input), bad)
}

// TestTokenizerTiktoken compares live with tiktoken-go's r50k_base (GPT-2's
// vocabulary), splitting around the literal <|endoftext|>, which tiktoken
// reads as text.
func TestTokenizerTiktoken(t *testing.T) {
	tok := gpt2(t)
	codec, err := tiktoken.Get(tiktoken.R50kBase)
	if err != nil {
		t.Fatal(err)
	}
	units := append(corpusUnits(t), randomStrings(2, 3000)...)
	bad, skipped := 0, 0
	for i, u := range units {
		if !tiktokenCan(u) {
			skipped++
			continue
		}
		want := tiktokenIDs(t, codec, u)
		if got := tok.EncodeIDs(u); !slices.Equal(got, want) {
			if bad++; bad <= 5 {
				t.Errorf("unit %d %q:\n got %v\nwant %v", i, u, got, want)
			}
		}
	}
	t.Logf("%d units compared with tiktoken-go r50k_base: %d mismatches (%d skipped: they hold DEL)", len(units)-skipped, bad, skipped)
}

// tiktokenCan reports whether tiktoken-go v0.10.0 can encode s: its
// regexp2 split never matches U+007F (DEL), so it drops that byte
// ("a\x7fb" gives [64 65]); the reference gives [64 221 65].
func tiktokenCan(s string) bool { return !strings.Contains(s, "\x7f") }

// tiktokenIDs encodes text with tiktoken, 50256 for each literal
// <|endoftext|>.
func tiktokenIDs(t testing.TB, codec tiktoken.Codec, text string) []int {
	ids := []int{}
	for k, part := range strings.Split(text, eotText) {
		if k > 0 {
			ids = append(ids, 50256)
		}
		got, _, err := codec.Encode(part)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range got {
			ids = append(ids, int(id))
		}
	}
	return ids
}

func TestTokenizerRoundTrip(t *testing.T) {
	tok := gpt2(t)
	units := append(corpusUnits(t), randomStrings(3, 1000)...)
	// Invalid UTF-8 keeps its bytes too.
	units = append(units, "\xff", "a\xe2\x82", "\xe2\x82\xac\xe2", " \x80\x80 x", "<|endoftext|>\xc0")
	for _, u := range units {
		toks := tok.Encode(u)
		checkSpans(t, tok, u, toks)
		if got := tok.Decode(tok.EncodeIDs(u)); got != u {
			t.Fatalf("Decode(EncodeIDs(%q)) = %q", u, got)
		}
	}
}

// TestBPEMergeLong: the heap merge equals the plain loop on every piece of
// the corpus and on random byte strings (small alphabets make many merges).
func TestBPEMergeLong(t *testing.T) {
	tok := gpt2(t)
	var pieces []string
	for _, u := range corpusUnits(t) {
		for i := 0; i < len(u); {
			j := nextPiece(u, i)
			pieces = append(pieces, u[i:j])
			i = j
		}
	}
	r := rand.New(rand.NewPCG(4, 4))
	for _, alphabet := range []string{"ab", "e ", "the ", "aaab", "0123456789", " \n", "abcdefghijklmnopqrstuvwxyz", "\xe4\xb8\x80\xe4\xba\x8c"} {
		for range 300 {
			b := make([]byte, 2+r.IntN(120))
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			pieces = append(pieces, string(b))
		}
	}
	for _, p := range pieces {
		if len(p) < 2 {
			continue
		}
		ids := make([]int32, len(p))
		for i := range len(p) {
			ids[i] = tok.byteID[p[i]]
		}
		short := tok.bpeMergeShort(slices.Clone(ids))
		long := tok.bpeMergeLong(slices.Clone(ids))
		if !slices.Equal(short, long) {
			t.Fatalf("%q: heap merge %v, plain loop %v", p, long, short)
		}
	}
	t.Logf("%d pieces", len(pieces))
}

// TestTokenizerLongInput: a long piece (one word, one whitespace run) is
// encoded in O(n log n), well within the test time, and not cached.
func TestTokenizerLongInput(t *testing.T) {
	tok := gpt2(t)
	for _, s := range []string{
		strings.Repeat("a", 60000),
		strings.Repeat(" ", 60000) + "x",
		strings.Repeat("ab1 ", 15000),
		strings.Repeat("👩‍👩‍👧‍👧", 5000),
	} {
		toks := tok.Encode(s)
		checkSpans(t, tok, s, toks)
	}
}

func TestTokenizerAddedTokens(t *testing.T) {
	tok := gpt2(t)
	for _, c := range []struct {
		text string
		want []int
	}{
		// Split out first: the text either side is encoded alone, so the
		// space before it does not join it.
		{"a <|endoftext|> b", []int{64, 220, 50256, 275}},
		{"<|endoftext|><|endoftext|>", []int{50256, 50256}},
		{"x<|endoftext|", nil},
		{"<|ENDOFTEXT|>", nil},
	} {
		got := tok.EncodeIDs(c.text)
		if c.want == nil {
			if slices.Contains(got, 50256) {
				t.Errorf("EncodeIDs(%q) = %v: has 50256", c.text, got)
			}
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("EncodeIDs(%q) = %v, want %v", c.text, got, c.want)
		}
	}
}

// writeJSON writes a tokenizer.json of the 256 byte tokens plus extra
// tokens, merges and added tokens, into a new directory.
func writeJSON(t *testing.T, extra []string, merges any, added string) string {
	vocab := map[string]int{}
	for b := range 256 {
		vocab[string(bpeByteRune[b])] = b
	}
	for _, e := range extra {
		vocab[e] = len(vocab)
	}
	m, _ := json.Marshal(map[string]any{"type": "BPE", "vocab": vocab, "merges": merges})
	s := `{"added_tokens":` + added + `,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false},"model":` + string(m) + `}`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTokenizerSmallVocab(t *testing.T) {
	extra := []string{"ab", "abc", "Ġab", "ĠĠ"}
	for _, merges := range []any{
		[]string{"a b", "ab c", "Ġ ab", "Ġ Ġ"},
		[][]string{{"a", "b"}, {"ab", "c"}, {"Ġ", "ab"}, {"Ġ", "Ġ"}},
	} {
		dir := writeJSON(t, extra, merges, `[{"id":300,"content":"<|endoftext|>"},{"id":301,"content":"<x>"}]`)
		tok, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if tok.VocabSize() != 302 {
			t.Errorf("VocabSize() = %d, want 302", tok.VocabSize())
		}
		if id, ok := tok.EOT(); id != 300 || !ok {
			t.Errorf("EOT() = %d, %v", id, ok)
		}
		// "abc ab   ab<x>": abc | Ġab | ĠĠ (two of three spaces) | Ġab | <x>
		got := tok.Encode("abc ab   ab<x>")
		want := []Token{{257, 0, 3}, {258, 3, 6}, {259, 6, 8}, {258, 8, 11}, {301, 11, 14}}
		if !slices.Equal(got, want) {
			t.Errorf("Encode = %v, want %v", got, want)
		}
	}
}

func TestTokenizerLoadErrors(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), "tokenizer.json, vocab.json, merges.txt") {
			t.Fatalf("err = %v, want the three missing files named", err)
		}
		os.WriteFile(filepath.Join(dir, "vocab.json"), []byte("{}"), 0o644)
		_, err = Load(dir)
		if err == nil || !strings.Contains(err.Error(), "missing tokenizer.json, merges.txt") {
			t.Fatalf("err = %v, want tokenizer.json and merges.txt named", err)
		}
	})
	for _, c := range []struct {
		name, json, want string
	}{
		{"syntax", `{"model":`, "unexpected end"},
		{"type", `{"model":{"type":"WordPiece","vocab":{"a":0},"merges":[]}}`, "only BPE"},
		{"novocab", `{"model":{"type":"BPE","merges":[]}}`, "model.vocab"},
		{"nomerges", `{"model":{"type":"BPE","vocab":{"a":0}}}`, "model.merges is missing"},
		{"merges", `{"model":{"type":"BPE","vocab":{"a":0},"merges":[1,2]}}`, "model.merges"},
		{"mergestr", `{"model":{"type":"BPE","vocab":{"a":0},"merges":["a b c"]}}`, "two tokens"},
		{"pair", `{"model":{"type":"BPE","vocab":{"a":0},"merges":[["a"]]}}`, "two non-empty"},
		{"bytes", `{"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`, "no token for byte 0x00"},
		{"notbyte", `{"model":{"type":"BPE","vocab":{"☃":0},"merges":[]}}`, "not byte-level"},
		{"id", `{"model":{"type":"BPE","vocab":{"a":-1},"merges":[]}}`, "out of range"},
		{"bigid", `{"model":{"type":"BPE","vocab":{"a":100000000},"merges":[]}}`, "out of range"},
		{"prefix", `{"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":true},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`, "add_prefix_space"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(c.json), 0o644)
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "tokenizer: ") {
				t.Fatalf("err = %v, want one naming %q", err, c.want)
			}
		})
	}
	t.Run("mergevocab", func(t *testing.T) {
		dir := writeJSON(t, nil, []string{"a b"}, `[]`)
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "merged token is not in the vocab") {
			t.Fatalf("err = %v", err)
		}
		dir = writeJSON(t, nil, []string{"a zz"}, `[]`)
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), `"zz" is not in the vocab`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("mergestxt", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "vocab.json"), []byte(`{"a":0}`), 0o644)
		os.WriteFile(filepath.Join(dir, "merges.txt"), []byte("#version: 0.2\na b\nbad\n"), 0o644)
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), `line 3 "bad"`) {
			t.Fatalf("err = %v", err)
		}
	})
}

// corpusUnits is the test corpus: corpus.txt cut into units of one to six
// lines (some keeping the final newline, some with \r\n), then
// generate's synthetic lines.
func corpusUnits(t testing.TB) []string {
	data, err := os.ReadFile("testdata/corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var units []string
	for i, k := 0, 0; i < len(lines); k++ {
		n := min(k%6+1, len(lines)-i)
		u := strings.Join(lines[i:i+n], "\n")
		switch k % 5 {
		case 1:
			u += "\n"
		case 3:
			u = strings.ReplaceAll(u, "\n", "\r\n")
		}
		units = append(units, u)
		i += n
	}
	return append(units, generate(1, 3000)...)
}

// unitsJSONL is the golden driver's input: one JSON string per line.
func unitsJSONL(units []string) []byte {
	var b bytes.Buffer
	for _, u := range units {
		j, _ := json.Marshal(u)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Fragments of synthetic text.
var (
	words = strings.Fields(`the of and to in is was he for it with as his on be at by I that
		had not are but from or have an they which one you were her all she there would their we him
		been has when who will more no if out so said what up its about into than them can only other
		new some could time these two may then do first any my now such like our over man me even most
		Paris Eiffel Tower London GPT token tokenizer HTTP JSON URL iPhone McDonald naïve café Zürich
		don won can isn aren couldn shouldn wouldn O'Brien rock'n'roll ma'am y'all`)
	contractions = []string{"s", "t", "re", "ve", "m", "ll", "d", "S", "T", "RE", "Re", "rE", "VE", "M", "LL", "Ll", "D", "x", ""}
	spaces       = []string{" ", " ", " ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", " \n", "\n ", "\u00a0", "\u3000", "\v", "\f", "\u2028", "\u0085", "\u2009", "\u200b"}
	classPunct   = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~…—–·«»¡¿€£¥©®°±×÷"
	emoji        = []string{"😀", "👍", "👍🏽", "👍🏿", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🏴‍☠️", "🇫🇷", "🇯🇵", "1️⃣", "#️⃣", "❤️", "❤", "✌🏿",
		"🧑🏻‍🤝‍🧑🏿", "👁️‍🗨️", "🐈‍⬛", "🫠", "🦀", "🎉", "☃", "⭐", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🤷‍♀️", "🙋🏼‍♂️"}
	scripts = [][2]rune{ // letter-ish ranges
		{0xC0, 0xFF}, {0x100, 0x17F}, {0x391, 0x3C9}, {0x410, 0x44F}, {0x5D0, 0x5EA}, {0x621, 0x64A},
		{0x900, 0x97F}, {0xE01, 0xE5B}, {0xAC00, 0xD7A3}, {0x4E00, 0x9FFF}, {0x3041, 0x3096}, {0x30A1, 0x30FA},
		{0xFF01, 0xFF5E}, {0x300, 0x36F}, {0x2500, 0x257F}, {0x2200, 0x22FF}, {0x660, 0x669}, {0x966, 0x96F},
		{0x2070, 0x2079}, {0x2150, 0x2188}, {0x1E00, 0x1EFF}, {0x10A0, 0x10FF}, {0x0530, 0x058F}, {0x1F300, 0x1FAFF},
		{0x1D400, 0x1D7FF}, {0x20000, 0x2A6DF}, {0x80, 0x9F},
	}
)

// generate returns n synthetic lines built from seed: words, contractions
// in every case, digits, punctuation runs, whitespace runs (tabs, newlines,
// \r\n, Unicode spaces), letters of many scripts, combining marks, emoji with
// ZWJ, skin tones and flags, random code points, and <|endoftext|> with near
// misses. Valid UTF-8 only: the reference reads text, not bytes.
func generate(seed uint64, n int) []string {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	lines := make([]string, n)
	for i := range lines {
		var sb strings.Builder
		frags := 1 + r.IntN(16)
		if r.IntN(100) == 0 {
			frags = 100 + r.IntN(100)
		}
		for range frags {
			fragment(r, &sb)
			switch p := r.IntN(10); {
			case p < 5:
				sb.WriteByte(' ')
			case p < 6:
				sb.WriteString(spaces[r.IntN(len(spaces))])
			}
		}
		lines[i] = sb.String()
	}
	return lines
}

// fragment appends one random fragment.
func fragment(r *rand.Rand, sb *strings.Builder) {
	switch k := r.IntN(100); {
	case k < 35:
		w := words[r.IntN(len(words))]
		switch r.IntN(6) {
		case 0:
			w = strings.ToUpper(w)
		case 1:
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		sb.WriteString(w)
	case k < 45:
		sb.WriteString("'" + contractions[r.IntN(len(contractions))])
	case k < 52:
		for range 1 + r.IntN(12) {
			sb.WriteByte(byte('0' + r.IntN(10)))
			if r.IntN(8) == 0 {
				sb.WriteByte(".,"[r.IntN(2)])
			}
		}
	case k < 60:
		p := []rune(classPunct)
		for range 1 + r.IntN(5) {
			sb.WriteRune(p[r.IntN(len(p))])
		}
	case k < 68:
		for range 1 + r.IntN(4) {
			sb.WriteString(spaces[r.IntN(len(spaces))])
		}
	case k < 84:
		s := scripts[r.IntN(len(scripts))]
		for range 1 + r.IntN(8) {
			sb.WriteRune(s[0] + rune(r.IntN(int(s[1]-s[0]+1))))
		}
	case k < 92:
		for range 1 + r.IntN(3) {
			sb.WriteString(emoji[r.IntN(len(emoji))])
		}
	case k < 96:
		for range 1 + r.IntN(4) {
			c := rune(r.IntN(0x30000))
			if !utf8.ValidRune(c) {
				c = 'x'
			}
			sb.WriteRune(c)
		}
	case k < 98:
		sb.WriteString(eotText)
	default:
		sb.WriteString([]string{"<|endoftext|", "<|endoftext>", "|endoftext|>", "<|ENDOFTEXT|>", "<<|endoftext|>>", "<|endof text|>"}[r.IntN(6)])
	}
}

// randomStrings returns n strings of random valid UTF-8 for the live
// comparisons: random bytes made valid, random runes, and mixtures of the
// generator's fragments without separators.
func randomStrings(seed uint64, n int) []string {
	r := rand.New(rand.NewPCG(seed, 77))
	out := make([]string, n)
	for i := range out {
		switch i % 3 {
		case 0:
			b := make([]byte, r.IntN(64))
			for j := range b {
				b[j] = byte(r.IntN(256))
				if r.IntN(2) == 0 {
					alpha := " \t\n\r'aeS1.!\xc3\xa9"
					b[j] = alpha[r.IntN(len(alpha))]
				}
			}
			out[i] = strings.ToValidUTF8(string(b), "")
		case 1:
			var sb strings.Builder
			for range r.IntN(32) {
				c := rune(r.IntN(0x11000))
				if r.IntN(3) == 0 {
					c = rune(r.IntN(0x80))
				}
				if utf8.ValidRune(c) {
					sb.WriteRune(c)
				}
			}
			out[i] = sb.String()
		default:
			var sb strings.Builder
			for range 1 + r.IntN(12) {
				fragment(r, &sb)
			}
			out[i] = sb.String()
		}
	}
	return out
}

// writeGolden runs the golden driver over input and writes corpus.golden.
func writeGolden(t *testing.T, input []byte) {
	root := repoRoot(t)
	ref := os.Getenv("LOGITLENS_REFERENCE")
	if ref == "" {
		ref = filepath.Join(root, "..", "shared", "reference")
	}
	cmd := exec.Command("/usr/bin/python3", "testdata/golden.py", ref)
	cmd.Env = append(os.Environ(), "GPT2_BPE_DIR="+gpt2Dir(t))
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("golden.py: %v\n%s", err, stderr.Bytes())
	}
	if err := os.WriteFile(goldenPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readGolden reads corpus.golden, failing with a regeneration hint when
// it was made from another input.
func readGolden(t *testing.T, inputSHA string) [][]int {
	f, err := os.Open(goldenPath)
	if err != nil {
		t.Fatalf("%v (regenerate: go test ./weights/tokenizer -run TestTokenizerGolden -tokupdate)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	var units [][]int
	header := true
	for sc.Scan() {
		line := sc.Text()
		if header && strings.HasPrefix(line, "#") {
			if sha, ok := strings.CutPrefix(line, "# input-sha256: "); ok && sha != inputSHA {
				t.Fatalf("%s was made from another corpus (input sha256 %s, now %s): regenerate with go test ./weights/tokenizer -run TestTokenizerGolden -tokupdate",
					goldenPath, sha, inputSHA)
			}
			continue
		}
		header = false
		ids := []int{}
		for _, f := range strings.Fields(line) {
			id, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s: %v", goldenPath, err)
			}
			ids = append(ids, id)
		}
		units = append(units, ids)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return units
}

// FuzzTokenizer: spans tile the input, the round trip holds, nothing
// panics, and ids equal tiktoken-go's r50k_base on valid UTF-8 without the
// special literal.
func FuzzTokenizer(f *testing.F) {
	for _, s := range []string{"", "Hello world", "It's 12:30 — you'll see!", "a  \n\n\tb", " <|endoftext|> x",
		"👨‍👩‍👧‍👦 日本語", "\xff\xe2\x82", "'s's 'S  '", "\u00a0 \u3000x"} {
		f.Add(s)
	}
	tok := gpt2(f)
	codec, err := tiktoken.Get(tiktoken.R50kBase)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks := tok.Encode(s)
		checkSpans(t, tok, s, toks)
		ids := tok.EncodeIDs(s)
		if got := tok.Decode(ids); got != s {
			t.Fatalf("Decode(EncodeIDs(%q)) = %q", s, got)
		}
		if utf8.ValidString(s) && !strings.Contains(s, eotText) && tiktokenCan(s) {
			if want := tiktokenIDs(t, codec, s); !slices.Equal(ids, want) {
				t.Fatalf("%q: %v, tiktoken r50k %v", s, ids, want)
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	tok := gpt2(b)
	text := strings.Join(corpusUnits(b), "\n")
	ntok := len(tok.Encode(text))
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		tok.Encode(text)
	}
	b.ReportMetric(float64(ntok)*float64(b.N)/b.Elapsed().Seconds(), "tok/s")
}

// BenchmarkEncodeCold empties the piece cache before every run.
func BenchmarkEncodeCold(b *testing.B) {
	tok := gpt2(b)
	text := strings.Join(corpusUnits(b), "\n")
	ntok := len(tok.Encode(text))
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		tok.mu.Lock()
		clear(tok.cache)
		tok.mu.Unlock()
		tok.Encode(text)
	}
	b.ReportMetric(float64(ntok)*float64(b.N)/b.Elapsed().Seconds(), "tok/s")
}

// TestTokenizerConcurrent: Encode from several goroutines (the piece cache
// is shared) gives the same ids as one goroutine; run it with -race.
func TestTokenizerConcurrent(t *testing.T) {
	tok := gpt2(t)
	units := generate(5, 200)
	want := make([][]int, len(units))
	for i, u := range units {
		want[i] = tok.EncodeIDs(u)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range units {
				k := (i + 50*g) % len(units)
				if got := tok.EncodeIDs(units[k]); !slices.Equal(got, want[k]) {
					t.Errorf("goroutine %d, unit %d: %v, want %v", g, k, got, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
}
