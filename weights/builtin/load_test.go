package builtin_test

import (
	"testing"

	"github.com/logitlens/logitlens/weights/tokenizer"

	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/builtin"
)

// TestOrdinaryLoader opens the extracted model with the loader every other
// checkpoint goes through.
func TestOrdinaryLoader(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir, err := builtin.Dir()
	if err != nil {
		t.Fatal(err)
	}
	ckpt, err := weights.OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ckpt.Close()
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ckpt.Config.CheckVocab(tok.VocabSize()); err != nil {
		t.Error(err)
	}
	if got := tok.EncodeIDs("The jury said"); len(got) != 3 || got[0] != 464 {
		t.Errorf("EncodeIDs(\"The jury said\") = %v", got)
	}
	if lm := ckpt.LMHead(); lm == nil || lm.Shape[0] != 50257 {
		t.Errorf("LMHead() = %v", lm)
	}
}
