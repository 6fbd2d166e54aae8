package inference

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/logitlens/logitlens/inference/sgemm"
	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/tunedlens"
	"gorgonia.org/tensor"
)

// The CPU device: the forward pass of forward.go on the host, with the
// matrix products through gorgonia's tensor.MatMul (which runs the Sgemm
// that package sgemm installs), the plain-loop ops of ops.go and the
// statistics of stats.go. Its weights are the checkpoint's mapped tensors,
// aliased, never copied, except W_U, which sgemm packs once at the first
// lens (see sgemm.NewTransposed: the mapped pages are given back as they
// are packed, and embedding rows are then read from the packed copy).

// block holds one transformer block's weights, named after the checkpoint
// keys. Conv1D weights are stored [in, out], so x @ w needs no transpose.
type block struct {
	ln1G, ln1B []float32     // [C]
	cAttnW     *tensor.Dense // [C,3C]
	cAttnB     []float32     // [3C]
	attnProjW  *tensor.Dense // [C,C]
	attnProjB  []float32     // [C]
	ln2G, ln2B []float32     // [C]
	fcW        *tensor.Dense // [C,4C]
	fcB        []float32     // [4C]
	mlpProjW   *tensor.Dense // [4C,C]
	mlpProjB   []float32     // [C]
}

// cpuBackend is a model's weights in host memory.
type cpuBackend struct {
	cfg        weights.Config
	wte        []float32 // [V,C]
	wpe        []float32 // [P,C]
	lnFG, lnFB []float32 // [C]
	head       []float32 // lm_head [V,C]; W_U = headᵀ (wte when tied)
	tied       bool
	blocks     []block

	// mu guards the packed unembedding against Close while a lens reads it.
	mu          sync.RWMutex
	closed      bool
	unembedOnce sync.Once
	unembed     *sgemm.Operand // W_U [C,V], prepared at the first lens
}

var _ Backend = (*cpuBackend)(nil)

// NewCPUBackend runs a checkpoint on the host. It implements NewBackend.
func NewCPUBackend(ck *weights.Checkpoint) (Backend, error) {
	sgemm.Use()
	cfg := ck.Config
	get := func(name string) []float32 {
		t := ck.Tensor(name)
		if t == nil {
			panic("inference: checkpoint lacks validated tensor " + name) // OpenCheckpoint guarantees it
		}
		return t.Data
	}
	dense := func(name string) *tensor.Dense {
		return tensor.New(tensor.WithShape(ck.Tensor(name).Shape...), tensor.WithBacking(get(name)))
	}
	b := &cpuBackend{cfg: cfg, wte: get("wte.weight"), wpe: get("wpe.weight"),
		lnFG: get("ln_f.weight"), lnFB: get("ln_f.bias"),
		head: ck.LMHead().Data, tied: ck.Tensor("lm_head.weight") == nil}
	for i := range cfg.NLayer {
		p := fmt.Sprintf("h.%d.", i)
		b.blocks = append(b.blocks, block{
			ln1G: get(p + "ln_1.weight"), ln1B: get(p + "ln_1.bias"),
			cAttnW: dense(p + "attn.c_attn.weight"), cAttnB: get(p + "attn.c_attn.bias"),
			attnProjW: dense(p + "attn.c_proj.weight"), attnProjB: get(p + "attn.c_proj.bias"),
			ln2G: get(p + "ln_2.weight"), ln2B: get(p + "ln_2.bias"),
			fcW: dense(p + "mlp.c_fc.weight"), fcB: get(p + "mlp.c_fc.bias"),
			mlpProjW: dense(p + "mlp.c_proj.weight"), mlpProjB: get(p + "mlp.c_proj.bias"),
		})
	}
	return b, nil
}

// Name implements Backend.
func (b *cpuBackend) Name() string { return "cpu" }

