//go:build hftokenizers

package tokenizer

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/daulet/tokenizers"
)

// HFTokenizer runs Hugging Face's tokenizers library (Rust, through
// github.com/daulet/tokenizers v1.27.0) behind the same Encode and Decode as
// Tokenizer, to cross-check it. It is built only with -tags hftokenizers and
// links libtokenizers.a, which must be on the linker path (it cannot be built
// offline: crates.io is needed).
//
// Differences from Tokenizer: text goes to Rust as a C string, so it is cut
// at the first NUL byte; Decode repairs invalid UTF-8 with U+FFFD.
type HFTokenizer struct{ tk *tokenizers.Tokenizer }

// LoadHFTokenizer reads dir/tokenizer.json with the Rust library. Call Close
// when done.
func LoadHFTokenizer(dir string) (*HFTokenizer, error) {
	p := filepath.Join(dir, "tokenizer.json")
	tk, err := tokenizers.FromFile(p)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", p, err)
	}
	return &HFTokenizer{tk}, nil
}

// Close frees the Rust tokenizer.
func (h *HFTokenizer) Close() error { return h.tk.Close() }

// Encode is Tokenizer.Encode through the Rust library. The library's own
// offsets drop a token's leading space (trim_offsets), so spans are running
// sums of the tokens' byte lengths instead.
func (h *HFTokenizer) Encode(text string) []Token {
	ids, strs := h.tk.Encode(text, false)
	out := make([]Token, len(ids))
	off := 0
	for i, id := range ids {
		n := len(strs[i]) // an added token is its content
		if b, ok := bpeDecodeToken(strs[i]); ok {
			n = len(b)
		}
		out[i] = Token{int(id), off, off + n}
		off += n
	}
	return out
}

// EncodeIDs is Encode without the spans.
func (h *HFTokenizer) EncodeIDs(text string) []int {
	ids, _ := h.tk.Encode(text, false)
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}

// Decode is Tokenizer.Decode through the Rust library, special tokens kept.
func (h *HFTokenizer) Decode(ids []int) string {
	u := make([]uint32, 0, len(ids))
	for _, id := range ids {
		if id >= 0 && uint64(id) <= math.MaxUint32 {
			u = append(u, uint32(id))
		}
	}
	return h.tk.Decode(u, false)
}
