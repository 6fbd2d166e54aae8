package inference

import (
	"errors"
	"fmt"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/weights/tokenizer"

	"github.com/logitlens/logitlens/weights"
)

// Model is a GPT-2 ready to run: its checkpoint, its tokenizer, and the
// backend that holds its weights where they run. It is read-only and
// shared; per-prompt state lives in a Session.
type Model struct {
	cfg      weights.Config
	backend  Backend
	tok      *tokenizer.Tokenizer
	ckpt     *weights.Checkpoint
	info     Info
	eos      int
	vocabTok int // tokens the tokenizer knows; ids at or above are padding rows of wte
}

// NewBackend places a checkpoint's weights where they run: NewCPUBackend,
// or CUDABackend(device).
type NewBackend func(*weights.Checkpoint) (Backend, error)

// NewModel wraps an opened checkpoint and its tokenizer, with the weights
// placed by newBackend. The model aliases the checkpoint's tensors; Close
// closes the backend and the checkpoint.
func NewModel(ck *weights.Checkpoint, tok *tokenizer.Tokenizer, newBackend NewBackend, id string) (*Model, error) {
	cfg := ck.Config
	if err := cfg.CheckVocab(tok.VocabSize()); err != nil {
		return nil, err
	}
	b, err := newBackend(ck)
	if err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, backend: b, tok: tok, ckpt: ck, vocabTok: tok.VocabSize(), eos: -1}
	if id, ok := tok.EOT(); ok {
		m.eos = id
	}
	m.info = Info{ID: id, Config: cfg, Device: b.Name(), BLAS: BLASName()}
	return m, nil
}

// Config returns the model's GPT-2 configuration.
func (m *Model) Config() weights.Config { return m.cfg }

// Info describes the model for status lines and exports.
func (m *Model) Info() Info { return m.info }

// SetNote records why the model was chosen (e.g. a fallback), shown with Info.
func (m *Model) SetNote(note string) { m.info.Note = note }

// Encode tokenizes text, keeping each token's byte span.
func (m *Model) Encode(text string) []Token { return m.tok.Encode(text) }

// Reencode is Encode(text) given prev = Encode(prevText), tokenizing again
// only from near where the texts differ (see tokenizer.Reencode).
func (m *Model) Reencode(prevText string, prev []Token, text string) []Token {
	return m.tok.Reencode(prevText, prev, text)
}

// TokenBytes returns the raw bytes of one token.
func (m *Model) TokenBytes(id int) []byte { return m.tok.TokenBytes(id) }

// TokenText returns a token rendered for display (␣ ↵ ⇥ <0xNN>).
func (m *Model) TokenText(id int) string { return display.Token(m.tok.TokenBytes(id)) }

// EOT returns the id of <|endoftext|>, or -1 when the tokenizer has none.
func (m *Model) EOT() int { return m.eos }

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// Backend returns the backend that runs the model.
func (m *Model) Backend() Backend { return m.backend }

// Checkpoint returns the opened checkpoint, for read-only use.
func (m *Model) Checkpoint() *weights.Checkpoint { return m.ckpt }

// Close frees the backend's weights (and any session still open on it)
// and releases the checkpoint's mapped files.
func (m *Model) Close() error {
	return errors.Join(m.backend.Close(), m.ckpt.Close())
}

// Rows lists the lens rows for a request: the embedding, then for each block
// its resid_mid (with sublayers) and its output.
func (m *Model) Rows(sublayers bool) []Row {
	rows := []Row{{Kind: Embed, Name: "embed"}}
	for i := 1; i <= m.cfg.NLayer; i++ {
		if sublayers {
			rows = append(rows, Row{Kind: AttnMid, Layer: i, Name: fmt.Sprintf("%d.attn", i)})
		}
		rows = append(rows, Row{Kind: BlockOut, Layer: i, Name: fmt.Sprint(i)})
	}
	return rows
}

// finalRow is the last block's output, whose lens is the model's output.
func (m *Model) finalRow() Row {
	return Row{Kind: BlockOut, Layer: m.cfg.NLayer, Name: fmt.Sprint(m.cfg.NLayer)}
}

// stream is the index of a row's residual in a session's stored streams:
// 0 embed, 2i−1 resid_mid of block i, 2i output of block i.
func (r Row) stream() int {
	switch r.Kind {
	case AttnMid:
		return 2*r.Layer - 1
	case BlockOut:
		return 2 * r.Layer
	}
	return 0
}