// NewDevice implements Backend.
func (b *cpuBackend) NewDevice() Device {
	S := 2*b.cfg.NLayer + 1
	return &cpuDevice{w: b, kv: make([]kvCache, b.cfg.NLayer), streams: make([][]float32, S)}
}

// Time implements Backend with the wall clock: the host runs every op
// before returning.
func (b *cpuBackend) Time(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

// Close implements Backend: it frees the packed unembedding. The devices'
// buffers are Go memory.
func (b *cpuBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.unembed != nil {
		b.unembed.Close()
		b.unembed = nil
	}
	return nil
}

// errClosed is returned by a device whose backend (model) was closed.
var errClosed = errors.New("inference: the model is closed")

// unembedding returns W_U prepared for the lens's products; the read lock
// is held.
func (b *cpuBackend) unembedding() *sgemm.Operand {
	b.unembedOnce.Do(func() {
		b.unembed = sgemm.NewTransposed(b.head, b.cfg.VocabSize, b.cfg.NEmbd)
	})
	return b.unembed
}

// embedding copies row id of wte into x[C]: from the prepared unembedding
// when W_U = wteᵀ, so that the pages of wte it gave back are not faulted in
// again; from the mapping otherwise. The read lock is held.
func (b *cpuBackend) embedding(x []float32, id int) {
	if b.tied {
		b.unembedding().Column(x, id)
		return
	}
	C := b.cfg.NEmbd
	copy(x, b.wte[id*C:(id+1)*C])
}

// cpuDevice is one session's prompt on the host.
type cpuDevice struct {
	w       *cpuBackend
	filled  int         // positions whose keys, values and streams are current
	cap     int         // positions the caches hold
	kv      []kvCache   // per block
	streams [][]float32 // per stream (see Row.stream): [cap, C]

	buf     buffers
	lensIn  []float32 // [R·n, C] ln_f inputs of a lens chunk
	logits  []float32 // [R·n, V]
	finProb []float32 // [n, V] P_final of each position in a lens chunk
	trOut   []float32 // [n, C] a translator's x·Wᵀ
}

var _ Device = (*cpuDevice)(nil)

type kvCache struct{ k, v []float32 } // [cap, C] each

// buffers are a forward step's intermediates, one per named activation.
type buffers struct {
	x, a, q, y, proj []float32 // [T,C]
	qkv              []float32 // [T,3C]
	f                []float32 // [T,4C]
}

// Chunks of positions: forward runs prompts forwardChunk positions at a
// time so columns stream out while a long prompt computes, and the logits
// of one lens GEMM stay within lensRows rows.
const (
	forwardChunk = 32
	lensRows     = 128
)

// Chunk implements Device.
func (d *cpuDevice) Chunk() int { return forwardChunk }

// Close implements Device: the buffers are Go memory, left to the collector.
func (d *cpuDevice) Close() error {
	*d = cpuDevice{w: d.w}
	return nil
}

// Lens implements Device: positions in chunks whose logits fit lensRows
// rows, each decoded through ln_f and W_U in one GEMM and reduced row by
// row to its cell.
func (d *cpuDevice) Lens(ctx context.Context, req LensRequest, out [][]Cell) error {
	L := d.w.cfg.NLayer
	rf := slices.IndexFunc(req.Rows, func(r Row) bool { return r.stream() == 2*L })
	switch {
	case rf < 0:
		return fmt.Errorf("inference: lens rows %v lack the final row", req.Rows)
	case req.From < 0 || req.From > req.To || req.To > d.filled:
		return fmt.Errorf("inference: lens of positions %d..%d, but %d are computed", req.From, req.To, d.filled)
	}
	if err := checkTuned(d.w.cfg.NEmbd, d.w.cfg.NLayer, req); err != nil {
		return err
	}
	d.w.mu.RLock()
	defer d.w.mu.RUnlock()
	if d.w.closed {
		return errClosed
	}
	n := max(1, lensRows/len(req.Rows))
	for a := req.From; a < req.To; a += n {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.lensChunk(a, min(req.To, a+n), rf, req, out)
	}
	return nil
}

// Residual implements Device.
func (d *cpuDevice) Residual(row Row, from, to int) ([]float32, error) {
	if from < 0 || from > to || to > d.filled {
		return nil, fmt.Errorf("inference: residual of positions %d..%d, but %d are computed", from, to, d.filled)
	}
	C := d.w.cfg.NEmbd
	return slices.Clone(d.streams[row.stream()][from*C : to*C]), nil
}

// decode puts the logits of the stored rows req.Rows at positions a..b-1
// in d.logits, [R·n, V] row-major (row r, position a+t at r·n+t): the rows
// gathered, translated by a tuned lens, through ln_f and the unembedding in
// one GEMM. The backend's read lock is held.
func (d *cpuDevice) decode(a, b int, req LensRequest) {
	w := d.w
	C, V := w.cfg.NEmbd, w.cfg.VocabSize
	n, R := b-a, len(req.Rows)
	eps := float32(w.cfg.LayerNormEpsilon)
	d.lensIn = grow(d.lensIn, R*n*C)
	d.logits = grow(d.logits, R*n*V)

	for r, row := range req.Rows { // gather the rows: [R·n, C]
		copy(d.lensIn[r*n*C:(r+1)*n*C], d.streams[row.stream()][a*C:b*C])
	}
	for r, row := range req.Rows { // tuned lens: x += x·Wᵀ + b, one GEMM per row
		if tr := translatorOf(req, row, w.cfg.NLayer); tr != nil {
			d.translate(d.lensIn[r*n*C:(r+1)*n*C], tr, n, C)
		}
	}
	layerNorm(d.lensIn, d.lensIn, w.lnFG, w.lnFB, C, eps) // ln_f, once per row
	w.unembedding().Mul(d.logits, d.lensIn, R*n)          // [R·n,C] @ [C,V] -> [R·n,V]
}

// lensChunk decodes the stored rows at positions a..b-1, then reduces each
// row to its cell.
func (d *cpuDevice) lensChunk(a, b, rf int, req LensRequest, out [][]Cell) {
	w := d.w
	C, V := w.cfg.NEmbd, w.cfg.VocabSize
	n, R := b-a, len(req.Rows)
	d.decode(a, b, req)
	if req.LogitsOnly {
		return
	}
	d.finProb = grow(d.finProb, n*V)

	logits := func(r, t int) []float32 { return d.logits[(r*n+t)*V : (r*n+t+1)*V] }
	fins := make([]finalRow, n)
	parallel(n, func(t0, t1 int) {
		for t := t0; t < t1; t++ {
			fins[t] = finalRowOf(logits(rf, t), d.finProb[t*V:(t+1)*V])
		}
	})
	parallel(R*n, func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			r, t := i/n, i%n
			fin := fins[t]
			if r == rf {
				fin.probs = nil // the final row's KL to itself is 0
			}
			q := query{k: req.TopK, target: req.Target, next: -1}
			if req.Next != nil {
				q.next = req.Next[a+t-req.From]
			}
			c := &out[r][a+t-req.From]
			if !rowStats(c, logits(r, t), &fin, q) {
				st := req.Rows[r].stream()
				setNonFinite(c, residualKind(d.streams[st][(a+t)*C:(a+t+1)*C]), q.target, q.next)
			}
		}
	})
}

