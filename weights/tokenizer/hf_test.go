//go:build hftokenizers

package tokenizer

import (
	"slices"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/weights/testmodel"
)

// TestHFTokenizerAgrees: the Rust library and ours give the same tokens on
// the corpus (NUL-free, as the Rust side takes C strings).
func TestHFTokenizerAgrees(t *testing.T) {
	ours := gpt2(t)
	hf, err := LoadHFTokenizer(testmodel.Dir(t, "tiny-f32"))
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	for _, u := range corpusUnits(t) {
		if strings.Contains(u, "\x00") {
			continue
		}
		if got, want := hf.Encode(u), ours.Encode(u); !slices.Equal(got, want) {
			t.Fatalf("%q: Rust %v, ours %v", u, got, want)
		}
		if got := hf.Decode(hf.EncodeIDs(u)); got != u {
			t.Fatalf("%q: Rust round trip gives %q", u, got)
		}
	}
}
