package tune

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
)

// Corpus is the training text as the tuned-lens package prepares it
// (tuned_lens/data.py, chunk_and_tokenize): the documents joined into one
// token stream that starts with <|endoftext|> and has one between
// documents, cut into windows of exactly Window tokens; the last, partial
// window is dropped.
type Corpus struct {
	Window  int     // tokens per window: the model's n_positions
	Windows [][]int // token ids
	Tokens  int     // tokens in the stream, the dropped tail included
}

// Encoder tokenizes text; eot is the id of <|endoftext|>.
type Encoder interface {
	EncodeIDs(text string) []int
	EOT() int
}

// NewCorpus tokenizes docs and cuts them into windows of window tokens.
// It fails when the documents do not fill one window.
func NewCorpus(enc Encoder, docs []string, window int) (*Corpus, error) {
	eot := enc.EOT()
	if eot < 0 {
		return nil, errors.New("tune: the tokenizer has no <|endoftext|> to separate documents")
	}
	var stream []int
	for _, d := range docs {
		stream = append(stream, eot)
		stream = append(stream, enc.EncodeIDs(d)...)
	}
	c := &Corpus{Window: window, Tokens: len(stream)}
	for a := 0; a+window <= len(stream); a += window {
		c.Windows = append(c.Windows, stream[a:a+window])
	}
	if len(c.Windows) == 0 {
		return nil, fmt.Errorf("tune: the text makes %d tokens, fewer than one window of n_positions = %d", len(stream), window)
	}
	return c, nil
}

// order returns the windows of epoch e in their shuffled order: a
// permutation that depends only on (seed, e), so a resumed run reads the
// same windows as an uninterrupted one.
func (c *Corpus) order(seed uint64, epoch int) []int {
	rng := rand.New(rand.NewPCG(seed, uint64(epoch)))
	return rng.Perm(len(c.Windows))
}

// window returns the i-th window read by a run: epochs follow each other,
// each a fresh permutation.
func (c *Corpus) window(seed uint64, i int) (ids []int, epoch int) {
	n := len(c.Windows)
	epoch = i / n
	return c.Windows[c.order(seed, epoch)[i%n]], epoch
}

// Fingerprint identifies the corpus (its windows, in file order), so that
// a checkpoint is resumed only on the data it was trained on.
func (c *Corpus) Fingerprint() string {
	h := sha256.New()
	var b [4]byte
	for _, w := range c.Windows {
		for _, id := range w {
			binary.LittleEndian.PutUint32(b[:], uint32(id))
			h.Write(b[:])
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:12])
}