// Logits implements Device: the rows decoded as for Lens, chunk by chunk,
// copied out whole.
func (d *cpuDevice) Logits(ctx context.Context, req LensRequest, out []float32) error {
	R, V := len(req.Rows), d.w.cfg.VocabSize
	switch {
	case req.From < 0 || req.From > req.To || req.To > d.filled:
		return fmt.Errorf("inference: logits of positions %d..%d, but %d are computed", req.From, req.To, d.filled)
	case len(out) != R*(req.To-req.From)*V:
		return fmt.Errorf("inference: logits of %d rows × %d positions × %d ids into %d floats", R, req.To-req.From, V, len(out))
	}
	if err := checkTuned(d.w.cfg.NEmbd, d.w.cfg.NLayer, req); err != nil {
		return err
	}
	d.w.mu.RLock()
	defer d.w.mu.RUnlock()
	if d.w.closed {
		return errClosed
	}
	N := req.To - req.From
	n := max(1, lensRows/max(1, R))
	for a := req.From; a < req.To; a += n {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := min(req.To, a+n)
		d.decode(a, b, req)
		for r := range R { // [r][a−From .. b−From) of out from [r·(b−a) ..) of the chunk
			copy(out[(r*N+a-req.From)*V:(r*N+b-req.From)*V], d.logits[r*(b-a)*V:(r+1)*(b-a)*V])
		}
	}
	return nil
}

