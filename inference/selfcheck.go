package inference

import (
	"context"
	"fmt"
	"math"
)

// A GPU path is new code on hardware the tests never saw. Before a model
// is used on a GPU, the lens of a few tokens of the user's own model runs
// on the GPU and on the CPU (the conformance-tested reference), and the
// two must agree: the same top-1 in every cell (or a tie there) and every
// top-k probability within selfCheckTol.

// selfCheckTol is the largest |Δprob| between the GPU's lens and the CPU's
// that the self-check accepts: float32 products summed in another order
// differ by ~1e-6.
const selfCheckTol = 1e-4

// selfCheckText is tokenized for the self-check; its first
// selfCheckTokens tokens are used.
const (
	selfCheckText   = "The Eiffel Tower is in the city of Paris, which"
	selfCheckTokens = 8
)

// SelfCheckError says how a device's lens differed from the CPU's.
type SelfCheckError struct {
	Device string  // the device checked, e.g. "cuda: NVIDIA H100 …"
	Err    error   // the device failed to compute the lens; nil when it did
	Where  string  // the cell with the largest difference, e.g. "layer 2, position 4"
	Prob   float64 // the largest |Δprob|
	// Top1Where is the first cell whose top-1 ids differ (and do not tie),
	// "" when none does; Top1 holds them there (CPU, device).
	Top1Where string
	Top1      [2]int
}

func (e *SelfCheckError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s failed its self-check: %v", e.Device, e.Err)
	}
	s := fmt.Sprintf("%s failed its self-check: its lens of a test prompt differs from the CPU's by up to %.2g in probability (%s)", e.Device, e.Prob, e.Where)
	if e.Top1Where != "" {
		s += fmt.Sprintf(" and first predicts another token at %s (%d instead of %d)", e.Top1Where, e.Top1[1], e.Top1[0])
	}
	return s
}

// Unwrap returns the device's error, if any.
func (e *SelfCheckError) Unwrap() error { return e.Err }

// SelfCheck computes the lens of a few tokens of m's tokenizer on m's
// backend and on cpu (a CPU backend of the same checkpoint) and returns
// how they differ, or nil when they agree: the same top-1 id in every cell
// (or two ids whose probabilities tie within 1e-6) and every top-k
// probability and the final top-1's within selfCheckTol.
func SelfCheck(ctx context.Context, m *Model, cpu Backend) *SelfCheckError {
	ids := m.tok.EncodeIDs(selfCheckText)
	ids = ids[:min(len(ids), selfCheckTokens, m.cfg.NPositions)]
	req := Request{IDs: ids, TopK: 5, Target: -1}
	fail := &SelfCheckError{Device: m.backend.Name()}
	run := func(b Backend) (*Lens, error) {
		sess := m.sessionOn(b)
		defer sess.Close()
		return sess.Lens(ctx, req, nil)
	}
	want, err := run(cpu)
	if err != nil {
		fail.Err = fmt.Errorf("the CPU's lens: %w", err)
		return fail
	}
	got, err := run(m.backend)
	if err != nil {
		fail.Err = err
		return fail
	}
	for r := range want.Cells {
		for t := range want.Cells[r] {
			c, g := want.Cells[r][t], got.Cells[r][t]
			where := fmt.Sprintf("%s, position %d", want.Rows[r].Name, t)
			if want.Rows[r].Kind != Embed {
				where = "layer " + where
			}
			if c.NonFinite != g.NonFinite {
				fail.Err = fmt.Errorf("at %s the CPU finds %s and the device %s", where, c.NonFinite, g.NonFinite)
				return fail
			}
			if c.NonFinite != Finite {
				continue
			}
			d := probDiff(c.FinalTop1Prob, g.FinalTop1Prob)
			for j := range min(len(c.Top), len(g.Top)) {
				d = max(d, probDiff(c.Top[j].Prob, g.Top[j].Prob))
			}
			top1 := len(c.Top) > 0 && len(g.Top) > 0 && c.Top[0].ID != g.Top[0].ID &&
				math.Abs(c.Top[0].Prob-g.Top[0].Prob) > 1e-6
			if top1 && fail.Top1Where == "" {
				fail.Top1Where, fail.Top1 = where, [2]int{c.Top[0].ID, g.Top[0].ID}
			}
			if fail.Where == "" || d > fail.Prob {
				fail.Prob, fail.Where = d, where
			}
		}
	}
	if fail.Prob > selfCheckTol || fail.Top1Where != "" {
		return fail
	}
	return nil
}

// probDiff is |a − b|, 0 when both are NaN (a statistic neither device
// has, e.g. the final top-1's probability where the final row is not
// finite) and +Inf when only one is.
func probDiff(a, b float64) float64 {
	switch an, bn := math.IsNaN(a), math.IsNaN(b); {
	case an && bn:
		return 0
	case an || bn:
		return math.Inf(1)
	}
	return math.Abs(a - b)
}
