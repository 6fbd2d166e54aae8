package tune

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The training graph of one translator, in gorgonia. Shape letters: N rows
// (positions) of a micro-batch, C = n_embd, V = vocabulary.
//
//	x      = h + h·Wt + b                  [N,C]   Wt = Weightᵀ (trained), b (trained)
//	y      = ln_f(x)                        [N,C]   frozen γ, β, eps
//	logits = y·W_Uᵀ                         [N,V]   frozen unembedding (unembed.go)
//	cost   = −Σ_rows Σ_v p·log_softmax(logits)      p = P_output of each row (input); softmaxXent
//
// cost is the cross-entropy H(P, Q) summed over rows (the trainer scales it
// and its gradients by 1/tokens-per-step); KL(P ‖ Q) = H(P, Q) − H(P), and H(P) does not depend
// on the translator, so both have the same gradient (the package's loss,
// tuned_lens/scripts/train_loop.py). One graph serves every layer: the
// trainer binds layer l's streams and translator before each run.
type graph struct {
	g       *G.ExprGraph
	h, p    *G.Node // inputs: streams [N,C], target probabilities [N,V]
	wt, b   *G.Node // the translator being trained
	cost    *G.Node
	dwt, db *G.Node // ∂cost/∂Wt, ∂cost/∂b
	vm      G.VM
	n, c, v int
	bias    bool
	wtVal   *tensor.Dense
	bVal    *tensor.Dense
	hVal    *tensor.Dense
	pVal    *tensor.Dense
}

// head is the frozen part every lens shares: ln_f and the unembedding.
type head struct {
	lnG, lnB []float32 // [C]
	eps      float32
	un       *unembedding // W_U, prepared for both products
	c, v     int
}

// newHead prepares ln_f and the unembedding W_U [V,C] for the graphs.
func newHead(gamma, beta []float32, eps float32, wu []float32, c, v int) *head {
	wuT := make([]float32, c*v) // W_Uᵀ, for the gradient's product
	for i := range v {
		for j := range c {
			wuT[j*v+i] = wu[i*c+j]
		}
	}
	return &head{lnG: gamma, lnB: beta, eps: eps, un: newUnembedding(wu, wuT, c, v), c: c, v: v}
}

// close frees the prepared unembedding.
func (hd *head) close() { hd.un.close() }

// layerNorm builds ln_f(x) = (x − mean)/sqrt(var + eps)·γ + β over the last axis.
func layerNorm(x, gamma, beta *G.Node, eps float32) (*G.Node, error) {
	mean, err := G.Mean(x, 1) //                                        [N]
	if err != nil {
		return nil, err
	}
	xc, err := G.BroadcastSub(x, mean, nil, []byte{1}) //               [N,C]
	if err != nil {
		return nil, err
	}
	sq, err := G.Square(xc)
	if err != nil {
		return nil, err
	}
	variance, err := G.Mean(sq, 1) //                                   [N] biased
	if err != nil {
		return nil, err
	}
	ve, err := G.Add(variance, G.NewConstant(eps))
	if err != nil {
		return nil, err
	}
	// Not InverseSqrt: its derivative in gorgonia v0.9.18 is wrong
	// (inverseSqrtDiffExpr divides the incoming gradient by 2y³ instead of
	// multiplying it by −y³/2); Sqrt and a division differentiate right.
	std, err := G.Sqrt(ve)
	if err != nil {
		return nil, err
	}
	xn, err := G.BroadcastHadamardDiv(xc, std, nil, []byte{1}) //       [N,C]
	if err != nil {
		return nil, err
	}
	scaled, err := G.BroadcastHadamardProd(xn, gamma, nil, []byte{0})
	if err != nil {
		return nil, err
	}
	return G.BroadcastAdd(scaled, beta, nil, []byte{0})
}

// newGraph builds and compiles the graph for micro-batches of n rows.
func newGraph(hd *head, n int, bias bool) (*graph, error) {
	gr := &graph{g: G.NewGraph(), n: n, c: hd.c, v: hd.v, bias: bias}
	c, v, g := hd.c, hd.v, gr.g
	gr.hVal = tensor.New(tensor.WithShape(n, c), tensor.Of(tensor.Float32))
	gr.pVal = tensor.New(tensor.WithShape(n, v), tensor.Of(tensor.Float32))
	gr.wtVal = tensor.New(tensor.WithShape(c, c), tensor.Of(tensor.Float32))
	gr.bVal = tensor.New(tensor.WithShape(c), tensor.Of(tensor.Float32))
	gr.h = G.NewMatrix(g, tensor.Float32, G.WithShape(n, c), G.WithName("h"), G.WithValue(gr.hVal))
	gr.p = G.NewMatrix(g, tensor.Float32, G.WithShape(n, v), G.WithName("p"), G.WithValue(gr.pVal))
	gr.wt = G.NewMatrix(g, tensor.Float32, G.WithShape(c, c), G.WithName("wt"), G.WithValue(gr.wtVal))
	gamma, beta := headNodes(g, hd)

	must := func(n *G.Node, err error) *G.Node {
		if err != nil {
			panic(err) // shapes are ours: a failure is a programmer error
		}
		return n
	}
	x := must(G.Add(gr.h, must(G.Mul(gr.h, gr.wt)))) //               [N,C]
	if bias {
		gr.b = G.NewVector(g, tensor.Float32, G.WithShape(c), G.WithName("b"), G.WithValue(gr.bVal))
		x = must(G.BroadcastAdd(x, gr.b, nil, []byte{0}))
	}
	y := must(layerNorm(x, gamma, beta, hd.eps)) //                [N,C]
	logits := must(hd.un.apply(y))               //                [N,C]·[C,V] -> [N,V]
	gr.cost = must(crossEntropy(logits, gr.p))   //                −Σ p·log_softmax(logits)

	wrt := G.Nodes{gr.wt}
	if bias {
		wrt = append(wrt, gr.b)
	}
	grads, err := G.Grad(gr.cost, wrt...)
	if err != nil {
		return nil, fmt.Errorf("tune: gradient: %w", err)
	}
	gr.dwt = grads[0]
	outputs := G.Nodes{gr.cost, gr.dwt}
	if bias {
		gr.db = grads[1]
		outputs = append(outputs, gr.db)
	}
	inputs := G.Nodes{gr.h, gr.p, gr.wt}
	if bias {
		inputs = append(inputs, gr.b)
	}
	prog, locs, err := G.CompileFunction(g, inputs, outputs)
	if err != nil {
		return nil, fmt.Errorf("tune: compile: %w", err)
	}
	gr.vm = G.NewTapeMachine(g, G.WithPrecompiled(prog, locs))
	return gr, nil
}

