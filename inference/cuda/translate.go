package cuda

import (
	"errors"
	"fmt"
)

// Translators are a tuned lens's affine translators resident on the device,
// one per layer l < L (Belrose et al. 2023): the lens decodes
// ln_f(h + h·W_lᵀ + b_l) instead of ln_f(h). W_l is [C,C] in
// torch.nn.Linear's layout ([out, in]), so h·W_lᵀ is a GEMM with W_l used
// transposed, as W_U is; the residual add and the bias are the forward
// pass's residual_add and add_bias kernels.
type Translators struct {
	m      *Model
	w, b   []buffer // per layer; b[l].p is 0 for a lens without bias
	allocs []DevicePtr
}

// UploadTranslators copies a tuned lens's translators to the device:
// weights[l] [C,C] and biases[l] [C] (biases nil, or an entry nil, for none).
func (m *Model) UploadTranslators(weights, biases [][]float32) (*Translators, error) {
	C := m.cfg.NEmbd
	if len(weights) != m.cfg.NLayer || (biases != nil && len(biases) != len(weights)) {
		return nil, fmt.Errorf("cuda: %d translator weights and %d biases for %d layers", len(weights), len(biases), m.cfg.NLayer)
	}
	t := &Translators{m: m}
	err := m.dev.do(func() error {
		up := func(s []float32, n int) (buffer, error) {
			if len(s) != n {
				return buffer{}, fmt.Errorf("cuda: translator of %d values, want %d", len(s), n)
			}
			p, err := m.dev.drv.Alloc(4 * n)
			if err != nil {
				return buffer{}, err
			}
			t.allocs = append(t.allocs, p)
			return buffer{p, n}, m.dev.drv.HtoD(p, f32Bytes(s))
		}
		for l, w := range weights {
			wb, err := up(w, C*C)
			if err != nil {
				return err
			}
			var bb buffer
			if biases != nil && biases[l] != nil {
				if bb, err = up(biases[l], C); err != nil {
					return err
				}
			}
			t.w, t.b = append(t.w, wb), append(t.b, bb)
		}
		return nil
	})
	if err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Close frees the translators.
func (t *Translators) Close() error {
	var errs []error
	t.m.dev.do(func() error { //nolint:errcheck // errors are collected
		for _, p := range t.allocs {
			errs = append(errs, t.m.dev.drv.Free(p))
		}
		return nil
	})
	t.allocs, t.w, t.b = nil, nil, nil
	return errors.Join(errs...)
}

// translate queues x += x·W_lᵀ + b_l for the n rows at x [n,C]; the device
// lock is held.
func (s *State) translate(q *queue, x DevicePtr, t *Translators, l, n int) {
	C := s.m.cfg.NEmbd
	q.gemm("gemm translator", gemmRowMajor(s.trOut.p, x, t.w[l].p, n, C, C, true)) // [n,C] @ [C,C]ᵀ -> [n,C]
	g, b := elementwise(n * C)
	q.launch("residual_add", g, b, 0, PtrArg(x), PtrArg(s.trOut.p), IntArg(n*C))
	if t.b[l].p != 0 {
		q.launch("add_bias", g, b, 0, PtrArg(x), PtrArg(t.b[l].p), IntArg(n), IntArg(C))
	}
}