// translate applies a tuned lens's translator to x [n,C] in place:
// x += x·Wᵀ + b, W stored [out, in] as torch.nn.Linear keeps it.
func (d *cpuDevice) translate(x []float32, tr *tunedlens.Translator, n, C int) {
	d.trOut = grow(d.trOut, n*C)
	xs := tensor.New(tensor.WithShape(n, C), tensor.WithBacking(x))
	wt := tensor.New(tensor.WithShape(C, C), tensor.WithBacking(tr.Weight))
	if err := wt.T(); err != nil { // a transposed view: Sgemm reads W with TransB, no copy
		panic(err)
	}
	y := tensor.New(tensor.WithShape(n, C), tensor.WithBacking(d.trOut))
	if _, err := tensor.MatMul(xs, wt, tensor.WithReuse(y)); err != nil { // [n,C] @ [C,C] -> [n,C]
		panic(err) // shapes are ours: a mismatch is a programmer error
	}
	for t := range n {
		row, yr := x[t*C:(t+1)*C], d.trOut[t*C:(t+1)*C]
		add(row, yr)
		if tr.Bias != nil {
			add(row, tr.Bias)
		}
	}
}

// reserve grows the caches to hold P positions, keeping their contents.
func (d *cpuDevice) reserve(P int) {
	if P <= d.cap {
		return
	}
	C := d.w.cfg.NEmbd
	c := min(max(P, 2*d.cap, 16), d.w.cfg.NPositions)
	for i := range d.kv {
		d.kv[i].k = resize(d.kv[i].k, c*C)
		d.kv[i].v = resize(d.kv[i].v, c*C)
	}
	for i := range d.streams {
		d.streams[i] = resize(d.streams[i], c*C)
	}
	d.cap = c
}

// keep stores a [T,C] residual as positions p0.. of stream st.
func (d *cpuDevice) keep(st, p0 int, x []float32) {
	copy(d.streams[st][p0*d.w.cfg.NEmbd:], x)
}

// scratch returns the forward intermediates sized for T positions.
func (d *cpuDevice) scratch(T int) *buffers {
	C := d.w.cfg.NEmbd
	b := &d.buf
	for _, p := range []*[]float32{&b.x, &b.a, &b.q, &b.y, &b.proj} {
		*p = grow(*p, T*C)
	}
	b.qkv = grow(b.qkv, T*3*C)
	b.f = grow(b.f, T*4*C)
	return b
}

// grow returns s with length n, reallocating (without keeping contents)
// when its capacity is short.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// resize returns s with length n, keeping its contents.
func resize(s []float32, n int) []float32 {
	if cap(s) >= n {
		return s[:n]
	}
	r := make([]float32, n)
	copy(r, s)
	return r
}

// BLASName says which BLAS the CPU device's matrix products go through, e.g.
// "openblas 0.3.21 (2 threads)" or "go avx2+fma (2 threads)", choosing it
// first if nothing has (see package sgemm).
func BLASName() string { return sgemm.Use() }

// BLASNote says why the preferred BLAS was not taken, or "".
func BLASNote() string { return sgemm.Note() }
