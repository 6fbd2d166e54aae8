package tune

import (
	"context"
	"fmt"
	"math"

	"github.com/logitlens/logitlens/inference/sgemm"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// RowStats are a lens row's means over held-out positions, in nats.
type RowStats struct {
	KL float64 // KL(P_output ‖ P_row), over every position
	CE float64 // −log P_row(next token), over positions that have one
}

// Evaluate decodes every row h[0..L] of the windows with the logit lens
// (lens nil) or a tuned lens, and returns each row's mean KL to the
// model's output and mean next-token cross-entropy (Belrose et al. 2023,
// figure 1). Row L is the output itself (KL 0).
func Evaluate(ctx context.Context, m Model, lens *tunedlens.Lens, windows [][]int) ([]RowStats, error) {
	cfg := m.Config()
	L, C, V := cfg.NLayer, cfg.NEmbd, cfg.VocabSize
	if lens != nil {
		if err := lens.Config.Check(C, L); err != nil {
			return nil, fmt.Errorf("tune: %w", err)
		}
	}
	sgemm.Use()
	t := &trainer{m: m, L: L, C: C, V: V, corpus: &Corpus{Window: cfg.NPositions}}
	gamma, beta := m.FinalNorm()
	wu := m.Unembedding()
	t.hd = newHead(gamma, beta, float32(cfg.LayerNormEpsilon), wu, C, V)
	defer t.hd.close()
	N := min(microRows, cfg.NPositions)
	fwd, err := newForwardGraph(t.hd, N) // t.hd is closed when Evaluate returns
	if err != nil {
		return nil, err
	}
	var wts [][]float32
	if lens != nil {
		for _, tr := range lens.Translators {
			wt := make([]float32, C*C)
			transpose(wt, tr.Weight, C)
			wts = append(wts, wt)
		}
	}
	sums := make([]RowStats, L+1)
	var positions, predicted int
	hbuf := make([]float32, N*C)
	logp := make([]float32, N*V)
	logq := make([]float32, N*V)
	for _, ids := range windows {
		hs, err := m.Residuals(ctx, ids)
		if err != nil {
			return nil, err
		}
		T := len(ids)
		for a := 0; a < T; a += N {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			rows := min(N, T-a)
			gather(hbuf, hs[L], a, rows, C)
			if err := fwd.run(hbuf, nil, nil, logp); err != nil {
				return nil, err
			}
			logSoftmaxRows(logp, V)
			for l := 0; l <= L; l++ {
				gather(hbuf, hs[l], a, rows, C)
				var wt, b []float32
				if lens != nil && l < L {
					wt, b = wts[l], lens.Translators[l].Bias
				}
				if err := fwd.run(hbuf, wt, b, logq); err != nil {
					return nil, err
				}
				logSoftmaxRows(logq, V)
				for r := range rows {
					pr, qr := logp[r*V:(r+1)*V], logq[r*V:(r+1)*V]
					var kl float64
					for i := range pr {
						kl += math.Exp(float64(pr[i])) * float64(pr[i]-qr[i])
					}
					sums[l].KL += kl
					if a+r+1 < T {
						sums[l].CE -= float64(qr[ids[a+r+1]])
					}
				}
			}
			positions += rows
			predicted += min(rows, T-1-a)
		}
	}
	for l := range sums {
		sums[l].KL /= float64(max(1, positions))
		sums[l].CE /= float64(max(1, predicted))
	}
	return sums, nil
}

// logSoftmaxRows replaces each row of z [N,V] by its log-softmax.
func logSoftmaxRows(z []float32, V int) {
	parallelRows(len(z)/V, func(r int) {
		zr := z[r*V : (r+1)*V]
		m := zr[0]
		for _, x := range zr {
			m = max(m, x)
		}
		var s float64
		for _, x := range zr {
			s += math.Exp(float64(x - m))
		}
		lse := float64(m) + math.Log(s)
		for i, x := range zr {
			zr[i] = float32(float64(x) - lse)
		}
	})
}
