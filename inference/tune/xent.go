package tune

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"runtime"
	"sync"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// softmaxXent is the loss as one gorgonia op: the cross-entropy of target
// distributions p against softmax(z), summed over rows,
//
//	cost = −Σ_r Σ_v p[r,v]·log_softmax(z[r])[v]
//	∂cost/∂z[r,v] = (Σ_u p[r,u])·softmax(z[r])[v] − p[r,v].
//
// Built from gorgonia's LogSoftMax, HadamardProd and Sum, the same loss
// costs about three times as much on a CPU (docs/TUNED.md): every
// element-wise op allocates and copies a [N,V] result, Sum's gradient
// repeats a scalar into one, and the generic softmax kernels exponentiate
// twice. Here the forward pass keeps exp(z − max) per row and the gradient
// reuses it, parallel over rows.
type softmaxXent struct {
	q     []float32 // exp(z − rowmax), [N,V], from the last forward pass
	sums  []float64 // per row: Σ_v exp(z − rowmax)
	psums []float64 // per row: Σ_v p
}

// crossEntropy applies softmaxXent to logits z [N,V] and targets p [N,V].
func crossEntropy(z, p *G.Node) (*G.Node, error) {
	return G.ApplyOp(&softmaxXent{}, z, p)
}

func (op *softmaxXent) Arity() int { return 2 }
func (op *softmaxXent) Type() hm.Type {
	m := G.TensorType{Dims: 2, Of: tensor.Float32}
	return hm.NewFnType(m, m, tensor.Float32)
}
func (op *softmaxXent) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}
func (op *softmaxXent) ReturnsPtr() bool     { return false }
func (op *softmaxXent) CallsExtern() bool    { return false }
func (op *softmaxXent) OverwritesInput() int { return -1 }
func (op *softmaxXent) String() string       { return "SoftmaxXent" }

// WriteHash includes the op's address: its cache belongs to one node.
func (op *softmaxXent) WriteHash(h hash.Hash) { fmt.Fprintf(h, "SoftmaxXent%p", op) }
func (op *softmaxXent) Hashcode() uint32      { return hashOf(op) }

func (op *softmaxXent) Do(inputs ...G.Value) (G.Value, error) {
	z, p, err := twoMatrices(inputs)
	if err != nil {
		return nil, err
	}
	n, v := z.Shape()[0], z.Shape()[1]
	zs, ps := z.Float32s(), p.Float32s()
	if len(op.q) != n*v {
		op.q = make([]float32, n*v)
		op.sums = make([]float64, n)
		op.psums = make([]float64, n)
	}
	costs := make([]float64, n)
	parallelRows(n, func(r int) {
		zr, pr, qr := zs[r*v:(r+1)*v], ps[r*v:(r+1)*v], op.q[r*v:(r+1)*v]
		m := zr[0]
		for _, x := range zr {
			m = max(m, x)
		}
		var s, psum, pz float64
		for i, x := range zr {
			e := math.Exp(float64(x - m))
			qr[i] = float32(e)
			s += e
			psum += float64(pr[i])
			pz += float64(pr[i]) * float64(x-m)
		}
		op.sums[r], op.psums[r] = s, psum
		costs[r] = psum*math.Log(s) - pz // −Σ p·(z − m − log s)
	})
	var cost float64
	for _, c := range costs {
		cost += c
	}
	return G.NewF32(float32(cost)), nil
}

func (op *softmaxXent) DiffWRT(inputs int) []bool { return []bool{true, false} }

func (op *softmaxXent) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dz, err := G.ApplyOp(&softmaxXentGrad{fwd: op}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dz, nil}, nil
}

// softmaxXentGrad(z, p, g) is ∂cost/∂z times the incoming scalar gradient
// g, from the forward op's cache.
type softmaxXentGrad struct{ fwd *softmaxXent }

