package inference

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// BenchOptions configure Bench.
type BenchOptions struct {
	Tokens    []int         // prompt lengths; default 16, 64, 128
	Runs      int           // timed runs per measurement after one warm-up; default 7
	TopK      int           // default 10
	Sublayers bool          // add the resid_mid rows
	LoadTime  time.Duration // model load time to report, measured by the caller; 0 to omit
}

// BenchTimes summarises one measurement's runs, in milliseconds.
type BenchTimes struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// BenchResult is one prompt length's timings.
type BenchResult struct {
	Tokens int `json:"tokens"`
	// Full is a whole lens from scratch: forward, ln_f, unembedding and all
	// statistics (entropy, KL, ranks, top-k) for every row and position.
	Full BenchTimes `json:"full_ms"`
	// Incremental appends one token to a cached prefix of Tokens−1: its
	// forward on the KV cache and the lens of all its rows.
	Incremental BenchTimes `json:"incremental_ms"`
	// Unembed is the bare unembedding GEMM of all lens rows (chunked as the
	// lens does); Lens is the same with ln_f and every statistic.
	Unembed BenchTimes `json:"unembed_ms"`
	Lens    BenchTimes `json:"lens_ms"`
	// StatsOverhead is median Lens / median Unembed − 1.
	StatsOverhead float64 `json:"stats_overhead"`
	FullGFLOPS    float64 `json:"full_gflops"`        // useful FLOPs of Full / median time
	IncGFLOPS     float64 `json:"incremental_gflops"` // the same for Incremental
	// IncFloorRatio is median Incremental over the time to read every
	// weight once at MemReadGBs (0 when that is unknown).
	IncFloorRatio float64 `json:"incremental_floor_ratio,omitempty"`
}

// BenchReport is what Bench measured, with the machine it ran on.
type BenchReport struct {
	Model     string        `json:"model"`
	BLAS      string        `json:"blas"`
	Device    string        `json:"device"`
	CPU       string        `json:"cpu"`
	Threads   int           `json:"threads"`
	Rows      int           `json:"rows"`
	WeightsMB float64       `json:"weights_mb"`
	PeakRSSMB float64       `json:"peak_rss_mb,omitempty"` // VmHWM; 0 where unknown
	LoadMs    float64       `json:"load_ms,omitempty"`
	MemReadGB float64       `json:"mem_read_gbs,omitempty"` // measured read bandwidth, all threads
	Results   []BenchResult `json:"results"`
}

// Bench times the full lens and a one-token append at each prompt length
// on m, plus the bare unembedding against the lens statistics, and reports
// medians over opt.Runs runs after a warm-up. Prompts are fixed
// pseudo-random token ids, so runs are comparable across machines.
func Bench(ctx context.Context, m *Model, opt BenchOptions) (*BenchReport, error) {
	if len(opt.Tokens) == 0 {
		opt.Tokens = []int{16, 64, 128}
	}
	if opt.Runs <= 0 {
		opt.Runs = 7
	}
	if opt.TopK == 0 {
		opt.TopK = 10
	}
	for _, T := range opt.Tokens {
		if T < 2 || T > m.cfg.NPositions {
			return nil, fmt.Errorf("inference: bench: %d tokens is outside 2..%d (n_positions)", T, m.cfg.NPositions)
		}
	}
	rep := &BenchReport{
		Model: m.info.ID, BLAS: BLASName(), Device: m.engine.Name(), CPU: cpuName(),
		Threads: runtime.GOMAXPROCS(0), Rows: len(m.Rows(opt.Sublayers)),
		WeightsMB: float64(m.weightBytes()) / 1e6, LoadMs: ms(opt.LoadTime),
	}
	rep.MemReadGB = memReadGBs(m)
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]int, slices.Max(opt.Tokens))
	for i := range ids {
		ids[i] = r.IntN(m.vocabTok)
	}
	s := m.NewSession() // one session, as the explorer keeps
	for _, T := range opt.Tokens {
		res, err := benchOne(ctx, s, ids[:T], opt)
		if err != nil {
			return nil, err
		}
		if rep.MemReadGB > 0 {
			floor := float64(m.stepBytes()) / (rep.MemReadGB * 1e9) * 1e3
			res.IncFloorRatio = res.Incremental.Median / floor
		}
		rep.Results = append(rep.Results, res)
	}
	rep.PeakRSSMB = peakRSSMB()
	return rep, nil
}

