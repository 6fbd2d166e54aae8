// Package tokenizer is GPT-2's byte-level BPE, written from the algorithm
// and read from tokenizer.json or vocab.json + merges.txt, in four steps:
//
//  1. Added tokens (<|endoftext|>) are split out of the text first, matched
//     exactly, leftmost and then longest, as Hugging Face tokenizers do.
//  2. Each remaining segment is cut into pieces by GPT-2's pre-tokenizer
//     regex, implemented by hand in nextPiece because Go's regexp has no
//     lookahead for \s+(?!\S).
//  3. Each piece starts as one symbol per UTF-8 byte and the adjacent pair
//     with the lowest merge rank (leftmost on ties) is merged until no pair
//     has a rank. Symbols are vocabulary ids throughout, so the merge table is
//     keyed by (left id, right id); the bytes_to_unicode alphabet of the
//     files is decoded once, at load time.
//  4. Every token's bytes are a contiguous run of the input's bytes, so
//     spans are running sums of token lengths.
//
// Where time goes: pre-tokenizing is a linear scan; BPE of a piece costs
// O(n²) map look-ups for short pieces (bpeMergeShort) and O(n log n) with a
// heap for long ones (bpeMergeLong), and a per-piece cache makes repeated
// words a single map look-up.
package tokenizer

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/weights"
)

// Token is one token of an encoded text: its id and the byte span
// text[Start:End] it came from.
type Token struct{ ID, Start, End int }

// Tokenizer is a GPT-2 byte-level BPE tokenizer. It is safe for concurrent
// use.
type Tokenizer struct {
	tokBytes [][]byte            // id -> raw bytes of the token; nil where no token has the id
	byteID   [256]int32          // byte -> id of its one-byte token
	merges   map[uint64]bpeMerge // bpeKey(left id, right id) -> rank and merged id
	added    []addedToken        // split out of the text before BPE
	eot      int                 // id of <|endoftext|>, or -1

	mu    sync.RWMutex
	cache map[string][]int32 // piece -> its ids
}

// bpeMerge is one merge rule: its rank (line order, 0 first) and the id of
// the merged token.
type bpeMerge struct{ rank, id int32 }

// addedToken is one added token such as <|endoftext|>.
type addedToken struct {
	content string
	id      int
}

const (
	eotText = "<|endoftext|>"
	// maxID bounds ids read from files so a corrupt vocabulary cannot
	// make us allocate gigabytes.
	maxID = 1 << 24
	// pieceCacheMax entries, each piece at most pieceCacheLen bytes, bound
	// the per-piece cache; it is emptied when full.
	pieceCacheMax = 1 << 16
	pieceCacheLen = 64
	// bpeShortMax is the longest piece merged by the quadratic scan.
	bpeShortMax = 48
)

// Load reads dir/tokenizer.json (a Hugging Face BPE tokenizer with
// model.vocab, model.merges as "a b" strings or ["a","b"] pairs, and
// added_tokens), or else dir/vocab.json and dir/merges.txt, where merges.txt
// may start with a "#version" line and <|endoftext|> is taken as an added
// token when the vocabulary has it.
//
// The vocabulary must be byte-level (GPT-2's bytes_to_unicode alphabet) and
// hold a token for each of the 256 bytes. The merges must make the
// vocabulary's tokens (see checkMerges): an empty or truncated merges file,
// which would split every word into single bytes and give a wrong lens
// without a word of warning, is refused. Each file must be a regular file
// of at most weights.MaxTokenizerFile bytes.
func Load(dir string) (*Tokenizer, error) {
	tj := filepath.Join(dir, "tokenizer.json")
	data, err := weights.ReadFile(tj, weights.MaxTokenizerFile)
	if err == nil {
		t, err := parseJSON(data)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", display.SafeN(tj, 0), err)
		}
		return t, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	vj, mt := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
	vdata, verr := weights.ReadFile(vj, weights.MaxTokenizerFile)
	mdata, merr := weights.ReadFile(mt, weights.MaxTokenizerFile)
	if errors.Is(verr, fs.ErrNotExist) || errors.Is(merr, fs.ErrNotExist) {
		var missing []string
		for _, f := range []struct {
			name string
			err  error
		}{{"tokenizer.json", err}, {"vocab.json", verr}, {"merges.txt", merr}} {
			if errors.Is(f.err, fs.ErrNotExist) {
				missing = append(missing, f.name)
			}
		}
		return nil, fmt.Errorf("tokenizer: %s: no tokenizer: missing %s (want tokenizer.json, or vocab.json and merges.txt)",
			display.SafeN(dir, 0), strings.Join(missing, ", "))
	}
	if verr != nil {
		return nil, fmt.Errorf("tokenizer: %w", verr)
	}
	if merr != nil {
		return nil, fmt.Errorf("tokenizer: %w", merr)
	}
	var vocab map[string]int
	if err := json.Unmarshal(vdata, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", display.SafeN(vj, 0), err)
	}
	merges, err := parseMergesTxt(string(mdata))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", display.SafeN(mt, 0), err)
	}
	var added []addedToken
	if id, ok := vocab[eotText]; ok {
		added = append(added, addedToken{eotText, id})
	}
	t, err := build(vocab, merges, added)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", display.SafeN(dir, 0), err)
	}
	return t, nil
}

