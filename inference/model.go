package inference

import (
	"fmt"
	"sync"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/weights/tokenizer"

	"github.com/logitlens/logitlens/weights"
	"gorgonia.org/tensor"
)

// block holds one transformer block's weights, named after the checkpoint
// keys. Conv1D weights are stored [in, out], so x @ w needs no transpose.
type block struct {
	ln1G, ln1B         *tensor.Dense // [C]
	cAttnW, cAttnB     *tensor.Dense // [C,3C], [3C]
	attnProjW          *tensor.Dense // [C,C]
	attnProjB          *tensor.Dense // [C]
	ln2G, ln2B         *tensor.Dense // [C]
	fcW, fcB           *tensor.Dense // [C,4C], [4C]
	mlpProjW, mlpProjB *tensor.Dense // [4C,C], [C]
}

// Model is a GPT-2 ready to run: its weights as tensors on an engine, and
// its tokenizer. It is read-only and shared; per-prompt state lives in a
// Session.
type Model struct {
	cfg      weights.Config
	wte      *tensor.Dense // [V,C]
	wpe      *tensor.Dense // [P,C]
	lnFG     *tensor.Dense // [C]
	lnFB     *tensor.Dense // [C]
	unembed  *tensor.Dense // [C,V]: a transposed view of lm_head (wte when tied), never copied
	blocks   []block
	engine   Engine
	tok      *tokenizer.Tokenizer
	ckpt     *weights.Checkpoint
	info     Info
	eos      int
	vocabTok int // tokens the tokenizer knows; ids at or above are padding rows of wte

	unembedOnce   sync.Once
	unembedPacked *packedB // W_U packed for our Sgemm (unembed.go); nil under another BLAS
}

// NewModel wraps an opened checkpoint and its tokenizer. The model aliases
// the checkpoint's tensors; Close closes the checkpoint.
func NewModel(ck *weights.Checkpoint, tok *tokenizer.Tokenizer, engine Engine, id string) (*Model, error) {
	cfg := ck.Config
	if err := cfg.CheckVocab(tok.VocabSize()); err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, engine: engine, tok: tok, ckpt: ck, vocabTok: tok.VocabSize()}
	if e, ok := engine.(*CUDA); ok {
		if err := e.upload(ck); err != nil {
			return nil, err
		}
	}
	get := func(name string) *tensor.Dense {
		t := ck.Tensor(name)
		if t == nil {
			panic("inference: checkpoint lacks validated tensor " + name) // OpenCheckpoint guarantees it
		}
		return tensor.New(tensor.WithShape(t.Shape...), tensor.WithBacking(t.Data))
	}
	m.wte = get("wte.weight")
	m.wpe = get("wpe.weight")
	m.lnFG, m.lnFB = get("ln_f.weight"), get("ln_f.bias")
	head := ck.LMHead()
	m.unembed = tensor.New(tensor.WithShape(head.Shape...), tensor.WithBacking(head.Data))
	if err := m.unembed.T(); err != nil {
		return nil, fmt.Errorf("inference: lm_head view: %w", err)
	}
	for i := 0; i < cfg.NLayer; i++ {
		p := fmt.Sprintf("h.%d.", i)
		m.blocks = append(m.blocks, block{
			ln1G: get(p + "ln_1.weight"), ln1B: get(p + "ln_1.bias"),
			cAttnW: get(p + "attn.c_attn.weight"), cAttnB: get(p + "attn.c_attn.bias"),
			attnProjW: get(p + "attn.c_proj.weight"), attnProjB: get(p + "attn.c_proj.bias"),
			ln2G: get(p + "ln_2.weight"), ln2B: get(p + "ln_2.bias"),
			fcW: get(p + "mlp.c_fc.weight"), fcB: get(p + "mlp.c_fc.bias"),
			mlpProjW: get(p + "mlp.c_proj.weight"), mlpProjB: get(p + "mlp.c_proj.bias"),
		})
	}
	m.eos = -1
	if id, ok := tok.EOT(); ok {
		m.eos = id
	}
	m.info = Info{ID: id, Config: cfg, Device: engine.Name(), BLAS: BLASName()}
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

// TokenBytes returns the raw bytes of one token.
func (m *Model) TokenBytes(id int) []byte { return m.tok.TokenBytes(id) }

// TokenText returns a token rendered for display (␣ ↵ ⇥ <0xNN>).
func (m *Model) TokenText(id int) string { return display.Token(m.tok.TokenBytes(id)) }

// EOT returns the id of <|endoftext|>, or -1 when the tokenizer has none.
func (m *Model) EOT() int { return m.eos }

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// Close releases the checkpoint's mapped files.
func (m *Model) Close() error {
	if pb := m.unembedPacked; pb != nil && pb.free != nil {
		m.unembedPacked = nil
		pb.free()
	}
	if e, ok := m.engine.(*CUDA); ok {
		e.close() //nolint:errcheck // the checkpoint's error is the one to report
	}
	return m.ckpt.Close()
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