// forwardGraph computes a lens's logits without gradients:
// logits = ln_f(h + h·Wt + b)·W_Uᵀ for micro-batches of n rows. With Wt
// and b zero it is the logit lens (and, on h[L], the model's output).
type forwardGraph struct {
	vm                G.VM
	logits            *G.Node
	hVal, wtVal, bVal *tensor.Dense
	n, c, v           int
}

func newForwardGraph(hd *head, n int) (*forwardGraph, error) {
	f := &forwardGraph{n: n, c: hd.c, v: hd.v}
	c, g := hd.c, G.NewGraph()
	f.hVal = tensor.New(tensor.WithShape(n, c), tensor.Of(tensor.Float32))
	f.wtVal = tensor.New(tensor.WithShape(c, c), tensor.Of(tensor.Float32))
	f.bVal = tensor.New(tensor.WithShape(c), tensor.Of(tensor.Float32))
	h := G.NewMatrix(g, tensor.Float32, G.WithShape(n, c), G.WithName("h"), G.WithValue(f.hVal))
	wt := G.NewMatrix(g, tensor.Float32, G.WithShape(c, c), G.WithName("wt"), G.WithValue(f.wtVal))
	b := G.NewVector(g, tensor.Float32, G.WithShape(c), G.WithName("b"), G.WithValue(f.bVal))
	gamma, beta := headNodes(g, hd)
	x, err := G.Mul(h, wt)
	if err == nil {
		x, err = G.Add(h, x)
	}
	if err == nil {
		x, err = G.BroadcastAdd(x, b, nil, []byte{0})
	}
	if err == nil {
		x, err = layerNorm(x, gamma, beta, hd.eps)
	}
	if err == nil {
		f.logits, err = hd.un.apply(x)
	}
	if err != nil {
		return nil, fmt.Errorf("tune: forward graph: %w", err)
	}
	prog, locs, err := G.CompileFunction(g, G.Nodes{h, wt, b}, G.Nodes{f.logits})
	if err != nil {
		return nil, fmt.Errorf("tune: compile: %w", err)
	}
	f.vm = G.NewTapeMachine(g, G.WithPrecompiled(prog, locs))
	return f, nil
}

// run writes the logits [N,V] of h [N,C] under the translator (wt, b) into
// out; nil wt and b mean none.
func (f *forwardGraph) run(h, wt, b, out []float32) error {
	copy(f.hVal.Float32s(), h)
	if wt == nil {
		clear(f.wtVal.Float32s())
	} else {
		copy(f.wtVal.Float32s(), wt)
	}
	if b == nil {
		clear(f.bVal.Float32s())
	} else {
		copy(f.bVal.Float32s(), b)
	}
	defer f.vm.Reset()
	if err := f.vm.RunAll(); err != nil {
		return fmt.Errorf("tune: %w", err)
	}
	copy(out, f.logits.Value().Data().([]float32))
	return nil
}

// headNodes makes the frozen ln_f nodes of a graph.
func headNodes(g *G.ExprGraph, hd *head) (gamma, beta *G.Node) {
	c := hd.c
	gamma = G.NewVector(g, tensor.Float32, G.WithShape(c), G.WithName("ln_f.g"),
		G.WithValue(tensor.New(tensor.WithShape(c), tensor.WithBacking(hd.lnG))))
	beta = G.NewVector(g, tensor.Float32, G.WithShape(c), G.WithName("ln_f.b"),
		G.WithValue(tensor.New(tensor.WithShape(c), tensor.WithBacking(hd.lnB))))
	return gamma, beta
}

// run computes the cost of one micro-batch for one translator and adds its
// gradients, times scale, into dwt and db; it returns the cost times
// scale. h is [N,C], p [N,V] (rows of zeros add nothing), wt = Weightᵀ
// [C,C], b [C] (nil without bias).
func (gr *graph) run(h, p, wt, b []float32, scale float32, dwt, db []float32) (float32, error) {
	copy(gr.hVal.Float32s(), h)
	copy(gr.pVal.Float32s(), p)
	copy(gr.wtVal.Float32s(), wt)
	if gr.bias {
		copy(gr.bVal.Float32s(), b)
	}
	defer gr.vm.Reset()
	if err := gr.vm.RunAll(); err != nil {
		return 0, fmt.Errorf("tune: %w", err)
	}
	addInto(dwt, gr.dwt.Value(), scale)
	if gr.bias {
		addInto(db, gr.db.Value(), scale)
	}
	return gr.cost.Value().Data().(float32) * scale, nil
}

// addInto adds scale·v to dst.
func addInto(dst []float32, v G.Value, scale float32) {
	for i, x := range v.Data().([]float32) {
		dst[i] += scale * x
	}
}
