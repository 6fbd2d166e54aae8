// Package bench times the logit lens on a loaded model, for `logitlens
// bench`: a full lens from scratch and a one-token append at each prompt
// length, plus the lens's unembedding alone against the same with every
// statistic. Every time is the backend's own (Backend.Time): the wall
// clock on the CPU, CUDA events on a GPU, where nothing runs on the host
// but the bookkeeping.
package bench

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
	"sync"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/logitlens/logitlens/inference"
)

// Options configure Run.
type Options struct {
	Tokens    []int         // prompt lengths; default 16, 64, 128
	Runs      int           // timed runs per measurement after one warm-up; default 7
	TopK      int           // default 10
	Sublayers bool          // add the resid_mid rows
	LoadTime  time.Duration // model load time to report, measured by the caller; 0 to omit
}

// Times summarises one measurement's runs, in milliseconds.
type Times struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Result is one prompt length's timings.
type Result struct {
	Tokens int `json:"tokens"`
	// Full is a whole lens from scratch: forward, ln_f, unembedding and all
	// statistics (entropy, KL, ranks, top-k) for every row and position.
	Full Times `json:"full_ms"`
	// Visible is what the explorer waits for after an edit at the start
	// of a long prompt: the first token replaced, the time until the lens
	// of the last VisibleColumns positions (asked for first, through
	// Request.Priority) is complete, the forward pass of every position
	// included.
	Visible Times `json:"visible_ms"`
	// Incremental appends one token to a cached prefix of Tokens−1: its
	// forward on the KV cache and the lens of all its rows.
	Incremental Times `json:"incremental_ms"`
	// Unembed is ln_f and the unembedding GEMM of all lens rows, on the
	// device, with no statistics; Lens is the same with every statistic.
	Unembed Times `json:"unembed_ms"`
	Lens    Times `json:"lens_ms"`
	// StatsOverhead is median Lens / median Unembed − 1.
	StatsOverhead float64 `json:"stats_overhead"`
	FullGFLOPS    float64 `json:"full_gflops"`        // useful FLOPs of Full / median time
	IncGFLOPS     float64 `json:"incremental_gflops"` // the same for Incremental
	// IncFloorRatio is median Incremental over the time to read every
	// weight once at MemReadGBs (0 when that is unknown or the model is not
	// on the CPU).
	IncFloorRatio float64 `json:"incremental_floor_ratio,omitempty"`
}

// Report is what Run measured, with the machine it ran on.
type Report struct {
	Model     string   `json:"model"`
	BLAS      string   `json:"blas"`
	Device    string   `json:"device"`
	CPU       string   `json:"cpu"`
	Threads   int      `json:"threads"`
	Rows      int      `json:"rows"`
	WeightsMB float64  `json:"weights_mb"`
	PeakRSSMB float64  `json:"peak_rss_mb,omitempty"` // VmHWM; 0 where unknown
	LoadMs    float64  `json:"load_ms,omitempty"`
	MemReadGB float64  `json:"mem_read_gbs,omitempty"` // measured host read bandwidth, all threads (CPU models)
	Results   []Result `json:"results"`
}

// VisibleColumns is how many columns Result.Visible waits for: about what
// a terminal shows.
const VisibleColumns = 16

// Run times the full lens and a one-token append at each prompt length
// on m, plus the bare unembedding against the lens statistics, and reports
// medians over opt.Runs runs after a warm-up. Prompts are fixed
// pseudo-random token ids, so runs are comparable across machines.
func Run(ctx context.Context, m *inference.Model, opt Options) (*Report, error) {
	if len(opt.Tokens) == 0 {
		opt.Tokens = []int{16, 64, 128}
	}
	if opt.Runs <= 0 {
		opt.Runs = 7
	}
	if opt.TopK == 0 {
		opt.TopK = 10
	}
	cfg := m.Config()
	for _, T := range opt.Tokens {
		if T < 2 || T > cfg.NPositions {
			return nil, fmt.Errorf("bench: %d tokens is outside 2..%d (n_positions)", T, cfg.NPositions)
		}
	}
	info := m.Info()
	rep := &Report{
		Model: info.ID, BLAS: info.BLAS, Device: info.Device, CPU: cpuName(),
		Threads: runtime.GOMAXPROCS(0), Rows: len(m.Rows(opt.Sublayers)),
		WeightsMB: float64(weightBytes(m)) / 1e6, LoadMs: ms(opt.LoadTime),
	}
	if info.Device == "cpu" { // the floor of a host step is the host's memory bandwidth
		rep.MemReadGB = memReadGBs(m)
	}
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]int, slices.Max(opt.Tokens))
	for i := range ids {
		ids[i] = r.IntN(m.Tokenizer().VocabSize())
	}
	s := m.NewSession() // one session, as the explorer keeps
	defer s.Close()
	dev := m.Backend().NewDevice() // for the lens alone, on stored rows
	defer dev.Close()
	for _, T := range opt.Tokens {
		res, err := runOne(ctx, m, s, dev, ids[:T], opt)
		if err != nil {
			return nil, err
		}
		if rep.MemReadGB > 0 {
			floor := float64(stepBytes(m)) / (rep.MemReadGB * 1e9) * 1e3
			res.IncFloorRatio = res.Incremental.Median / floor
		}
		rep.Results = append(rep.Results, res)
	}
	rep.PeakRSSMB = peakRSSMB()
	return rep, nil
}