// benchOne measures one prompt length.
func benchOne(ctx context.Context, s *Session, ids []int, opt BenchOptions) (BenchResult, error) {
	m := s.m
	T := len(ids)
	res := BenchResult{Tokens: T}
	target := ids[T-1] // one target for every request: a new one would invalidate the cells
	req := func(ids []int) Request {
		return Request{IDs: ids, TopK: opt.TopK, Target: target, Sublayers: opt.Sublayers}
	}
	// Full: the first token alternates, so nothing is reusable; buffers are.
	alt := slices.Clone(ids)
	full, err := timeRuns(opt.Runs, func(i int) error {
		alt[0] = ids[0] ^ (i & 1)
		_, err := s.Lens(ctx, req(alt), nil)
		return err
	})
	if err != nil {
		return res, err
	}
	// Incremental: back to T−1 (served from the cache), then append one.
	inc, err := timeRunsSetup(opt.Runs, func() error {
		_, err := s.Lens(ctx, req(ids[:T-1]), nil)
		return err
	}, func() error {
		_, err := s.Lens(ctx, req(ids), nil)
		return err
	})
	if err != nil {
		return res, err
	}
	// The lens alone, and its bare GEMM, on the session's stored streams.
	var streams []int
	for _, row := range m.Rows(opt.Sublayers) {
		streams = append(streams, row.stream())
	}
	lens, err := timeRuns(opt.Runs, func(int) error { return s.lensRange(ctx, 0, T, streams, req(ids)) })
	if err != nil {
		return res, err
	}
	gemm, err := timeRuns(opt.Runs, func(int) error { return s.unembedOnly(ctx, 0, T, len(streams)) })
	if err != nil {
		return res, err
	}
	res.Full, res.Incremental, res.Lens, res.Unembed = full, inc, lens, gemm
	res.StatsOverhead = lens.Median/gemm.Median - 1
	R := len(streams)
	res.FullGFLOPS = m.flops(0, T, R) / full.Median / 1e6
	res.IncGFLOPS = m.flops(T-1, 1, R) / inc.Median / 1e6
	return res, nil
}

// unembedOnly runs just the unembedding GEMMs the lens of positions lo..hi-1
// with R rows would run, chunk for chunk, for comparison with lensRange.
func (s *Session) unembedOnly(ctx context.Context, lo, hi, R int) error {
	m := s.m
	C, V := m.cfg.NEmbd, m.cfg.VocabSize
	n := max(1, lensRows/R)
	for a := lo; a < hi; a += n {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows := R * (min(hi, a+n) - a)
		s.lensIn = grow(s.lensIn, rows*C)
		s.logits = grow(s.logits, rows*V)
		if err := m.unembedRows(s.logits, s.lensIn, rows); err != nil {
			return err
		}
	}
	return nil
}

// flops counts the multiply-adds (×2) of T positions from p0 with R lens
// rows: the block GEMMs, attention and the unembedding.
func (m *Model) flops(p0, T, R int) float64 {
	C, V, L := float64(m.cfg.NEmbd), float64(m.cfg.VocabSize), float64(m.cfg.NLayer)
	t := float64(T)
	var att float64 // q·k and p·v over the visible keys
	for i := 0; i < T; i++ {
		att += float64(p0 + i + 1)
	}
	return 2*t*12*C*C*L + 2*2*att*C*L + 2*float64(R)*t*C*V
}

// weightBytes is the size of the float32 weights the model reads.
func (m *Model) weightBytes() int64 {
	n := len(m.wte.Float32s()) + len(m.wpe.Float32s()) + 2*m.cfg.NEmbd
	if m.ckpt.Tensor("lm_head.weight") != nil { // untied
		n += len(m.ckpt.LMHead().Data)
	}
	for _, b := range m.blocks {
		n += len(b.ln1G.Float32s()) + len(b.ln1B.Float32s()) + len(b.cAttnW.Float32s()) + len(b.cAttnB.Float32s()) +
			len(b.attnProjW.Float32s()) + len(b.attnProjB.Float32s()) + len(b.ln2G.Float32s()) + len(b.ln2B.Float32s()) +
			len(b.fcW.Float32s()) + len(b.fcB.Float32s()) + len(b.mlpProjW.Float32s()) + len(b.mlpProjB.Float32s())
	}
	return 4 * int64(n)
}

// stepBytes is what one appended token must read: every block weight and
// the unembedding matrix, once.
func (m *Model) stepBytes() int64 {
	return m.weightBytes() - 4*int64(len(m.wpe.Float32s()))
}

