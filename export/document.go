// Package export writes a computed lens for people and programs: a text
// grid, CSV with one row per cell, and the JSON document of the `lens`
// command (schema logitlens.lens/v1).
package export

import (
	"encoding/json"
	"io"
	"unicode/utf8"

	"github.com/logitlens/logitlens/display"

	"github.com/logitlens/logitlens/inference"
)

// Schema names the JSON layout. Fields may be added; none is renamed.
const Schema = "logitlens.lens/v1"

// Document is the JSON form of a lens: cells[row][position], rows from the
// embedding up to the last block.
type Document struct {
	Schema      string       `json:"schema"`
	Model       ModelInfo    `json:"model"`
	Device      string       `json:"device"`
	BLAS        string       `json:"blas,omitempty"`
	Prompt      string       `json:"prompt"`
	BOS         bool         `json:"bos"`
	TopK        int          `json:"top_k"`
	Target      *TokenRef    `json:"target,omitempty"`
	Conventions Conventions  `json:"conventions"`
	Tokens      []TokenRef   `json:"tokens"`
	FinalTop1   []TokenRef   `json:"final_top1"`
	Rows        []RowInfo    `json:"rows"`
	Cells       [][]CellInfo `json:"cells"`
}

// ModelInfo is the model's identity and shape.
type ModelInfo struct {
	ID         string `json:"id"`
	NLayer     int    `json:"n_layer"`
	NEmbd      int    `json:"n_embd"`
	NHead      int    `json:"n_head"`
	NPositions int    `json:"n_positions"`
	VocabSize  int    `json:"vocab_size"`
}

// TokenRef is a token: its id, its text (invalid UTF-8 replaced by U+FFFD),
// and its display form (␣ ↵ ⇥ <0xNN>).
type TokenRef struct {
	ID      int    `json:"id"`
	Text    string `json:"text"`
	Display string `json:"display"`
}

// RowInfo names a lens row.
type RowInfo struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"` // "embed", "attn" (resid_mid) or "block"
	Layer int    `json:"layer"`
}

// TopEntry is one of a cell's top-k.
type TopEntry struct {
	ID      int     `json:"id"`
	Text    string  `json:"text"`
	Display string  `json:"display"`
	Prob    float64 `json:"prob"`
}

// CellInfo is one cell's statistics (nats).
type CellInfo struct {
	Top           []TopEntry `json:"top"`
	Entropy       float64    `json:"entropy"`
	KLToFinal     float64    `json:"kl_to_final"`
	FinalTop1Rank int        `json:"final_top1_rank"`
	FinalTop1Prob float64    `json:"final_top1_prob"`
	TargetRank    *int       `json:"target_rank,omitempty"`
	TargetProb    *float64   `json:"target_prob,omitempty"`
}

// Conventions state what the numbers mean, so a file explains itself.
type Conventions struct {
	Rows    string `json:"rows"`
	Lens    string `json:"lens"`
	Units   string `json:"units"`
	Rank    string `json:"rank"`
	Top     string `json:"top"`
	Predict string `json:"positions"`
}

var conventions = Conventions{
	Rows:    "embed = wte[ids] + wpe[pos]; N = residual after block N; N.attn = residual after block N's attention (resid_mid)",
	Lens:    "logits = ln_f(h) @ W_U, ln_f applied once per row; the last row is the model's output",
	Units:   "entropy and kl_to_final = KL(P_final || P_row) in nats",
	Rank:    "0-based: ids with a strictly larger logit",
	Top:     "descending probability, ties by smaller id",
	Predict: "position t predicts token t+1",
}

// Source is what a document needs besides the lens: the model's identity
// and its tokens' bytes.
type Source interface {
	Info() inference.Info
	TokenBytes(id int) []byte
}

// NewDocument builds the JSON document of a lens.
func NewDocument(l *inference.Lens, src Source, prompt string, bos bool, topK int) *Document {
	info := src.Info()
	cfg := info.Config
	tok := func(id int) TokenRef {
		b := src.TokenBytes(id)
		return TokenRef{ID: id, Text: validText(b), Display: display.Token(b)}
	}
	d := &Document{
		Schema: Schema,
		Model: ModelInfo{ID: info.ID, NLayer: cfg.NLayer, NEmbd: cfg.NEmbd, NHead: cfg.NHead,
			NPositions: cfg.NPositions, VocabSize: cfg.VocabSize},
		Device: info.Device, BLAS: info.BLAS, Prompt: prompt, BOS: bos, TopK: topK,
		Conventions: conventions,
	}
	if l.Target >= 0 {
		t := tok(l.Target)
		d.Target = &t
	}
	for _, id := range l.IDs {
		d.Tokens = append(d.Tokens, tok(id))
	}
	for _, id := range l.FinalTop1 {
		d.FinalTop1 = append(d.FinalTop1, tok(id))
	}
	for _, r := range l.Rows {
		d.Rows = append(d.Rows, RowInfo{Name: r.Name, Kind: kindName(r.Kind), Layer: r.Layer})
	}
	d.Cells = make([][]CellInfo, len(l.Cells))
	for r, row := range l.Cells {
		d.Cells[r] = make([]CellInfo, len(row))
		for p, c := range row {
			ci := CellInfo{Entropy: c.Entropy, KLToFinal: c.KLToFinal, FinalTop1Rank: c.FinalTop1Rank, FinalTop1Prob: c.FinalTop1Prob}
			for _, pr := range c.Top {
				t := tok(pr.ID)
				ci.Top = append(ci.Top, TopEntry{ID: t.ID, Text: t.Text, Display: t.Display, Prob: pr.Prob})
			}
			if l.Target >= 0 {
				rank, prob := c.TargetRank, c.TargetProb
				ci.TargetRank, ci.TargetProb = &rank, &prob
			}
			d.Cells[r][p] = ci
		}
	}
	return d
}

// WriteJSON writes the document as one JSON object and a newline.
func WriteJSON(w io.Writer, d *Document) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(d)
}

func kindName(k inference.RowKind) string {
	switch k {
	case inference.AttnMid:
		return "attn"
	case inference.BlockOut:
		return "block"
	}
	return "embed"
}

// validText returns b as a string, each invalid UTF-8 byte replaced by U+FFFD
// (JSON strings cannot hold raw bytes; Display keeps them as <0xNN>).
func validText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]rune, 0, len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		out = append(out, r)
		b = b[n:]
	}
	return string(out)
}