// runOne measures one prompt length.
func runOne(ctx context.Context, m *inference.Model, s *inference.Session, dev inference.Device, ids []int, opt Options) (Result, error) {
	b := m.Backend()
	T := len(ids)
	res := Result{Tokens: T}
	target := ids[T-1] // one target for every request: a new one would invalidate the cells
	req := func(ids []int) inference.Request {
		return inference.Request{IDs: ids, TopK: opt.TopK, Target: target, Sublayers: opt.Sublayers}
	}
	lens := func(ids []int) func() error {
		return func() error {
			_, err := s.Lens(ctx, req(ids), nil)
			return err
		}
	}
	// Full: the first token alternates, so nothing is reusable; buffers are.
	alt := slices.Clone(ids)
	full, err := timeRuns(b, opt.Runs, func(i int) func() error {
		alt[0] = ids[0] ^ (i & 1)
		return lens(alt)
	})
	if err != nil {
		return res, err
	}
	// Visible: the same edit, the last columns first; timed until they
	// are out, then the rest is cancelled.
	visible, err := timeVisible(ctx, s, req(alt), ids[0], opt.Runs)
	if err != nil {
		return res, err
	}
	res.Visible = visible
	// Incremental: back to T−1 (served from the cache), then append one.
	inc, err := timeRunsSetup(b, opt.Runs, lens(ids[:T-1]), lens(ids))
	if err != nil {
		return res, err
	}
	// The lens alone, and its bare GEMM, on the device's stored rows.
	if err := dev.Forward(ctx, ids, 0); err != nil {
		return res, err
	}
	rows := m.Rows(opt.Sublayers)
	out := make([][]inference.Cell, len(rows))
	for r := range out {
		out[r] = make([]inference.Cell, T)
	}
	lr := inference.LensRequest{Rows: rows, From: 0, To: T, TopK: opt.TopK, Target: target}
	lensOnly, err := timeRuns(b, opt.Runs, func(int) func() error { return func() error { return dev.Lens(ctx, lr, out) } })
	if err != nil {
		return res, err
	}
	lr.LogitsOnly = true
	gemm, err := timeRuns(b, opt.Runs, func(int) func() error { return func() error { return dev.Lens(ctx, lr, out) } })
	if err != nil {
		return res, err
	}
	res.Full, res.Incremental, res.Lens, res.Unembed = full, inc, lensOnly, gemm
	res.StatsOverhead = lensOnly.Median/gemm.Median - 1
	R := len(rows)
	res.FullGFLOPS = flops(m, 0, T, R) / full.Median / 1e6
	res.IncGFLOPS = flops(m, T-1, 1, R) / inc.Median / 1e6
	return res, nil
}

// flops counts the multiply-adds (×2) of T positions from p0 with R lens
// rows: the block GEMMs, attention and the unembedding.
func flops(m *inference.Model, p0, T, R int) float64 {
	cfg := m.Config()
	C, V, L := float64(cfg.NEmbd), float64(cfg.VocabSize), float64(cfg.NLayer)
	t := float64(T)
	var att float64 // q·k and p·v over the visible keys
	for i := 0; i < T; i++ {
		att += float64(p0 + i + 1)
	}
	return 2*t*12*C*C*L + 2*2*att*C*L + 2*float64(R)*t*C*V
}

// weightBytes is the size of the float32 weights the model reads.
func weightBytes(m *inference.Model) int64 {
	ck := m.Checkpoint()
	var n int64
	for _, name := range ck.Names() {
		n += int64(len(ck.Tensor(name).Data))
	}
	return 4 * n
}

// stepBytes is what one appended token must read: every block weight and
// the unembedding matrix, once.
func stepBytes(m *inference.Model) int64 {
	return weightBytes(m) - 4*int64(len(m.Checkpoint().Tensor("wpe.weight").Data))
}

