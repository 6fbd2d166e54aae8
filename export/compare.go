package export

import (
	"math"

	"github.com/logitlens/logitlens/display"
	"github.com/logitlens/logitlens/inference"
)

// Comparison is a document's "compare" block: run B, which differs from the
// document's run A in one thing, and every right-aligned cell's comparison.
// Column j pairs A's position offset_a+j with B's position offset_b+j
// (offset = T − columns), so the last tokens face each other; the longer
// prompt's first positions have no partner.
type Comparison struct {
	Alignment string `json:"alignment"` // "right"
	Columns   int    `json:"columns"`   // n = min(T_A, T_B)
	OffsetA   int    `json:"offset_a"`  // T_A − n
	OffsetB   int    `json:"offset_b"`  // T_B − n
	B         RunB   `json:"b"`
	// IDsB are B's token ids, as the reference's ids_b.
	IDsB        []int              `json:"ids_b"`
	Conventions CompareConventions `json:"conventions"`
	// Cells are [row][column], rows as the document's.
	Cells [][]PairInfo `json:"cells"`
	// UnpairedB is run B's cells at its first offset_b positions, which
	// have no partner in A ([row][position]); absent when B is not the
	// longer prompt. (A's unpaired positions are the document's own cells.)
	UnpairedB [][]UnpairedInfo `json:"unpaired_b,omitempty"`
}

// UnpairedInfo is run B's cell at a position that has no partner in A:
// nothing is compared there, but B's prediction is kept.
type UnpairedInfo struct {
	Top1B int        `json:"top1_b"` // -1 where B's cell is not finite
	TopB  []TopEntry `json:"top_b"`
}

// RunB says what run B changes and holds its tokens.
type RunB struct {
	// Differs is what B changes: "prompt", "model" or "lens".
	Differs string `json:"differs"`
	// Prompt is B's prompt (the same as A's unless Differs is "prompt").
	Prompt string `json:"prompt"`
	// Model is B's model (A's unless Differs is "model").
	Model ModelInfo `json:"model"`
	// Lens is B's lens (A's unless Differs is "lens").
	Lens   LensInfo   `json:"lens"`
	Tokens []TokenRef `json:"tokens"`
}

// PairInfo is one aligned cell's comparison (nats, probabilities).
type PairInfo struct {
	KLAB Float `json:"kl_ab"` // KL(P_A ‖ P_B)
	// Top1A and Top1B are each run's top-1 id (-1 where not finite), as
	// the reference's top1_b; TopB is B's top-k with text (A's top-k is
	// the document's cell at A's position).
	Top1A int        `json:"top1_a"`
	Top1B int        `json:"top1_b"`
	TopB  []TopEntry `json:"top_b"`
	// ProbAOfTop1A is P_A(top1_a), ProbBOfTop1A P_B(top1_a) and
	// RankBOfTop1A its rank under B (0-based).
	ProbAOfTop1A Float `json:"prob_a_of_top1_a"`
	ProbBOfTop1A Float `json:"prob_b_of_top1_a"`
	RankBOfTop1A int   `json:"rank_b_of_top1_a"`
	DeltaTop1    Float `json:"delta_top1"` // P_B(top1_a) − P_A(top1_a)
	Top1Differs  bool  `json:"top1_differs"`
	// TargetProbB and DeltaTarget (P_B − P_A of the pinned target) are
	// present with a target.
	TargetProbB *Float `json:"target_prob_b,omitempty"`
	DeltaTarget *Float `json:"delta_target,omitempty"`
	NonFinite   string `json:"nonfinite,omitempty"`
}

// CompareConventions state what the compare block's numbers mean.
type CompareConventions struct {
	Alignment string `json:"alignment"`
	KL        string `json:"kl_ab"`
	Top1      string `json:"top1"`
	Delta     string `json:"delta"`
}

var compareConventions = CompareConventions{
	Alignment: "right: with n = min(T_A, T_B), column j pairs A's position T_A-n+j with B's position T_B-n+j; the longer prompt's first positions are unpaired",
	KL:        "KL(P_A || P_B) in nats over the whole vocabulary, per row and column",
	Top1:      "top-1 ids, ties by smaller id; top1_differs when A's and B's differ",
	Delta:     "delta_top1 = P_B(top1_a) - P_A(top1_a); delta_target = P_B(target) - P_A(target)",
}

