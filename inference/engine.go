package inference

import (
	"fmt"

	"gorgonia.org/tensor"
)

// Engine runs the ops the forward pass and the lens are made of. The model
// code (forward.go, lens.go) calls only these, so a CUDA engine runs the same
// model code as the CPU one. Tensors are row-major float32 *tensor.Dense;
// a matrix operand may be a transposed view (b.T()) that is never copied.
type Engine interface {
	// Name says what runs the ops, e.g. "cpu".
	Name() string
	// MatMul sets out[M,N] = a[M,K] @ b[K,N].
	MatMul(out, a, b *tensor.Dense) error
	// AddBias adds bias[N] to every row of x[M,N].
	AddBias(x, bias *tensor.Dense)
	// Add sets x += y, elementwise.
	Add(x, y *tensor.Dense)
	// LayerNorm sets out[M,C] = (x - mean) / sqrt(var + eps) * g + b, row by row, biased variance.
	LayerNorm(out, x, g, b *tensor.Dense, eps float32)
	// GELU applies the tanh approximation (gelu_new) to x in place.
	GELU(x *tensor.Dense)
	// Attention is causal multi-head attention of the queries q[T,C] at
	// positions p0..p0+T-1 against the cached keys and values k, v [p0+T, C]:
	// out[t] = softmax(q[t]·k[j]/sqrt(D) for j ≤ p0+t) · v, head by head.
	Attention(out, q, k, v *tensor.Dense, p0, heads int)
}

// CPU is the engine that runs on the host: tensor.MatMul (through whichever
// BLAS tensor.Use installed) and the plain loops of ops.go.
type CPU struct{}

var _ Engine = CPU{}

// Name implements Engine.
func (CPU) Name() string { return "cpu" }

// MatMul implements Engine through tensor.MatMul, which calls the installed
// BLAS Sgemm with a transposed operand passed as TransB (no copy).
func (CPU) MatMul(out, a, b *tensor.Dense) error {
	UseBestBLAS()
	if _, err := tensor.MatMul(a, b, tensor.WithReuse(out)); err != nil {
		return fmt.Errorf("inference: matmul %v @ %v: %w", a.Shape(), b.Shape(), err)
	}
	return nil
}

// AddBias implements Engine.
func (CPU) AddBias(x, bias *tensor.Dense) {
	addBias(x.Float32s(), bias.Float32s())
}

// Add implements Engine.
func (CPU) Add(x, y *tensor.Dense) {
	add(x.Float32s(), y.Float32s())
}

// LayerNorm implements Engine.
func (CPU) LayerNorm(out, x, g, b *tensor.Dense, eps float32) {
	layerNorm(out.Float32s(), x.Float32s(), g.Float32s(), b.Float32s(), x.Shape()[1], eps)
}

// GELU implements Engine.
func (CPU) GELU(x *tensor.Dense) { gelu(x.Float32s()) }

// Attention implements Engine.
func (CPU) Attention(out, q, k, v *tensor.Dense, p0, heads int) {
	C := q.Shape()[1]
	attention(out.Float32s(), q.Float32s(), k.Float32s(), v.Float32s(), q.Shape()[0], p0, C, heads)
}
