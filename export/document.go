package export

import (
	"encoding/json"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/logitlens/logitlens/inference"
)

// Schema names the JSON layout. Fields may be added; none is renamed.
const Schema = "logitlens.lens/v1"

// Document is a lens in the form every format is written from, and the
// JSON document itself: cells[row][position], rows from the embedding up to
// the last block.
type Document struct {
	Schema      string       `json:"schema"`
	Model       ModelInfo    `json:"model"`
	Device      string       `json:"device"`
	BLAS        string       `json:"blas,omitempty"`
	Prompt      string       `json:"prompt"`
	BOS         bool         `json:"bos"`
	TopK        int          `json:"top_k"`
	Target      *TokenRef    `json:"target,omitempty"`
	Lens        LensInfo     `json:"lens"`
	Conventions Conventions  `json:"conventions"`
	Tokens      []TokenRef   `json:"tokens"`
	FinalTop1   []TokenRef   `json:"final_top1"`
	Rows        []RowInfo    `json:"rows"`
	Cells       [][]CellInfo `json:"cells"`
	// LockIn gives, per position, the row (an index into Rows) from which
	// the top-1 equals the output's top-1 and stays equal up to the
	// output; null where the output row has no top-1.
	LockIn []*int `json:"lock_in"`
	// NonFinite says where the residual stream stopped being finite, e.g.
	// "layer 1: activations overflow (inf) at position 3"; empty for a
	// healthy lens.
	NonFinite string `json:"nonfinite,omitempty"`
	// Compare compares this lens (run A) with a run B that changes one
	// thing; absent for a single lens.
	Compare *Comparison `json:"compare,omitempty"`
}

// LensInfo says which lens decoded the rows.
type LensInfo struct {
	Kind   string `json:"kind"`             // "logit" or "tuned"
	Source string `json:"source,omitempty"` // a tuned lens's origin: "published", "built-in", a folder, REPO/FOLDER
}

// Name is the lens in a title: "logit lens", "tuned lens (built-in)".
func (l LensInfo) Name() string {
	if l.Kind != "tuned" {
		return "logit lens"
	}
	if l.Source == "" {
		return "tuned lens"
	}
	return "tuned lens (" + l.Source + ")"
}

// tunedConvention replaces Conventions.Lens for a tuned lens.
const tunedConvention = "logits = ln_f(h + h @ W_l^T + b_l) @ W_U for rows l < n_layer (the tuned lens's translators, added residually), ln_f(h) @ W_U for the last row, the model's output"

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
	ID      int    `json:"id"`
	Text    string `json:"text"`
	Display string `json:"display"`
	Prob    Float  `json:"prob"`
}

// CellInfo is one cell's statistics (nats). A cell whose logits were not
// finite has an empty Top, NaN statistics (null in JSON), ranks −1 and
// NonFinite saying why; so has, in part, a finite cell whose position's
// output row is not finite (its KL and final top-1 statistics).
type CellInfo struct {
	Top           []TopEntry `json:"top"`
	Entropy       Float      `json:"entropy"`
	KLToFinal     Float      `json:"kl_to_final"`
	FinalTop1Rank int        `json:"final_top1_rank"`
	FinalTop1Prob Float      `json:"final_top1_prob"`
	TargetRank    *int       `json:"target_rank,omitempty"`
	TargetProb    *Float     `json:"target_prob,omitempty"`
	// NextRank and NextProb are the rank and probability of the prompt's
	// next token (the one position t+1 holds); null at the last position,
	// as in the reference (lens_ref.py), and where the lens was computed
	// without them.
	NextRank  *int   `json:"next_rank"`
	NextProb  *Float `json:"next_prob"`
	NonFinite string `json:"nonfinite,omitempty"`
}

// Float is a float64 that JSON encodes as null when it is NaN or ±Inf, which
// JSON numbers cannot hold; null decodes back as NaN.
type Float float64

// MarshalJSON encodes f as a number, or null when it is not finite.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(v)
}

// UnmarshalJSON decodes a number, or null as NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// Conventions state what the numbers mean, so a file explains itself.
type Conventions struct {
	Rows    string `json:"rows"`
	Lens    string `json:"lens"`
	Units   string `json:"units"`
	Rank    string `json:"rank"`
	Next    string `json:"next"`
	Top     string `json:"top"`
	Predict string `json:"positions"`
	LockIn  string `json:"lock_in"`
}