// memReadGBs measures the read bandwidth of all threads over the model's
// block weights (already in memory), in GB/s; it is the floor's yardstick.
func memReadGBs(m *inference.Model) float64 {
	ck := m.Checkpoint()
	var parts [][]float32
	for i := range m.Config().NLayer {
		for _, w := range []string{"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"} {
			parts = append(parts, ck.Tensor(fmt.Sprintf("h.%d.%s.weight", i, w)).Data)
		}
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

var sink uint64

// sumAll reads every float of parts as 64-bit words, the threads splitting
// each part: eight bytes an instruction keeps up with memory.
func sumAll(parts [][]float32) {
	threads := runtime.GOMAXPROCS(0)
	sums := make([]uint64, threads*8) // a cache line each
	for _, p := range parts {
		words := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(p))), len(p)/2)
		var wg sync.WaitGroup
		for w := range threads {
			part := words[w*len(words)/threads : (w+1)*len(words)/threads]
			wg.Add(1)
			go func() {
				defer wg.Done()
				var a, b, c, d uint64
				i := 0
				for ; i+4 <= len(part); i += 4 {
					a ^= part[i]
					b ^= part[i+1]
					c ^= part[i+2]
					d ^= part[i+3]
				}
				sums[w*8] = a ^ b ^ c ^ d
			}()
		}
		wg.Wait()
	}
	sink = sums[0]
}

// timeVisible times, once to warm up and then runs times, a lens of req
// with its first token alternating (so nothing is reusable) and its last
// VisibleColumns positions asked for first: the wall time from the call to
// the last of those columns, after which the call is cancelled. Wall time,
// not the backend's clock: the columns reach the host as the explorer sees
// them.
func timeVisible(ctx context.Context, s *inference.Session, req inference.Request, first, runs int) (Times, error) {
	T := len(req.IDs)
	n := min(T, VisibleColumns)
	req.IDs = slices.Clone(req.IDs)
	req.Priority = make([]int, n)
	for i := range n {
		req.Priority[i] = T - n + i
	}
	var t []float64
	for i := 0; i <= runs; i++ {
		req.IDs[0] = first ^ (i&1 ^ 1) // never the ids the session holds
		runCtx, cancel := context.WithCancel(ctx)
		seen := 0
		var took time.Duration
		start := time.Now()
		_, err := s.Lens(runCtx, req, func(c inference.Column) {
			if c.Pos >= T-n {
				if seen++; seen == n {
					took = time.Since(start)
					cancel()
				}
			}
		})
		cancel()
		if seen < n {
			if err == nil {
				err = fmt.Errorf("bench: %d of the last %d columns came", seen, n)
			}
			return Times{}, err
		}
		if i > 0 {
			t = append(t, ms(took))
		}
	}
	slices.Sort(t)
	return Times{Median: t[len(t)/2], Min: t[0], Max: t[len(t)-1]}, nil
}

// timeRuns runs f(0)() once to warm up, then f(1..runs)(), timing each
// with the backend's clock.
func timeRuns(b inference.Backend, runs int, f func(i int) func() error) (Times, error) {
	i := 0
	return timeRunsSetup(b, runs, nil, func() error { i++; return f(i - 1)() })
}

// timeRunsSetup times f after an untimed setup, once to warm up and then
// runs times.
func timeRunsSetup(b inference.Backend, runs int, setup, f func() error) (Times, error) {
	var t []float64
	for i := 0; i <= runs; i++ {
		if setup != nil {
			if err := setup(); err != nil {
				return Times{}, err
			}
		}
		d, err := b.Time(f)
		if err != nil {
			return Times{}, err
		}
		if i > 0 {
			t = append(t, ms(d))
		}
	}
	slices.Sort(t)
	return Times{Median: t[len(t)/2], Min: t[0], Max: t[len(t)-1]}, nil
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
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as a table.
func (r *Report) WriteText(w io.Writer) error {
	var errs []error
	p := func(format string, a ...any) {
		_, err := fmt.Fprintf(w, format, a...)
		errs = append(errs, err)
	}
	p("model    %s (%d lens rows)\n", r.Model, r.Rows)
	p("device   %s\n", r.Device)
	p("cpu      %s, %d threads\n", r.CPU, r.Threads)
	if r.Device == "cpu" { // a GPU's products are cuBLAS's, named in the device line
		p("blas     %s\n", r.BLAS)
	}
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
	fmt.Fprintf(tw, "tokens\tfull lens\tGFLOP/s\tlast %d first\t×full\t+1 token\tGFLOP/s\t×floor\tunembed\tlens\tstats\t\n", VisibleColumns)
	for _, x := range r.Results {
		floor := "-"
		if x.IncFloorRatio > 0 {
			floor = fmt.Sprintf("%.2f", x.IncFloorRatio)
		}
		fmt.Fprintf(tw, "%d\t%s\t%.1f\t%s\t%.2f\t%s\t%.1f\t%s\t%.0f\t%.0f\t%+.0f%%\t\n", x.Tokens, span(x.Full), x.FullGFLOPS,
			span(x.Visible), x.Visible.Median/x.Full.Median, span(x.Incremental), x.IncGFLOPS, floor, x.Unembed.Median, x.Lens.Median, 100*x.StatsOverhead)
	}
	errs = append(errs, tw.Flush())
	return errors.Join(errs...)
}

func span(t Times) string {
	return fmt.Sprintf("%.1f [%.1f–%.1f]", t.Median, t.Min, t.Max)
}
