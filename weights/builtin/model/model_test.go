package model

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// GPT2Vocabulary gives GPT-2's own files: the sha256 sums the reference
// tokenizer (gpt2_bpe.py) checks for encoder.json and vocab.bpe.
func TestGPT2Vocabulary(t *testing.T) {
	vocab, merges, err := GPT2Vocabulary()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		data []byte
		want string
	}{
		{"vocab.json", vocab, "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"},
		{"merges.txt", merges, "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"},
	} {
		if got := sha256.Sum256(f.data); hex.EncodeToString(got[:]) != f.want {
			t.Errorf("%s: sha256 %x, want GPT-2's %s", f.name, got, f.want)
		}
	}
}