var conventions = Conventions{
	Rows:    "embed = wte[ids] + wpe[pos]; N = residual after block N; N.attn = residual after block N's attention (resid_mid)",
	Lens:    "logits = ln_f(h) @ W_U, ln_f applied once per row; the last row is the model's output",
	Units:   "entropy and kl_to_final = KL(P_final || P_row) in nats",
	Rank:    "0-based: ids with a strictly larger logit; -1 where it cannot be computed (a row that is not finite)",
	Next:    "next_rank, next_prob: of the prompt's token at position t+1 in the row at position t",
	Top:     "descending probability, ties by smaller id",
	Predict: "position t predicts token t+1",
	LockIn:  "per position, the lowest row (index into rows) from which every row's top-1 equals the last row's top-1",
}

// Source is what a document needs besides the lens: the model's identity
// and its tokens' bytes.
type Source interface {
	Info() inference.Info
	TokenBytes(id int) []byte
}

// NewDocument builds the document of a lens.
func NewDocument(l *inference.Lens, src Source, prompt string, bos bool, topK int) *Document {
	info := src.Info()
	cfg := info.Config
	tok := func(id int) TokenRef { return tokenRef(src, id) } // id < 0: the output row was not finite there
	d := &Document{
		Schema: Schema,
		Model: ModelInfo{ID: info.ID, NLayer: cfg.NLayer, NEmbd: cfg.NEmbd, NHead: cfg.NHead,
			NPositions: cfg.NPositions, VocabSize: cfg.VocabSize},
		Device: info.Device, BLAS: info.BLAS, Prompt: prompt, BOS: bos, TopK: topK,
		Conventions: conventions,
		Lens:        LensInfo{Kind: "logit"},
	}
	if l.Tuned != nil {
		d.Lens = LensInfo{Kind: "tuned", Source: l.Tuned.Source}
		d.Conventions.Lens = tunedConvention
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
	if l.NonFinite != nil {
		d.NonFinite = l.NonFinite.String()
	}
	for _, r := range l.LockIns() {
		if r < 0 {
			d.LockIn = append(d.LockIn, nil)
		} else {
			d.LockIn = append(d.LockIn, &r)
		}
	}
	d.Cells = make([][]CellInfo, len(l.Cells))
	for r, row := range l.Cells {
		d.Cells[r] = make([]CellInfo, len(row))
		for p, c := range row {
			d.Cells[r][p] = newCellInfo(src, c, l.Target >= 0)
		}
	}
	return d
}

// newCellInfo is a cell as documents hold it; hasTarget says whether the
// lens had a target.
func newCellInfo(src Source, c inference.Cell, hasTarget bool) CellInfo {
	ci := CellInfo{Entropy: Float(c.Entropy), KLToFinal: Float(c.KLToFinal),
		FinalTop1Rank: c.FinalTop1Rank, FinalTop1Prob: Float(c.FinalTop1Prob),
		Top: make([]TopEntry, 0, len(c.Top))} // [] in JSON even when empty, never null
	for _, pr := range c.Top {
		t := tokenRef(src, pr.ID)
		ci.Top = append(ci.Top, TopEntry{ID: t.ID, Text: t.Text, Display: t.Display, Prob: Float(pr.Prob)})
	}
	if hasTarget {
		rank, prob := c.TargetRank, Float(c.TargetProb)
		ci.TargetRank, ci.TargetProb = &rank, &prob
	}
	if c.NextRank >= 0 || math.IsNaN(c.NextProb) { // NaN: asked for, in a row that is not finite
		rank, prob := c.NextRank, Float(c.NextProb)
		ci.NextRank, ci.NextProb = &rank, &prob
	}
	ci.NonFinite = nonFiniteReason(c.NonFinite, ci)
	return ci
}

// CellSchema names the JSON layout of a single cell (CellDoc).
const CellSchema = "logitlens.cell/v1"

// CellDoc is one cell of a lens with where it is: the explorer copies a
// cell as this JSON. Its statistics are a Document cell's, in the same
// fields and conventions; positions count from 0, as in a Document.
type CellDoc struct {
	Schema   string    `json:"schema"`
	Model    string    `json:"model"`
	Row      RowInfo   `json:"row"`
	Position int       `json:"position"`
	Input    TokenRef  `json:"input"`
	Next     *TokenRef `json:"next"` // null at the prompt's end
	Target   *TokenRef `json:"target,omitempty"`
	// LockIn is the row at which the position's prediction locks in (see
	// Document.LockIn); null where the output row has no top-1.
	LockIn *RowInfo `json:"lock_in"`
	CellInfo
}

// NewCellDoc describes one cell: c is row's cell at position pos, whose
// input token is input; next is the token that follows (−1 at the end),
// target the lens's target (−1 for none), lockIn the position's lock-in
// row (nil for none).
func NewCellDoc(src Source, row inference.Row, pos, input, next int, c inference.Cell, target int, lockIn *inference.Row) *CellDoc {
	d := &CellDoc{
		Schema: CellSchema, Model: src.Info().ID, Position: pos,
		Row:      RowInfo{Name: row.Name, Kind: kindName(row.Kind), Layer: row.Layer},
		Input:    tokenRef(src, input),
		CellInfo: newCellInfo(src, c, target >= 0),
	}
	if next >= 0 {
		t := tokenRef(src, next)
		d.Next = &t
	}
	if target >= 0 {
		t := tokenRef(src, target)
		d.Target = &t
	}
	if lockIn != nil {
		d.LockIn = &RowInfo{Name: lockIn.Name, Kind: kindName(lockIn.Kind), Layer: lockIn.Layer}
	}
	return d
}

// JSON returns the cell as indented JSON (NaN and ±Inf as null).
func (d *CellDoc) JSON() ([]byte, error) { return json.MarshalIndent(d, "", "  ") }

// nonFiniteReason says why a cell has statistics that are not finite
// numbers: its own row's kind of breakdown, or else which statistics are
// not finite (a finite row whose position's output row is not).
func nonFiniteReason(kind inference.NonFinite, c CellInfo) string {
	switch kind {
	case inference.ResidualInf:
		return "the residual stream overflowed (inf)"
	case inference.ResidualNaN:
		return "the residual stream is NaN"
	case inference.LogitsOverflow:
		return "the logits overflowed (ln_f or the unembedding left float32's range)"
	}
	if why := nonFiniteStats(c); why != "" {
		return why + " (the output row is not finite here)"
	}
	return ""
}

// nonFiniteStats says which statistics of a cell are not finite numbers,
// e.g. "no top-k; entropy, kl_to_final not finite"; "" when all are.
func nonFiniteStats(c CellInfo) string {
	var bad []string
	check := func(name string, v *Float) {
		if v != nil && !v.Finite() {
			bad = append(bad, name)
		}
	}
	check("entropy", &c.Entropy)
	check("kl_to_final", &c.KLToFinal)
	check("final_top1_prob", &c.FinalTop1Prob)
	check("target_prob", c.TargetProb)
	check("next_prob", c.NextProb)
	for _, t := range c.Top {
		if !t.Prob.Finite() {
			bad = append(bad, "top probabilities")
			break
		}
	}
	var reason []string
	if len(c.Top) == 0 {
		reason = append(reason, "no top-k")
	}
	if len(bad) > 0 {
		reason = append(reason, strings.Join(bad, ", ")+" not finite")
	}
	return strings.Join(reason, "; ")
}

// Finite reports whether f is neither NaN nor ±Inf.
func (f Float) Finite() bool {
	return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0)
}