// parseJSON reads the parts of a Hugging Face tokenizer.json we use.
func parseJSON(data []byte) (*Tokenizer, error) {
	var f struct {
		AddedTokens []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
		PreTokenizer *struct {
			Type           string `json:"type"`
			AddPrefixSpace bool   `json:"add_prefix_space"`
		} `json:"pre_tokenizer"`
		Model struct {
			Type   string          `json:"type"`
			Vocab  map[string]int  `json:"vocab"`
			Merges json.RawMessage `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	if f.Model.Type != "" && f.Model.Type != "BPE" {
		return nil, fmt.Errorf("model.type %s: only BPE is supported", quote(f.Model.Type))
	}
	if p := f.PreTokenizer; p != nil && (p.Type != "ByteLevel" || p.AddPrefixSpace) {
		return nil, fmt.Errorf("pre_tokenizer %s (add_prefix_space %v): only GPT-2's ByteLevel without prefix space is supported",
			quote(p.Type), p.AddPrefixSpace)
	}
	if len(f.Model.Vocab) == 0 {
		return nil, errors.New("model.vocab is missing or empty")
	}
	merges, err := parseMergesJSON(f.Model.Merges)
	if err != nil {
		return nil, err
	}
	var added []addedToken
	for _, a := range f.AddedTokens {
		if a.Content == "" {
			return nil, fmt.Errorf("added_tokens: id %d has empty content", a.ID)
		}
		added = append(added, addedToken{a.Content, a.ID})
	}
	return build(f.Model.Vocab, merges, added)
}

// parseMergesJSON accepts model.merges in both formats that Hugging Face
// writes: ["a b", ...] (older) and [["a", "b"], ...] (tokenizers ≥ 0.20).
func parseMergesJSON(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("model.merges is missing")
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		out := make([][2]string, len(strs))
		for i, s := range strs {
			a, b, ok := strings.Cut(s, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return nil, fmt.Errorf("model.merges[%d] %s: want two tokens separated by one space", i, quote(s))
			}
			out[i] = [2]string{a, b}
		}
		return out, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, errors.New(`model.merges: want ["a b", ...] or [["a", "b"], ...]`)
	}
	out := make([][2]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 || p[0] == "" || p[1] == "" {
			return nil, fmt.Errorf("model.merges[%d]: want two non-empty tokens, got %d", i, len(p))
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

// parseMergesTxt reads merges.txt: one "a b" per line, an optional
// "#version" first line, blank lines ignored.
func parseMergesTxt(s string) ([][2]string, error) {
	var out [][2]string
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || i == 0 && strings.HasPrefix(line, "#version") {
			continue
		}
		a, b, ok := strings.Cut(line, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("line %d %s: want two tokens separated by one space", i+1, quote(line))
		}
		out = append(out, [2]string{a, b})
	}
	return out, nil
}

// build decodes the byte-level vocabulary and merges into ids.
func build(vocab map[string]int, merges [][2]string, added []addedToken) (*Tokenizer, error) {
	size := 0
	for tok, id := range vocab {
		if id < 0 || id >= maxID {
			return nil, fmt.Errorf("vocab: token %s has id %d out of range [0, %d)", quote(tok), id, maxID)
		}
		size = max(size, id+1)
	}
	for _, a := range added {
		if a.id < 0 || a.id >= maxID {
			return nil, fmt.Errorf("added_tokens: %s has id %d out of range [0, %d)", quote(a.content), a.id, maxID)
		}
		size = max(size, a.id+1)
	}
	if n := len(vocab) + len(added); size > 4*n+1024 {
		// Ids are dense in real vocabularies; sparse ones would let a
		// tiny file make us allocate for 16M ids.
		return nil, fmt.Errorf("vocab: ids up to %d for only %d tokens", size-1, n)
	}
	t := &Tokenizer{
		tokBytes: make([][]byte, size),
		merges:   make(map[uint64]bpeMerge, len(merges)),
		eot:      -1,
		cache:    make(map[string][]int32),
	}
	byBytes := make(map[string]int32, len(vocab)) // raw bytes -> id
	for tok, id := range vocab {
		b, ok := bpeDecodeToken(tok)
		if !ok {
			return nil, fmt.Errorf("vocab: token %s (id %d) is not byte-level BPE (GPT-2's bytes_to_unicode alphabet)", quote(tok), id)
		}
		if t.tokBytes[id] != nil {
			return nil, fmt.Errorf("vocab: id %d is used by two tokens", id)
		}
		t.tokBytes[id] = b
		byBytes[string(b)] = int32(id)
	}
	for b := range 256 {
		id, ok := byBytes[string([]byte{byte(b)})]
		if !ok {
			return nil, fmt.Errorf("vocab: no token for byte 0x%02X (%q)", b, string(bpeByteRune[b]))
		}
		t.byteID[b] = id
	}
	for rank, m := range merges {
		if rank >= math.MaxInt32 {
			return nil, errors.New("merges: too many")
		}
		var ids [3]int32
		var raw [2][]byte
		for k, s := range m {
			b, ok := bpeDecodeToken(s)
			id, in := byBytes[string(b)]
			if !ok || !in {
				return nil, fmt.Errorf("merges: rule %d %s: %s is not in the vocab", rank+1, quote(m[0]+" "+m[1]), quote(s))
			}
			raw[k], ids[k] = b, id
		}
		id, ok := byBytes[string(raw[0])+string(raw[1])]
		if !ok {
			return nil, fmt.Errorf("merges: rule %d %s: the merged token is not in the vocab", rank+1, quote(m[0]+" "+m[1]))
		}
		ids[2] = id
		key := bpeKey(ids[0], ids[1])
		if _, dup := t.merges[key]; !dup { // the first (lowest) rank wins
			t.merges[key] = bpeMerge{int32(rank), ids[2]}
		}
	}
	if err := t.checkMerges(len(merges), added); err != nil {
		return nil, err
	}
	for _, a := range added {
		t.tokBytes[a.id] = []byte(a.content)
		if a.content == eotText {
			t.eot = a.id
		}
		t.added = append(t.added, a)
	}
	if id, ok := vocab[eotText]; ok && t.eot < 0 {
		t.eot = id
	}
	return t, nil
}

// Encode splits text into tokens. Every token's span is a byte range of
// text and the spans tile it: concatenating text[Start:End] over the tokens
// gives text back, for any input, valid UTF-8 or not.
//
// Added tokens are split out first: a literal "<|endoftext|>" in text is the
// special token (50256 for GPT-2), as in Hugging Face tokenizers and
// transformers. (OpenAI's encoder.py, tiktoken's ordinary encode and the
// reference gpt2_bpe.py read it as plain text instead.) The rest is GPT-2's
// pre-tokenizer regex and BPE. Bytes that are not valid UTF-8 are kept as is
// and pre-tokenized like U+FFFD, a symbol (neither letter, number nor space).
func (t *Tokenizer) Encode(text string) []Token {
	out := make([]Token, 0, len(text)/3+1)
	next := make([]int, len(t.added)) // next occurrence of each added token at or after pos
	for k := range next {
		next[k] = -1
	}
	for pos := 0; ; {
		start, end, id := t.findAdded(text, pos, next)
		if start < 0 {
			return t.appendSegment(out, text, pos, len(text))
		}
		out = t.appendSegment(out, text, pos, start)
		out = append(out, Token{id, start, end})
		pos = end
	}
}

// EncodeIDs is Encode without the spans.
func (t *Tokenizer) EncodeIDs(text string) []int {
	toks := t.Encode(text)
	ids := make([]int, len(toks))
	for i, tk := range toks {
		ids[i] = tk.ID
	}
	return ids
}

// TokenBytes returns a copy of the raw bytes of token id, which alone may be
// invalid UTF-8 (part of a character); nil for an id outside the vocabulary.
func (t *Tokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.tokBytes) {
		return nil
	}
	return slices.Clone(t.tokBytes[id])
}

// Decode concatenates the bytes of the tokens. The result is returned as is,
// not repaired: a slice of ids that cuts a character is invalid UTF-8. Ids
// outside the vocabulary are skipped.
func (t *Tokenizer) Decode(ids []int) string {
	var sb strings.Builder
	for _, id := range ids {
		if id >= 0 && id < len(t.tokBytes) {
			sb.Write(t.tokBytes[id])
		}
	}
	return sb.String()
}

// VocabSize is one more than the largest id, added tokens included
// (50257 for GPT-2).
func (t *Tokenizer) VocabSize() int { return len(t.tokBytes) }

// EOT returns the id of <|endoftext|> and whether the vocabulary has it.
func (t *Tokenizer) EOT() (id int, ok bool) { return t.eot, t.eot >= 0 }

// findAdded returns the leftmost, then longest, added token in text at or
// after pos, or start -1. next caches each added token's next occurrence so
// that a text is scanned once per added token.
func (t *Tokenizer) findAdded(text string, pos int, next []int) (start, end, id int) {
	start = -1
	for k, a := range t.added {
		if next[k] < pos {
			if i := strings.Index(text[pos:], a.content); i >= 0 {
				next[k] = pos + i
			} else {
				next[k] = len(text) + 1
			}
		}
		if next[k] > len(text) {
			continue
		}
		if start < 0 || next[k] < start || next[k] == start && next[k]+len(a.content) > end {
			start, end, id = next[k], next[k]+len(a.content), a.id
		}
	}
	return start, end, id
}

// appendSegment pre-tokenizes text[from:to] and appends the BPE tokens of
// each piece. The segment ends where an added token starts, so the regex's
// lookahead sees the end of the segment there, as in Hugging Face.
func (t *Tokenizer) appendSegment(out []Token, text string, from, to int) []Token {
	seg := text[from:to]
	for i := 0; i < len(seg); {
		j := nextPiece(seg, i)
		out = t.appendPiece(out, seg[i:j], from+i)
		i = j
	}
	return out
}

// appendPiece appends the tokens of one pre-tokenized piece starting at
// byte offset off of the text.
func (t *Tokenizer) appendPiece(out []Token, piece string, off int) []Token {
	if len(piece) == 1 {
		return append(out, Token{int(t.byteID[piece[0]]), off, off + 1})
	}
	for _, id := range t.pieceIDs(piece) {
		n := len(t.tokBytes[id])
		out = append(out, Token{int(id), off, off + n})
		off += n
	}
	return out
}

// pieceIDs returns the BPE ids of a piece, from the cache when it can. The
// returned slice is shared: do not modify it.
func (t *Tokenizer) pieceIDs(piece string) []int32 {
	t.mu.RLock()
	ids, ok := t.cache[piece]
	t.mu.RUnlock()
	if ok {
		return ids
	}
	ids = t.bpe(piece)
	if len(piece) <= pieceCacheLen {
		t.mu.Lock()
		if len(t.cache) >= pieceCacheMax {
			clear(t.cache)
		}
		t.cache[strings.Clone(piece)] = ids
		t.mu.Unlock()
	}
	return ids
}

// bpe merges the bytes of piece into tokens.
func (t *Tokenizer) bpe(piece string) []int32 {
	ids := make([]int32, len(piece))
	for i := range len(piece) {
		ids[i] = t.byteID[piece[i]]
	}
	if len(ids) <= bpeShortMax {
		return t.bpeMergeShort(ids)
	}
	return t.bpeMergeLong(ids)
}

// bpeKey packs a pair of ids into a merges key.
func bpeKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// bpeNone is the rank of a pair that has no merge rule.
const bpeNone = math.MaxInt32

// rank returns the merge rule of the pair (a, b), rank bpeNone if none.
func (t *Tokenizer) rank(a, b int32) bpeMerge {
	if m, ok := t.merges[bpeKey(a, b)]; ok {
		return m
	}
	return bpeMerge{bpeNone, -1}
}

// bpeMergeShort is the plain loop: merge the leftmost lowest-ranked pair
// until none has a rank. pairs[i] is the rule of (ids[i], ids[i+1]); only
// the two pairs next to a merge change.
func (t *Tokenizer) bpeMergeShort(ids []int32) []int32 {
	pairs := make([]bpeMerge, len(ids)-1)
	for i := range pairs {
		pairs[i] = t.rank(ids[i], ids[i+1])
	}
	for len(pairs) > 0 {
		best := 0
		for i := 1; i < len(pairs); i++ {
			if pairs[i].rank < pairs[best].rank {
				best = i
			}
		}
		if pairs[best].rank == bpeNone {
			break
		}
		ids[best] = pairs[best].id
		ids = slices.Delete(ids, best+1, best+2)
		pairs = slices.Delete(pairs, best, best+1)
		if best > 0 {
			pairs[best-1] = t.rank(ids[best-1], ids[best])
		}
		if best < len(pairs) {
			pairs[best] = t.rank(ids[best], ids[best+1])
		}
	}
	return ids
}

// bpeMergeLong computes what bpeMergeShort does in O(n log n): symbols form
// a linked list over byte positions, candidate pairs sit in a heap ordered
// by (rank, position), and a popped pair whose symbols changed since it was
// pushed is stale and skipped. A merge keeps the left symbol's position, so
// position 0 always heads the list.
func (t *Tokenizer) bpeMergeLong(ids []int32) []int32 {
	n := int32(len(ids))
	next := make([]int32, n)
	prev := make([]int32, n)
	for i := range n {
		next[i], prev[i] = i+1, i-1
	}
	h := make(bpeHeap, 0, n)
	push := func(i int32) {
		j := next[i]
		if j >= n {
			return
		}
		if m := t.rank(ids[i], ids[j]); m.rank != bpeNone {
			heap.Push(&h, bpeCand{m, i, j, ids[i], ids[j]})
		}
	}
	for i := range n - 1 {
		push(i)
	}
	for len(h) > 0 {
		c := heap.Pop(&h).(bpeCand)
		if next[c.left] != c.right || ids[c.left] != c.leftID || ids[c.right] != c.rightID {
			continue // stale
		}
		ids[c.left], ids[c.right] = c.m.id, -1
		next[c.left] = next[c.right]
		if next[c.left] < n {
			prev[next[c.left]] = c.left
		}
		if p := prev[c.left]; p >= 0 {
			push(p)
		}
		push(c.left)
	}
	out := ids[:0]
	for i := int32(0); i < n; i = next[i] {
		out = append(out, ids[i])
	}
	return out
}

// bpeCand is a candidate merge of the symbols at positions left and right,
// which held leftID and rightID when it was pushed.
type bpeCand struct {
	m               bpeMerge
	left, right     int32
	leftID, rightID int32
}

// bpeHeap is a min-heap of candidates by (rank, left position).
type bpeHeap []bpeCand

func (h bpeHeap) Len() int { return len(h) }
func (h bpeHeap) Less(i, j int) bool {
	if h[i].m.rank != h[j].m.rank {
		return h[i].m.rank < h[j].m.rank
	}
	return h[i].left < h[j].left
}
func (h bpeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *bpeHeap) Push(x any)   { *h = append(*h, x.(bpeCand)) }
func (h *bpeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Character classes of GPT-2's pre-tokenizer regex.
const (
	classOther  = iota // [^\s\p{L}\p{N}], and bytes that are not UTF-8
	classLetter        // \p{L}
	classNumber        // \p{N}
	classSpace         // \s
)

// asciiClass is the class of each ASCII byte.
var asciiClass = func() (c [utf8.RuneSelf]uint8) {
	for b := range utf8.RuneSelf {
		switch {
		case 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z':
			c[b] = classLetter
		case '0' <= b && b <= '9':
			c[b] = classNumber
		case b == ' ' || '\t' <= b && b <= '\r':
			c[b] = classSpace
		}
	}
	return c
}()

// classAt returns the class and UTF-8 length of the character at s[i].
func classAt(s string, i int) (class uint8, size int) {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	switch {
	case unicode.IsLetter(r):
		return classLetter, n
	case unicode.IsNumber(r):
		return classNumber, n
	case unicode.IsSpace(r):
		return classSpace, n
	}
	return classOther, n // RuneError of width 1 for an invalid byte
}

// nextPiece returns the end of the piece that starts at s[i], i < len(s),
// as GPT-2's regex, tried alternative by alternative, would:
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func nextPiece(s string, i int) int {
	if s[i] == '\'' && i+1 < len(s) { // contractions, lower case only
		switch s[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < len(s) && s[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < len(s) && s[i+2] == 'l' {
				return i + 3
			}
		}
	}
	j := i
	if s[i] == ' ' && i+1 < len(s) {
		if c, _ := classAt(s, i+1); c != classSpace {
			j = i + 1 // " ?" takes the space
		}
	}
	class, n := classAt(s, j)
	k := j + n
	if class != classSpace { // \p{L}+, \p{N}+ or [^\s\p{L}\p{N}]+
		for k < len(s) {
			c, n := classAt(s, k)
			if c != class {
				break
			}
			k += n
		}
		return k
	}
	last := i // start of the run's last whitespace character
	for k < len(s) {
		c, n := classAt(s, k)
		if c != classSpace {
			break
		}
		last = k
		k += n
	}
	if k == len(s) || last == i {
		return k // the whole run: it ends the text, or is one character (\s+)
	}
	return last // \s+(?!\S) leaves the last one to prefix what follows
}

// bpeByteRune is GPT-2's bytes_to_unicode: the character that stands for
// each byte in vocab and merges files. Bytes '!'..'~', 0xA1..0xAC and
// 0xAE..0xFF stand for themselves; the other 68 get U+0100, U+0101, … in
// byte order (so ' ' is 'Ġ' and '\n' is 'Ċ'). bpeRuneByte inverts it, -1
// for characters that stand for no byte.
var bpeByteRune, bpeRuneByte = func() (enc [256]rune, dec [256 + 68]int16) {
	for i := range dec {
		dec[i] = -1
	}
	extra := rune(256)
	for b := range 256 {
		r := rune(b)
		if !('!' <= b && b <= '~' || 0xA1 <= b && b <= 0xAC || 0xAE <= b) {
			r, extra = extra, extra+1
		}
		enc[b], dec[r] = r, int16(b)
	}
	return enc, dec
}()

// bpeDecodeToken turns a token as written in vocab and merges files back
// into its bytes; ok is false if a character stands for no byte.
func bpeDecodeToken(s string) (b []byte, ok bool) {
	b = make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0 || int(r) >= len(bpeRuneByte) || bpeRuneByte[r] < 0 {
			return nil, false
		}
		b = append(b, byte(bpeRuneByte[r]))
	}
	return b, len(b) > 0
}

// quote is an untrusted string from a tokenizer file in quotes, escaped
// and cut by display.Safe.
func quote(s string) string { return `"` + display.Safe(s) + `"` }

// mergeSample is how many of the earliest merge rules checkMerges tries.
const mergeSample = 256

// checkMerges refuses merges that cannot be the vocabulary's, before the
// added tokens are placed (so every multi-byte token in tokBytes comes from
// the vocabulary). In byte-level BPE every multi-byte vocabulary token is
// made by one merge rule, so a merge table is suspect when
//
//   - it is empty: every text is split into single bytes;
//   - its rules make fewer than half of the multi-byte tokens: a truncated
//     merges file (GPT-2's 50,000 rules make all 50,000);
//   - the tokens of its earliest rules, the most common pieces of text,
//     are not what BPE makes of their own bytes: rules out of order or
//     from another tokenizer (in GPT-2, every token encodes to itself).
//
// Common words then stay single bytes; the lens would be computed on the
// wrong tokens with no warning.
func (t *Tokenizer) checkMerges(rules int, added []addedToken) error {
	isAdded := make(map[int]bool, len(added))
	for _, a := range added {
		isAdded[a.id] = true
	}
	multi := 0
	for id, b := range t.tokBytes {
		if len(b) > 1 && !isAdded[id] {
			multi++
		}
	}
	if rules == 0 {
		return fmt.Errorf("merges: no merge rules for a vocabulary of %d multi-byte tokens: every word would be split into single bytes (empty merges.txt or model.merges?)", multi)
	}
	made := make(map[int32]bool, len(t.merges))
	type early struct{ rank, id int32 }
	var sample []early
	for _, m := range t.merges {
		made[m.id] = true
		if m.rank < mergeSample {
			sample = append(sample, early{m.rank, m.id})
		}
	}
	if 2*len(made) < multi {
		return fmt.Errorf("merges: %d rules make only %d of the vocabulary's %d multi-byte tokens (truncated merges.txt or model.merges?)", rules, len(made), multi)
	}
	slices.SortFunc(sample, func(a, b early) int { return int(a.rank - b.rank) })
	bad, first := 0, -1
	for _, e := range sample {
		if ids := t.bpe(string(t.tokBytes[e.id])); len(ids) != 1 || ids[0] != e.id {
			if bad++; first < 0 {
				first = int(e.id)
			}
		}
	}
	if 2*bad > len(sample) {
		return fmt.Errorf("merges: %d of the %d earliest rules make tokens that BPE does not make from their own bytes (e.g. %s, id %d, becomes %d tokens): merges out of order or from another tokenizer",
			bad, len(sample), quote(string(t.tokBytes[first])), first, len(t.bpe(string(t.tokBytes[first]))))
	}
	return nil
}
