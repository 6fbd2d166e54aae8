package cuda

import (
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// State is one prompt on the device: its KV cache, its residual streams
// (every lens row, for every position computed so far) and the scratch
// buffers of a forward step and of the lens. Streams are numbered as in
// package inference: 0 the embedding, 2i−1 resid_mid of block i, 2i the
// output of block i (2L the final row).
type State struct {
	m      *Model
	cap    int // positions every buffer holds: n_positions
	filled int // positions whose keys, values and streams are current

	kv      []kvBuffers // per block
	streams []buffer    // [cap, C] each
	x, a, q buffer      // [cap, C]
	y, proj buffer      // [cap, C]
	qkv     buffer      // [cap, 3C]
	f       buffer      // [cap, 4C]
	ids     buffer      // [cap] int32

	lensRows int    // rows the lens buffers hold now
	maxRows  int    // rows one lens GEMM may take (LensBytes / 4V)
	lensIn   buffer // [rows, C]
	logits   buffer // [rows, V]
	final    buffer // [rows] finalStats
	stats    buffer // [rows] rowStats
	next     buffer // [rows] int32: each position's next token, for the rows' positions
	topIDs   buffer // [rows, maxTopK] int32
	topVals  buffer // [rows, maxTopK]
	trOut    buffer // [rows, C] a tuned lens translator's x·Wᵀ

	allocs []DevicePtr
	prof   *profiler
	closed bool
}

// errStateClosed is returned by a State used after Close.
var errStateClosed = errors.New("cuda: the state is closed")

type kvBuffers struct{ k, v buffer } // [cap, C] each

// finalStats mirrors FinalStats in kernels/lens_stats.cu.
type finalStats struct {
	S, E float64 // Σ exp(d), Σ exp(d)·d over the final row, d = z − m
	M    float32 // its max
	Top1 int32   // its first argmax
}

// rowStats mirrors RowStats in kernels/lens_stats.cu.
type rowStats struct {
	S, E, FZ            float64 // Σ exp(d), Σ exp(d)·d, Σ f·d
	M                   float32 // max
	Z1, ZT, ZN          float32 // logits of the final top-1, the target and the next token
	Rank1, RankT, RankN int32
	_                   int32
}

// Words (4 bytes) of the lens statistics' structs, as the buffers hold them.
const (
	finalWords = int(unsafe.Sizeof(finalStats{})) / 4
	rowWords   = int(unsafe.Sizeof(rowStats{})) / 4
)

// StateOptions size a State.
type StateOptions struct {
	// LensBytes bounds the logits of one lens GEMM; 0 means 4 GiB or half
	// the free device memory, whichever is smaller. GPT-2 small's full
	// lens at T = 1024 (13 rows) takes 2.7 GB: one GEMM.
	LensBytes int64
	// Profile records CUDA events around every kernel and GEMM (KernelTimes).
	Profile bool
}

// NewState allocates a prompt's buffers for n_positions positions. The
// lens buffers grow on first use, up to opt.LensBytes of logits.
func (m *Model) NewState(opt StateOptions) (*State, error) {
	cfg := m.cfg
	C, P := cfg.NEmbd, cfg.NPositions
	s := &State{m: m, cap: P}
	err := m.dev.do(func() error {
		if opt.LensBytes <= 0 {
			free, _, err := m.dev.drv.MemInfo()
			if err != nil {
				return err
			}
			opt.LensBytes = min(4<<30, free/2)
		}
		s.maxRows = max(1, int(opt.LensBytes/int64(4*cfg.VocabSize)))
		var err error
		alloc := func(n int) buffer {
			if err != nil {
				return buffer{}
			}
			var b buffer
			b, err = s.alloc(n)
			return b
		}
		for range cfg.NLayer {
			s.kv = append(s.kv, kvBuffers{alloc(P * C), alloc(P * C)})
		}
		for range 2*cfg.NLayer + 1 {
			s.streams = append(s.streams, alloc(P*C))
		}
		s.x, s.a, s.q, s.y, s.proj = alloc(P*C), alloc(P*C), alloc(P*C), alloc(P*C), alloc(P*C)
		s.qkv, s.f, s.ids = alloc(P*3*C), alloc(P*4*C), alloc(P)
		if err == nil && opt.Profile {
			s.prof = &profiler{drv: m.dev.drv}
		}
		return err
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// stateBytes is the device memory NewState allocates before any lens, in
// bytes: KV cache 2·L·P·C, streams (2L+1)·P·C, scratch 12·P·C, ids P.
func stateBytes(cfg Config) int64 {
	L, P, C := int64(cfg.NLayer), int64(cfg.NPositions), int64(cfg.NEmbd)
	return 4 * (2*L*P*C + (2*L+1)*P*C + 12*P*C + P)
}

// lensBytes is the device memory the lens buffers take for rows rows:
// ln_f input, logits, final and row statistics, next tokens, top-k ids and
// values, a translator's output.
func lensBytes(rows, C, V int) int64 {
	r := int64(rows)
	return 4 * (2*r*int64(C) + r*int64(V) + r*int64(finalWords+rowWords+1) + 2*r*maxTopK)
}

// alloc allocates n float32s; the device lock is held.
func (s *State) alloc(n int) (buffer, error) {
	p, err := s.m.dev.drv.Alloc(4 * n)
	if err != nil {
		return buffer{}, fmt.Errorf("cuda: allocating %d floats: %w", n, err)
	}
	s.allocs = append(s.allocs, p)
	return buffer{p, n}, nil
}

// growLens makes the lens buffers hold rows rows; the device lock is held.
func (s *State) growLens(rows int) error {
	if rows <= s.lensRows {
		return nil
	}
	for _, b := range []buffer{s.lensIn, s.logits, s.final, s.stats, s.next, s.topIDs, s.topVals, s.trOut} {
		if b.p == 0 {
			continue
		}
		if err := s.free(b.p); err != nil {
			return err
		}
	}
	s.lensRows = 0
	C, V := s.m.cfg.NEmbd, s.m.cfg.VocabSize
	var err error
	alloc := func(n int) buffer {
		if err != nil {
			return buffer{}
		}
		var b buffer
		b, err = s.alloc(n)
		return b
	}
	s.lensIn, s.logits = alloc(rows*C), alloc(rows*V)
	s.final, s.stats, s.next = alloc(rows*finalWords), alloc(rows*rowWords), alloc(rows)
	s.topIDs, s.topVals = alloc(rows*maxTopK), alloc(rows*maxTopK)
	s.trOut = alloc(rows * C)
	if err != nil {
		return err
	}
	s.lensRows = rows
	return nil
}

// free releases one of the state's allocations.
func (s *State) free(p DevicePtr) error {
	for i, q := range s.allocs {
		if q == p {
			s.allocs = append(s.allocs[:i], s.allocs[i+1:]...)
			return s.m.dev.drv.Free(p)
		}
	}
	return nil
}

// Close frees the state's device memory and destroys its profiling
// events. Closing twice frees nothing twice: a second cuEventDestroy of
// the same event is undefined behaviour in the driver.
func (s *State) Close() error {
	if s.closed {
		return nil
	}
	var errs []error
	errs = append(errs, s.m.dev.do(func() error {
		for _, p := range s.allocs {
			errs = append(errs, s.m.dev.drv.Free(p))
		}
		if s.prof != nil {
			errs = append(errs, s.prof.close())
		}
		return nil
	}))
	s.allocs, s.prof, s.lensRows, s.filled, s.closed = nil, nil, 0, 0, true
	return errors.Join(errs...)
}

// Filled is the number of positions computed so far.
func (s *State) Filled() int { return s.filled }

// queue issues a step's calls in order and keeps the first error, so a
// step reads like the maths with one check at its end.
type queue struct {
	s   *State
	err error
}

func (q *queue) launch(name string, grid, block Dim3, shared int, args ...Arg) {
	if q.err != nil {
		return
	}
	f, ok := q.s.m.dev.kernels[name]
	if !ok {
		q.err = fmt.Errorf("cuda: kernel %s not loaded", name)
		return
	}
	q.timed(name, func() error { return q.s.m.dev.drv.Launch(f, grid, block, shared, args) })
}

func (q *queue) gemm(name string, c SgemmCall) {
	if q.err == nil {
		q.timed(name, func() error { return q.s.m.dev.blas.Sgemm(c) })
	}
}

func (q *queue) copy(dst, src DevicePtr, floats int) {
	if q.err == nil {
		q.timed("copy", func() error { return q.s.m.dev.drv.DtoD(dst, src, 4*floats) })
	}
}

func (q *queue) timed(name string, f func() error) {
	if q.s.prof == nil {
		q.err = f()
		return
	}
	q.err = q.s.prof.around(name, f)
}

// Forward runs GPT-2 on the tokens ids at positions p0..p0+T-1, reading the
// cached keys and values of positions 0..p0-1 and replacing everything
// from p0 on (an edited prompt recomputes from its first changed token).
// It stores every residual stream row for Lens. The calls are queued on
// the device; Lens (or Sync) waits for them.
func (s *State) Forward(ids []int, p0 int) error {
	cfg := s.m.cfg
	T, V := len(ids), cfg.VocabSize
	switch {
	case s.closed:
		return errStateClosed
	case T == 0:
		return errors.New("cuda: forward of no tokens")
	case p0 < 0 || p0 > s.filled:
		return fmt.Errorf("cuda: forward at position %d, but only %d are cached", p0, s.filled)
	case p0+T > s.cap:
		return fmt.Errorf("cuda: %d positions exceed n_positions = %d", p0+T, s.cap)
	}
	host := make([]int32, T)
	for i, id := range ids {
		if id < 0 || id >= V {
			return fmt.Errorf("cuda: token %d has id %d, outside the vocabulary (0..%d)", i, id, V-1)
		}
		host[i] = int32(id)
	}
	s.filled = min(s.filled, p0) // a failure below leaves only the prefix valid
	err := s.m.dev.do(func() error {
		if err := s.m.dev.drv.HtoD(s.ids.p, i32Bytes(host)); err != nil {
			return err
		}
		q := &queue{s: s}
		s.forward(q, T, p0)
		return q.err
	})
	if err != nil {
		return err
	}
	s.filled = p0 + T
	return nil
}

// forward queues the step; the device lock is held and ids are uploaded.
func (s *State) forward(q *queue, T, p0 int) {
	m, cfg := s.m, s.m.cfg
	C, H, P := cfg.NEmbd, cfg.NHead, p0+T
	D := C / H
	eps := cfg.LayerNormEpsilon
	TC := T * C
	g, b := elementwise(TC)
	rg, rb := perRow(T)

	// h[0] = wte[ids] + wpe[positions]                          [T] -> [T,C]
	q.launch("embed_forward", g, b, 0, PtrArg(s.x.p), PtrArg(m.wte.p), PtrArg(m.wpe.p), PtrArg(s.ids.p),
		IntArg(T), IntArg(C), IntArg(p0))
	q.copy(s.streams[0].at(p0*C), s.x.p, TC)

	for i, blk := range m.blocks {
		kc, vc := s.kv[i].k, s.kv[i].v
		// attention half: x += c_proj(attn(ln_1(x)))
		q.launch("layernorm_forward", rg, rb, 0, PtrArg(s.a.p), PtrArg(s.x.p), PtrArg(blk.ln1G.p), PtrArg(blk.ln1B.p),
			IntArg(T), IntArg(C), FloatArg(eps)) //                                             [T,C]
		q.gemm("gemm c_attn", gemmRowMajor(s.qkv.p, s.a.p, blk.cAttnW.p, T, 3*C, C, false)) // [T,C] @ [C,3C] -> [T,3C]
		s.addBias(q, s.qkv, blk.cAttnB, T, 3*C)
		q.launch("kv_append", g, b, 0, PtrArg(s.qkv.p), PtrArg(s.q.p), PtrArg(kc.p), PtrArg(vc.p),
			IntArg(T), IntArg(C), IntArg(p0)) // q [T,C]; k, v -> cache rows p0..P-1
		ag, ab, sh := attentionShape(T, H, D, P)
		q.launch("attention_forward", ag, ab, sh, PtrArg(s.y.p), PtrArg(s.q.p), PtrArg(kc.p), PtrArg(vc.p),
			IntArg(T), IntArg(p0), IntArg(C), IntArg(H), FloatArg(float32(1/math.Sqrt(float64(D))))) // [T,C]
		q.gemm("gemm attn.c_proj", gemmRowMajor(s.proj.p, s.y.p, blk.attnProjW.p, T, C, C, false)) // [T,C] @ [C,C]
		s.addBias(q, s.proj, blk.attnProjB, T, C)
		q.launch("residual_add", g, b, 0, PtrArg(s.x.p), PtrArg(s.proj.p), IntArg(TC))
		q.copy(s.streams[2*i+1].at(p0*C), s.x.p, TC) // resid_mid

		// MLP half: x += c_proj(gelu(c_fc(ln_2(x))))
		q.launch("layernorm_forward", rg, rb, 0, PtrArg(s.a.p), PtrArg(s.x.p), PtrArg(blk.ln2G.p), PtrArg(blk.ln2B.p),
			IntArg(T), IntArg(C), FloatArg(eps))
		q.gemm("gemm mlp.c_fc", gemmRowMajor(s.f.p, s.a.p, blk.fcW.p, T, 4*C, C, false)) // [T,C] @ [C,4C] -> [T,4C]
		s.addBias(q, s.f, blk.fcB, T, 4*C)
		fg, fb := elementwise(4 * TC)
		q.launch("gelu_forward", fg, fb, 0, PtrArg(s.f.p), IntArg(4*TC))
		q.gemm("gemm mlp.c_proj", gemmRowMajor(s.proj.p, s.f.p, blk.mlpProjW.p, T, C, 4*C, false)) // [T,4C] @ [4C,C]
		s.addBias(q, s.proj, blk.mlpProjB, T, C)
		q.launch("residual_add", g, b, 0, PtrArg(s.x.p), PtrArg(s.proj.p), IntArg(TC))
		q.copy(s.streams[2*i+2].at(p0*C), s.x.p, TC) // h[i+1]
	}
}

// addBias queues x[M,N] += bias[N] for every row.
func (s *State) addBias(q *queue, x, bias buffer, M, N int) {
	g, b := elementwise(M * N)
	q.launch("add_bias", g, b, 0, PtrArg(x.p), PtrArg(bias.p), IntArg(M), IntArg(N))
}

// Sync waits for every queued call.
func (s *State) Sync() error { return s.m.dev.do(s.m.dev.drv.Synchronize) }

// Stream copies positions [from, to) of residual stream st to the host:
// [to−from, C].
func (s *State) Stream(st, from, to int) ([]float32, error) {
	C := s.m.cfg.NEmbd
	if s.closed {
		return nil, errStateClosed
	}
	if st < 0 || st >= len(s.streams) || from < 0 || from > to || to > s.filled {
		return nil, fmt.Errorf("cuda: stream %d positions %d..%d outside %d streams × %d positions", st, from, to, len(s.streams), s.filled)
	}
	out := make([]float32, (to-from)*C)
	err := s.m.dev.do(func() error { return s.m.dev.drv.DtoH(f32Bytes(out), s.streams[st].at(from*C)) })
	return out, err
}