// stats is the cell as the inference package states it, for Metric.Value.
func (c CellInfo) stats() inference.Cell {
	s := inference.Cell{Entropy: float64(c.Entropy), KLToFinal: float64(c.KLToFinal),
		FinalTop1Rank: c.FinalTop1Rank, FinalTop1Prob: float64(c.FinalTop1Prob), TargetRank: -1}
	if len(c.Top) > 0 {
		s.Top = []inference.Prediction{{ID: c.Top[0].ID, Prob: float64(c.Top[0].Prob)}}
	}
	if c.TargetRank != nil {
		s.TargetRank = *c.TargetRank
	}
	if c.TargetProb != nil {
		s.TargetProb = float64(*c.TargetProb)
	} else {
		s.TargetProb = math.NaN()
	}
	s.NextRank, s.NextProb = -1, math.NaN()
	if c.NextRank != nil && c.NextProb != nil {
		s.NextRank, s.NextProb = *c.NextRank, float64(*c.NextProb)
	}
	return s
}

// hasNext reports whether the cells carry the next token's rank and
// probability (the lens was asked for them).
func (d *Document) hasNext() bool {
	for _, row := range d.Cells {
		for _, c := range row {
			if c.NextRank != nil {
				return true
			}
		}
	}
	return false
}

// maxValue is the largest finite value of a metric among the cells (0 if
// none), the top of a relative metric's scale.
func (d *Document) maxValue(m Metric) float64 {
	top := 0.0
	for _, row := range d.Cells {
		for _, c := range row {
			if v := m.Value(c.stats()); !math.IsNaN(v) && !math.IsInf(v, 0) {
				top = max(top, v)
			}
		}
	}
	return top
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
