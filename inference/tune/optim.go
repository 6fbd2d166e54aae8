package tune

import (
	"fmt"
	"math"
)

// The optimisers of the tuned-lens package (tuned_lens/scripts/ingredients.py),
// written out as torch.optim computes them. gorgonia's solvers do not
// offer Nesterov momentum, AMSGrad or clipping by the global norm, and the
// point is to train as the package does, so the updates live here; the
// gradients come from the gorgonia graph.

// Optimizer names.
const (
	SGD  = "sgd"  // SGD, Nesterov momentum 0.9, lr = scale·(1 − 0.9): the package's default
	Adam = "adam" // Adam with AMSGrad, β = (0.9, 0.999), lr = scale·1e-3
)

// Optimiser constants, as the package sets them.
const (
	momentum    = 0.9
	beta2       = 0.999
	adamEps     = 1e-8
	weightDecay = 1e-3
	maxGradNorm = 1.0
)

// optimizer updates parameters in place from their gradients.
type optimizer interface {
	// step applies update number t (1-based) with learning rate lr to
	// params, given grads of the same layout (one slice per tensor).
	step(params, grads [][]float32, lr float64, t int)
	// state returns the optimiser's buffers by name, each laid out like
	// params: a checkpoint saves them, and resuming fills them in place.
	state() map[string][][]float32
}

func newOptimizer(name string, params [][]float32) (optimizer, error) {
	zeros := func() [][]float32 {
		z := make([][]float32, len(params))
		for i, p := range params {
			z[i] = make([]float32, len(p))
		}
		return z
	}
	switch name {
	case SGD:
		return &nesterov{buf: zeros()}, nil
	case Adam:
		return &amsgrad{m: zeros(), v: zeros(), vmax: zeros()}, nil
	}
	return nil, fmt.Errorf("tune: unknown optimizer %q (want %q or %q)", name, SGD, Adam)
}

// baseLR is the learning rate a scale of 1 means for each optimiser: the
// package undoes torch's 1/(1 − β) momentum gain for SGD.
func baseLR(name string, scale float64) float64 {
	if name == Adam {
		return scale * 1e-3
	}
	return scale * (1 - momentum)
}

// warmupSteps is the package's default warm-up: none for SGD, a fifth of
// the steps (at most 1000) for Adam.
func warmupSteps(name string, steps int) int {
	if name == Adam {
		return min(1000, steps/5)
	}
	return 0
}

// lrFactor is the schedule at step k (0-based) of steps: linear warm-up,
// then linear decay to zero at the end (transformers'
// get_linear_schedule_with_warmup). The package passes steps − warmup as
// the total, which leaves its last warm-up-many Adam steps at zero; here
// the decay ends at the last step.
func lrFactor(k, steps, warmup int) float64 {
	if k < warmup {
		return float64(k) / float64(warmup)
	}
	return max(0, float64(steps-k)/float64(steps-warmup))
}

// clipGradNorm scales grads so their global L2 norm is at most maxNorm, as
// torch.nn.utils.clip_grad_norm_ does, and returns the norm before.
func clipGradNorm(grads [][]float32, maxNorm float64) float64 {
	var ss float64
	for _, g := range grads {
		for _, x := range g {
			ss += float64(x) * float64(x)
		}
	}
	norm := math.Sqrt(ss)
	if c := maxNorm / (norm + 1e-6); c < 1 {
		for _, g := range grads {
			for i := range g {
				g[i] = float32(float64(g[i]) * c)
			}
		}
	}
	return norm
}

// nesterov is torch.optim.SGD(momentum=0.9, nesterov=True,
// weight_decay=1e-3, dampening=0):
//
//	g ← g + wd·p;  buf ← μ·buf + g;  p ← p − lr·(g + μ·buf).
type nesterov struct{ buf [][]float32 }

func (o *nesterov) step(params, grads [][]float32, lr float64, _ int) {
	for i, p := range params {
		g, b := grads[i], o.buf[i]
		for j := range p {
			d := g[j] + weightDecay*p[j]
			b[j] = momentum*b[j] + d
			p[j] -= float32(lr) * (d + momentum*b[j])
		}
	}
}

func (o *nesterov) state() map[string][][]float32 {
	return map[string][][]float32{"momentum_buffer": o.buf}
}

// amsgrad is torch.optim.Adam(betas=(0.9, 0.999), eps=1e-8,
// weight_decay=1e-3, amsgrad=True):
//
//	g ← g + wd·p;  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  v̂ ← max(v̂, v);
//	p ← p − lr/(1−β₁ᵗ) · m / (√v̂/√(1−β₂ᵗ) + ε).
type amsgrad struct{ m, v, vmax [][]float32 }

func (o *amsgrad) step(params, grads [][]float32, lr float64, t int) {
	bc1 := 1 - math.Pow(momentum, float64(t))
	bc2 := math.Sqrt(1 - math.Pow(beta2, float64(t)))
	for i, p := range params {
		g, m, v, vm := grads[i], o.m[i], o.v[i], o.vmax[i]
		for j := range p {
			d := g[j] + weightDecay*p[j]
			m[j] = momentum*m[j] + (1-momentum)*d
			v[j] = beta2*v[j] + (1-beta2)*d*d
			vm[j] = max(vm[j], v[j])
			denom := math.Sqrt(float64(vm[j]))/bc2 + adamEps
			p[j] -= float32(lr / bc1 * float64(m[j]) / denom)
		}
	}
}

func (o *amsgrad) state() map[string][][]float32 {
	return map[string][][]float32{"exp_avg": o.m, "exp_avg_sq": o.v, "max_exp_avg_sq": o.vmax}
}
