package tune

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/logitlens/logitlens/inference/sgemm"
)

// unembedding is the frozen product logits = y·W_Uᵀ [N,C]·[C,V] as one
// gorgonia op, with its gradient ∂/∂y = g·W_U [N,V]·[V,C]. Both products
// run on sgemm's prepared operands: W_U is packed for the kernels once per
// training run, where gorgonia's Mul (tensor.MatMul) repacks the 50257-wide
// matrix on every call; the products themselves are the same Sgemm.
type unembedding struct {
	fwd  *sgemm.Operand // B = W_Uᵀ [C,V]
	bwd  *sgemm.Operand // B = W_U [V,C]
	c, v int
}

// newUnembedding prepares W_U ([V,C], row-major) and W_Uᵀ ([C,V]).
func newUnembedding(wu, wuT []float32, c, v int) *unembedding {
	return &unembedding{fwd: sgemm.NewTransposed(wu, v, c), bwd: sgemm.NewTransposed(wuT, c, v), c: c, v: v}
}

// apply adds the op to a graph: logits of y [N,C].
func (u *unembedding) apply(y *G.Node) (*G.Node, error) {
	return G.ApplyOp(&unembedOp{u: u}, y)
}

// close frees the packed operands.
func (u *unembedding) close() {
	u.fwd.Close()
	u.bwd.Close()
}

// unembedOp is y ↦ y·W_Uᵀ.
type unembedOp struct{ u *unembedding }

func (op *unembedOp) Arity() int { return 1 }
func (op *unembedOp) Type() hm.Type {
	m := G.TensorType{Dims: 2, Of: tensor.Float32}
	return hm.NewFnType(m, m)
}
func (op *unembedOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) != 2 || s[1] != op.u.c {
		return nil, fmt.Errorf("tune: unembedding of shape %v, want [N,%d]", in[0], op.u.c)
	}
	return tensor.Shape{s[0], op.u.v}, nil
}
func (op *unembedOp) ReturnsPtr() bool      { return false }
func (op *unembedOp) CallsExtern() bool     { return false }
func (op *unembedOp) OverwritesInput() int  { return -1 }
func (op *unembedOp) String() string        { return "Unembed" }
func (op *unembedOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "Unembed%p", op.u) }
func (op *unembedOp) Hashcode() uint32      { return hashOf(op) }

func (op *unembedOp) Do(in ...G.Value) (G.Value, error) {
	y, err := matrixOf(in, op.u.c)
	if err != nil {
		return nil, err
	}
	out := tensor.New(tensor.WithShape(y.Shape()[0], op.u.v), tensor.Of(tensor.Float32))
	return op.UsePreallocDo(out, in...)
}

func (op *unembedOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	y, err := matrixOf(in, op.u.c)
	if err != nil {
		return nil, err
	}
	out := prealloc.(*tensor.Dense)
	op.u.fwd.Mul(out.Float32s(), y.Float32s(), y.Shape()[0]) // [N,C] @ [C,V] -> [N,V]
	return out, nil
}

func (op *unembedOp) DiffWRT(int) []bool { return []bool{true} }

func (op *unembedOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dy, err := G.ApplyOp(&unembedGradOp{u: op.u}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dy}, nil
}

// unembedGradOp is g ↦ g·W_U.
type unembedGradOp struct{ u *unembedding }

func (op *unembedGradOp) Arity() int { return 1 }
func (op *unembedGradOp) Type() hm.Type {
	m := G.TensorType{Dims: 2, Of: tensor.Float32}
	return hm.NewFnType(m, m)
}
func (op *unembedGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok || len(s) != 2 || s[1] != op.u.v {
		return nil, fmt.Errorf("tune: unembedding gradient of shape %v, want [N,%d]", in[0], op.u.v)
	}
	return tensor.Shape{s[0], op.u.c}, nil
}
func (op *unembedGradOp) ReturnsPtr() bool      { return false }
func (op *unembedGradOp) CallsExtern() bool     { return false }
func (op *unembedGradOp) OverwritesInput() int  { return -1 }
func (op *unembedGradOp) String() string        { return "UnembedGrad" }
func (op *unembedGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "UnembedGrad%p", op.u) }
func (op *unembedGradOp) Hashcode() uint32      { return hashOf(op) }

func (op *unembedGradOp) Do(in ...G.Value) (G.Value, error) {
	g, err := matrixOf(in, op.u.v)
	if err != nil {
		return nil, err
	}
	out := tensor.New(tensor.WithShape(g.Shape()[0], op.u.c), tensor.Of(tensor.Float32))
	return op.UsePreallocDo(out, in...)
}

func (op *unembedGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	g, err := matrixOf(in, op.u.v)
	if err != nil {
		return nil, err
	}
	out := prealloc.(*tensor.Dense)
	op.u.bwd.Mul(out.Float32s(), g.Float32s(), g.Shape()[0]) // [N,V] @ [V,C] -> [N,C]
	return out, nil
}

// matrixOf checks that in is one float32 matrix of cols columns.
func matrixOf(in []G.Value, cols int) (*tensor.Dense, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("tune: %d inputs, want 1", len(in))
	}
	d, ok := in[0].(*tensor.Dense)
	if !ok || d.Dtype() != tensor.Float32 || d.Dims() != 2 || d.Shape()[1] != cols {
		return nil, fmt.Errorf("tune: want a float32 matrix of %d columns, got %v", cols, in[0])
	}
	if d.IsMaterializable() { // a view: the products read the backing array row-major
		d = d.Materialize().(*tensor.Dense)
	}
	return d, nil
}