// AddComparison builds the document's compare block from c, whose run A
// is the document's lens, with B's model as srcB and what B changes in b
// (Differs, Prompt; the model, lens and tokens are filled in here).
func (d *Document) AddComparison(c *inference.Comparison, srcB Source, b RunB) {
	b.Lens = LensInfo{Kind: "logit"}
	if c.B.Tuned != nil {
		b.Lens = LensInfo{Kind: "tuned", Source: c.B.Tuned.Source}
	}
	info := srcB.Info()
	cfg := info.Config
	b.Model = ModelInfo{ID: info.ID, NLayer: cfg.NLayer, NEmbd: cfg.NEmbd, NHead: cfg.NHead,
		NPositions: cfg.NPositions, VocabSize: cfg.VocabSize}
	b.Tokens = nil
	for _, id := range c.B.IDs {
		b.Tokens = append(b.Tokens, tokenRef(srcB, id))
	}
	cmp := &Comparison{Alignment: "right", Columns: c.Columns, OffsetA: c.PosA(0), OffsetB: c.PosB(0),
		B: b, IDsB: append([]int{}, c.B.IDs...), Conventions: compareConventions}
	cmp.Cells = make([][]PairInfo, len(c.Cells))
	for r, row := range c.Cells {
		cmp.Cells[r] = make([]PairInfo, len(row))
		for j, pc := range row {
			cb := c.B.Cells[r][c.PosB(j)]
			pi := PairInfo{KLAB: Float(pc.KL), Top1A: pc.Top1A, Top1B: pc.Top1B,
				ProbAOfTop1A: Float(pc.ProbA), ProbBOfTop1A: Float(pc.ProbB), RankBOfTop1A: pc.RankB,
				DeltaTop1: Float(pc.DeltaTop1()), Top1Differs: pc.Top1Differs(), TopB: make([]TopEntry, 0, len(cb.Top))}
			for _, p := range cb.Top {
				t := tokenRef(srcB, p.ID)
				pi.TopB = append(pi.TopB, TopEntry{ID: t.ID, Text: t.Text, Display: t.Display, Prob: Float(p.Prob)})
			}
			if c.Target >= 0 {
				pb, delta := Float(pc.TargetB), Float(pc.DeltaTarget())
				pi.TargetProbB, pi.DeltaTarget = &pb, &delta
			}
			if pc.NonFinite {
				pi.NonFinite = "A's or B's logits are not finite here"
			}
			cmp.Cells[r][j] = pi
		}
	}
	if off := c.PosB(0); off > 0 {
		cmp.UnpairedB = make([][]UnpairedInfo, len(c.Cells))
		for r := range cmp.UnpairedB {
			cmp.UnpairedB[r] = make([]UnpairedInfo, off)
			for p := range off {
				cb := c.B.Cells[r][p]
				u := UnpairedInfo{Top1B: -1, TopB: make([]TopEntry, 0, len(cb.Top))}
				for _, e := range cb.Top {
					t := tokenRef(srcB, e.ID)
					u.TopB = append(u.TopB, TopEntry{ID: t.ID, Text: t.Text, Display: t.Display, Prob: Float(e.Prob)})
				}
				if len(u.TopB) > 0 {
					u.Top1B = u.TopB[0].ID
				}
				cmp.UnpairedB[r][p] = u
			}
		}
	}
	d.Compare = cmp
}

// unpairedTop1 is the top-1, at row r, of the one run that has an
// unpaired column (A's at position pa, else B's at pb), and whether it
// has one.
func (c *Comparison) unpairedTop1(d *Document, r, pa, pb int) (TopEntry, bool) {
	var top []TopEntry
	switch {
	case pa >= 0:
		top = d.Cells[r][pa].Top
	case pb >= 0 && r < len(c.UnpairedB) && pb < len(c.UnpairedB[r]):
		top = c.UnpairedB[r][pb].TopB
	}
	if len(top) == 0 {
		return TopEntry{}, false
	}
	return top[0], true
}

// tokenRef is a token of src's vocabulary; an id below 0 is no token.
func tokenRef(src Source, id int) TokenRef {
	if id < 0 {
		return TokenRef{ID: id}
	}
	b := src.TokenBytes(id)
	return TokenRef{ID: id, Text: validText(b), Display: display.Token(b)}
}

// pairCell is the aligned cell as the inference package states it, for
// Metric.PairValue.
func (p PairInfo) pairCell() inference.PairCell {
	c := inference.PairCell{KL: float64(p.KLAB), Top1A: p.Top1A, Top1B: p.Top1B,
		ProbA: float64(p.ProbAOfTop1A), ProbB: float64(p.ProbBOfTop1A), RankB: p.RankBOfTop1A,
		NonFinite: p.NonFinite != ""}
	if p.DeltaTarget != nil {
		c.TargetB = float64(*p.TargetProbB)
		c.TargetA = c.TargetB - float64(*p.DeltaTarget)
	}
	return c
}

// maxKLAB is the largest finite KL(P_A ‖ P_B) of the comparison.
func (c *Comparison) maxKLAB() float64 {
	m := 0.0
	for _, row := range c.Cells {
		for _, p := range row {
			if p.KLAB.Finite() {
				m = math.Max(m, float64(p.KLAB))
			}
		}
	}
	return m
}

// width is the number of display columns of a comparison: the longer
// prompt's length, right-aligned.
func (c *Comparison) width(tA int) int { return max(tA, len(c.B.Tokens)) }

// posA and posB are A's and B's positions at display column x of a
// comparison drawn w columns wide; -1 where that run has none.
func (c *Comparison) posA(x, w, tA int) int { return pos(x, w, tA) }
func (c *Comparison) posB(x, w int) int     { return pos(x, w, len(c.B.Tokens)) }

func pos(x, w, T int) int {
	if p := x - (w - T); p >= 0 {
		return p
	}
	return -1
}