// memReadGBs measures the read bandwidth of all threads over the model's
// block weights (already in memory), in GB/s; it is the floor's yardstick.
func memReadGBs(m *Model) float64 {
	if !haveVecStats {
		return 0 // no vector loop to read with at full speed
	}
	var parts [][]float32
	for _, b := range m.blocks {
		parts = append(parts, b.cAttnW.Float32s(), b.attnProjW.Float32s(), b.fcW.Float32s(), b.mlpProjW.Float32s())
	}
	var bytes int64
	for _, p := range parts {
		bytes += 4 * int64(len(p))
	}
	best := 0.0
	for range 3 {
		start := time.Now()
		sumAll(parts)
		best = max(best, float64(bytes)/time.Since(start).Seconds()/1e9)
	}
	return best
}

var sink float32

// sumAll reads every float of parts, the threads splitting each part.
func sumAll(parts [][]float32) {
	sums := make([]float32, runtime.GOMAXPROCS(0)*16)
	for _, p := range parts {
		parallel(runtime.GOMAXPROCS(0), func(w0, w1 int) {
			for w := w0; w < w1; w++ {
				n := len(p)
				part := p[w*n/runtime.GOMAXPROCS(0) : (w+1)*n/runtime.GOMAXPROCS(0)]
				if len(part) >= 32 {
					sums[w*16] += vecMax(part[:len(part)&^31])
				}
			}
		})
	}
	sink = sums[0]
}

// timeRuns runs f(0) once to warm up, then f(1..runs), timing each.
func timeRuns(runs int, f func(i int) error) (BenchTimes, error) {
	i := 0
	return timeRunsSetup(runs, nil, func() error { i++; return f(i - 1) })
}

// timeRunsSetup times f after an untimed setup, once to warm up and then
// runs times.
func timeRunsSetup(runs int, setup, f func() error) (BenchTimes, error) {
	var t []float64
	for i := 0; i <= runs; i++ {
		if setup != nil {
			if err := setup(); err != nil {
				return BenchTimes{}, err
			}
		}
		start := time.Now()
		if err := f(); err != nil {
			return BenchTimes{}, err
		}
		if i > 0 {
			t = append(t, ms(time.Since(start)))
		}
	}
	slices.Sort(t)
	return BenchTimes{Median: t[len(t)/2], Min: t[0], Max: t[len(t)-1]}, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// peakRSSMB reads the process's peak resident set (VmHWM) on Linux.
func peakRSSMB() float64 {
	return procStatusKB("VmHWM:") / 1e3
}

func procStatusKB(key string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb * 1.024
		}
	}
	return 0
}

// cpuName is the CPU's model name on Linux, else GOARCH.
func cpuName() string {
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
			}
		}
	}
	return runtime.GOARCH
}

// WriteJSON writes the report as indented JSON.
func (r *BenchReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as a table.
func (r *BenchReport) WriteText(w io.Writer) error {
	var errs []error
	p := func(format string, a ...any) {
		_, err := fmt.Fprintf(w, format, a...)
		errs = append(errs, err)
	}
	p("model    %s (%d lens rows)\n", r.Model, r.Rows)
	p("cpu      %s, %d threads\n", r.CPU, r.Threads)
	p("blas     %s\n", r.BLAS)
	p("weights  %.0f MB float32; peak RSS %.0f MB (%.2f×)", r.WeightsMB, r.PeakRSSMB, r.PeakRSSMB/r.WeightsMB)
	if r.LoadMs > 0 {
		p("; load %.0f ms", r.LoadMs)
	}
	p("\n")
	if r.MemReadGB > 0 {
		p("memory   %.1f GB/s read (one appended token's floor: every weight once)\n", r.MemReadGB)
	}
	p("\nmedian [min–max] ms over the runs after a warm-up\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "tokens\tfull lens\tGFLOP/s\t+1 token\tGFLOP/s\t×floor\tunembed\tlens\tstats\t\n")
	for _, x := range r.Results {
		floor := "-"
		if x.IncFloorRatio > 0 {
			floor = fmt.Sprintf("%.2f", x.IncFloorRatio)
		}
		fmt.Fprintf(tw, "%d\t%s\t%.1f\t%s\t%.1f\t%s\t%.0f\t%.0f\t%+.0f%%\t\n", x.Tokens, span(x.Full), x.FullGFLOPS,
			span(x.Incremental), x.IncGFLOPS, floor, x.Unembed.Median, x.Lens.Median, 100*x.StatsOverhead)
	}
	errs = append(errs, tw.Flush())
	return errors.Join(errs...)
}

func span(t BenchTimes) string {
	return fmt.Sprintf("%.1f [%.1f–%.1f]", t.Median, t.Min, t.Max)
}