func (op *softmaxXentGrad) Arity() int { return 3 }
func (op *softmaxXentGrad) Type() hm.Type {
	m := G.TensorType{Dims: 2, Of: tensor.Float32}
	return hm.NewFnType(m, m, tensor.Float32, m)
}
func (op *softmaxXentGrad) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("tune: softmaxXentGrad: input shape %v", in[0])
	}
	return s.Clone(), nil
}
func (op *softmaxXentGrad) ReturnsPtr() bool      { return false }
func (op *softmaxXentGrad) CallsExtern() bool     { return false }
func (op *softmaxXentGrad) OverwritesInput() int  { return -1 }
func (op *softmaxXentGrad) String() string        { return "SoftmaxXentGrad" }
func (op *softmaxXentGrad) WriteHash(h hash.Hash) { fmt.Fprintf(h, "SoftmaxXentGrad%p", op.fwd) }
func (op *softmaxXentGrad) Hashcode() uint32      { return hashOf(op) }

func (op *softmaxXentGrad) Do(inputs ...G.Value) (G.Value, error) {
	z, ok := inputs[0].(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("tune: softmaxXentGrad: input is %T", inputs[0])
	}
	out := tensor.New(tensor.WithShape(z.Shape().Clone()...), tensor.Of(tensor.Float32))
	return op.UsePreallocDo(out, inputs...)
}

func (op *softmaxXentGrad) UsePreallocDo(prealloc G.Value, inputs ...G.Value) (G.Value, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("tune: softmaxXentGrad: %d inputs", len(inputs))
	}
	z, p, err := twoMatrices(inputs[:2])
	if err != nil {
		return nil, err
	}
	g, err := scalarOf(inputs[2])
	if err != nil {
		return nil, err
	}
	out, ok := prealloc.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("tune: softmaxXentGrad: output is %T", prealloc)
	}
	n, v := z.Shape()[0], z.Shape()[1]
	if len(op.fwd.q) != n*v {
		return nil, fmt.Errorf("tune: softmaxXentGrad ran before its forward pass")
	}
	ds, ps := out.Float32s(), p.Float32s()
	parallelRows(n, func(r int) {
		a := float32(float64(g) * op.fwd.psums[r] / op.fwd.sums[r]) // g·Σp / Σexp
		qr, pr, dr := op.fwd.q[r*v:(r+1)*v], ps[r*v:(r+1)*v], ds[r*v:(r+1)*v]
		for i, q := range qr {
			dr[i] = a*q - g*pr[i]
		}
	})
	return out, nil
}

// twoMatrices checks that inputs are two float32 matrices of one shape.
func twoMatrices(inputs []G.Value) (*tensor.Dense, *tensor.Dense, error) {
	if len(inputs) != 2 {
		return nil, nil, fmt.Errorf("tune: softmaxXent: %d inputs", len(inputs))
	}
	z, ok1 := inputs[0].(*tensor.Dense)
	p, ok2 := inputs[1].(*tensor.Dense)
	if !ok1 || !ok2 || z.Dtype() != tensor.Float32 || p.Dtype() != tensor.Float32 || z.Dims() != 2 || !z.Shape().Eq(p.Shape()) {
		return nil, nil, fmt.Errorf("tune: softmaxXent: want two float32 matrices of one shape")
	}
	return z, p, nil
}

func scalarOf(v G.Value) (float32, error) {
	switch s := v.(type) {
	case *G.F32:
		return float32(*s), nil
	case *tensor.Dense:
		if s.Size() == 1 && s.Dtype() == tensor.Float32 {
			return s.Float32s()[0], nil
		}
	}
	return 0, fmt.Errorf("tune: want a float32 scalar, got %T", v)
}

func hashOf(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// parallelRows runs f(r) for r = 0..n-1 on GOMAXPROCS goroutines.
func parallelRows(n int, f func(r int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := w; r < n; r += workers {
				f(r)
			}
		}()
	}
	wg.Wait()
}
