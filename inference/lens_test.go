package inference

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/logitlens/logitlens/weights/tokenizer"

	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/testmodel"
)

func openModel(t testing.TB, name string) *Model {
	t.Helper()
	dir := testmodel.Dir(t, name)
	ck, err := weights.OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewModel(ck, tok, NewCPUBackend, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// golden is the part of lens_ref.py's JSON the tests read. Arrays are
// [n_layer+1][T] or [n_layer+1][T][k].
type golden struct {
	Prompt     string `json:"prompt"` // empty when the reference was given ids
	PrependBOS bool   `json:"prepend_bos"`
	IDs        []int  `json:"ids"`
	SHA256     string `json:"model_safetensors_sha256"`
	TopK       int    `json:"top_k"`
	ProbeIDs   []int  `json:"probe_ids"`
	Results    struct {
		F64 struct {
			TopIDs        [][][]int     `json:"top_ids"`
			TopProbs      [][][]float64 `json:"top_probs"`
			MinGap        [][]float64   `json:"topk_min_gap"`
			Entropy       [][]float64   `json:"entropy"`
			KL            [][]float64   `json:"kl_final_layer"`
			FinalTop1     []int         `json:"final_top1"`
			FinalTop1Rank [][]int       `json:"final_top1_rank"`
			FinalTop1Prob [][]float64   `json:"final_top1_prob"`
			LSE           [][]float64   `json:"logsumexp"`
			ProbeLogits   [][][]float64 `json:"probe_logits"`
			NextProb      [][]*float64  `json:"next_prob"` // null at the last position
			NextRank      [][]*int      `json:"next_rank"`
		} `json:"float64"`
	} `json:"results"`
}

func readGolden(t *testing.T, name, model string) *golden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if model != "" {
		testmodel.CheckPin(t, model, "inference/testdata/golden/"+name+".json", g.SHA256)
	}
	return &g
}

// Tolerances against the float64 reference (issue #3).
const (
	tolProb    = 1e-4
	tolNats    = 1e-3
	tolMinGap  = 1e-5 // compare top-k ids only where the reference's gaps exceed this
	tolOwnProb = 1e-6 // incremental vs full recompute, same float32 code
)

// checkAgainstGolden compares every block row of l with the reference and
// reports the largest differences. A rank may differ from the reference's by
// at most ties(row, pos): the logits within float32 rounding of the ranked
// one, whose order no float32 product can resolve.
func checkAgainstGolden(t *testing.T, g *golden, l *Lens, ties func(row, pos int) int) {
	t.Helper()
	r := g.Results.F64
	if !slices.Equal(l.IDs, g.IDs) {
		t.Fatalf("ids %v, reference %v", l.IDs, g.IDs)
	}
	var maxProb, maxEnt, maxKL float64
	compared := 0
	row := 0
	for ri, rw := range l.Rows {
		if rw.Kind == AttnMid {
			continue
		}
		for pos := range l.IDs {
			c := l.Cells[ri][pos]
			if r.MinGap[row][pos] > tolMinGap {
				compared++
				for j, id := range r.TopIDs[row][pos] {
					if c.Top[j].ID != id {
						t.Errorf("row %s pos %d: top[%d] = %d, reference %d", rw.Name, pos, j, c.Top[j].ID, id)
					}
				}
			}
			for j := range r.TopProbs[row][pos] {
				maxProb = max(maxProb, math.Abs(c.Top[j].Prob-r.TopProbs[row][pos][j]))
			}
			maxEnt = max(maxEnt, math.Abs(c.Entropy-r.Entropy[row][pos]))
			maxKL = max(maxKL, math.Abs(c.KLToFinal-r.KL[row][pos]))
			maxProb = max(maxProb, math.Abs(c.FinalTop1Prob-r.FinalTop1Prob[row][pos]))
			if d := c.FinalTop1Rank - r.FinalTop1Rank[row][pos]; d != 0 && (ties == nil || abs(d) > ties(ri, pos)) {
				t.Errorf("row %s pos %d: final top-1 rank %d, reference %d", rw.Name, pos, c.FinalTop1Rank, r.FinalTop1Rank[row][pos])
			}
		}
		row++
	}
	if row != len(r.Entropy) {
		t.Fatalf("%d block rows, reference %d", row, len(r.Entropy))
	}
	if !slices.Equal(l.FinalTop1, r.FinalTop1) {
		t.Errorf("final top-1 %v, reference %v", l.FinalTop1, r.FinalTop1)
	}
	t.Logf("max |Δprob| %.2e, |Δentropy| %.2e, |ΔKL| %.2e; top-k ids compared in %d cells", maxProb, maxEnt, maxKL, compared)
	if maxProb > tolProb || maxEnt > tolNats || maxKL > tolNats {
		t.Errorf("outside tolerance: |Δprob| %.2e (≤ %g), |Δentropy| %.2e, |ΔKL| %.2e (≤ %g)", maxProb, tolProb, maxEnt, maxKL, tolNats)
	}
	if compared == 0 {
		t.Error("no cell had a top-k gap large enough to compare ids")
	}
}

func TestLensMatchesReference(t *testing.T) {
	cases := []struct{ golden, model string }{
		{"eiffel", "tiny-f32"},
		{"eiffel-bos", "tiny-f32"},
		{"unicode", "tiny-f32"},
		{"long-seed11", "tiny-seed11"},
		{"mixed", "tiny-mixed"},
		{"lmhead", "tiny-lmhead"},
		{"small-shape", "small-shape"},
		// GPT-2 xl's width and heads at all 1024 positions, on ids.
		{"xl-1layer", "xl-1layer"},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			g := readGolden(t, tc.golden, tc.model)
			m := openModel(t, tc.model)
			ids := g.IDs
			if g.Prompt != "" {
				ids = m.tok.EncodeIDs(g.Prompt)
				if g.PrependBOS {
					ids = append([]int{m.EOT()}, ids...)
				}
				if !slices.Equal(ids, g.IDs) {
					t.Fatalf("tokenized %q to %v, reference %v", g.Prompt, ids, g.IDs)
				}
			}
			// The target is a probe id, whose logits the reference records.
			target := g.ProbeIDs[len(g.ProbeIDs)-1]
			s := m.NewSession()
			l, err := s.Lens(context.Background(), Request{IDs: ids, TopK: g.TopK, Target: target}, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstGolden(t, g, l, func(row, pos int) int {
				return nearTies(s, l.Rows[row], pos, l.FinalTop1[pos])
			})
			r := g.Results.F64
			for row := range r.LSE {
				for pos := range ids {
					want := math.Exp(r.ProbeLogits[row][pos][len(g.ProbeIDs)-1] - r.LSE[row][pos])
					if d := math.Abs(l.Cells[row][pos].TargetProb - want); d > tolProb {
						t.Errorf("row %d pos %d: target prob %g, reference %g", row, pos, l.Cells[row][pos].TargetProb, want)
					}
				}
			}
		})
	}
}

// A target equal to the final top-1 must get exactly the final top-1's rank.
func TestTargetRankMatchesReference(t *testing.T) {
	g := readGolden(t, "eiffel", "tiny-f32")
	m := openModel(t, "tiny-f32")
	last := len(g.IDs) - 1
	target := g.Results.F64.FinalTop1[last]
	l, err := m.NewSession().Lens(context.Background(), Request{IDs: g.IDs, TopK: 5, Target: target}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for row := range l.Rows {
		if got, want := l.Cells[row][last].TargetRank, g.Results.F64.FinalTop1Rank[row][last]; got != want {
			t.Errorf("row %d: target rank %d, reference %d", row, got, want)
		}
	}
}

// With the next token as the target, the target's probability and rank at
// each position are the reference's next_prob and next_rank.
func TestNextTokenMatchesReference(t *testing.T) {
	for _, tc := range []struct{ golden, model string }{{"eiffel", "tiny-f32"}, {"long-seed11", "tiny-seed11"}} {
		t.Run(tc.golden, func(t *testing.T) {
			g := readGolden(t, tc.golden, tc.model)
			r := g.Results.F64
			s := openModel(t, tc.model).NewSession()
			compared := 0
			// One lens per distinct next token, targeting it.
			for _, next := range slices.Compact(slices.Sorted(slices.Values(g.IDs[1:]))) {
				l, err := s.Lens(context.Background(), Request{IDs: g.IDs, TopK: 1, Target: next}, nil)
				if err != nil {
					t.Fatal(err)
				}
				for pos := range len(g.IDs) - 1 {
					if g.IDs[pos+1] != next {
						continue
					}
					for row := range l.Rows {
						c := l.Cells[row][pos]
						if d := math.Abs(c.TargetProb - *r.NextProb[row][pos]); d > tolProb {
							t.Errorf("row %d pos %d: P(next) %g, reference %g", row, pos, c.TargetProb, *r.NextProb[row][pos])
						}
						if d := c.TargetRank - *r.NextRank[row][pos]; d != 0 && abs(d) > nearTies(s, l.Rows[row], pos, next) {
							t.Errorf("row %d pos %d: rank of next %d, reference %d", row, pos, c.TargetRank, *r.NextRank[row][pos])
						}
						compared++
					}
				}
			}
			if last := len(g.IDs) - 1; r.NextProb[0][last] != nil || compared != len(r.Entropy)*last {
				t.Errorf("compared %d cells; reference's last position %v", compared, r.NextProb[0][last])
			}
		})
	}
}

// The resid_mid rows match the reference run on a copy of the checkpoint
// whose block-i MLP output is zeroed (see tools/goldens/regen.sh), where
// h[i] is the real model's resid_mid. Only statistics of the row itself
// compare: that copy's final row differs. Those goldens come from the same
// run as eiffel's, whose pin says whether they are current.
func TestSublayerRowsMatchReference(t *testing.T) {
	readGolden(t, "eiffel", "tiny-f32")
	m := openModel(t, "tiny-f32")
	for block := 1; block <= 2; block++ {
		g := readGolden(t, "eiffel-mid"+string(rune('0'+block)), "")
		l, err := m.NewSession().Lens(context.Background(), Request{IDs: g.IDs, TopK: 10, Target: -1, Sublayers: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ri := slices.IndexFunc(l.Rows, func(r Row) bool { return r.Kind == AttnMid && r.Layer == block })
		if ri < 0 || l.Rows[ri].Name != string(rune('0'+block))+".attn" {
			t.Fatalf("no resid_mid row for block %d in %v", block, l.Rows)
		}
		r := g.Results.F64
		for pos := range g.IDs {
			c := l.Cells[ri][pos]
			if r.MinGap[block][pos] > tolMinGap && c.Top[0].ID != r.TopIDs[block][pos][0] {
				t.Errorf("block %d pos %d: resid_mid top-1 %d, reference %d", block, pos, c.Top[0].ID, r.TopIDs[block][pos][0])
			}
			for j, p := range r.TopProbs[block][pos] {
				if d := math.Abs(c.Top[j].Prob - p); d > tolProb {
					t.Errorf("block %d pos %d: top[%d] prob %g, reference %g", block, pos, j, c.Top[j].Prob, p)
				}
			}
			if d := math.Abs(c.Entropy - r.Entropy[block][pos]); d > tolNats {
				t.Errorf("block %d pos %d: entropy %g, reference %g", block, pos, c.Entropy, r.Entropy[block][pos])
			}
		}
	}
}

// Incremental results (appends, deletions, edits in the middle, option
// changes) equal a fresh session's full recompute.
func TestIncrementalEqualsFullRecompute(t *testing.T) {
	m := openModel(t, "tiny-seed11")
	base := m.tok.EncodeIDs("It was a bright cold day in April, and the clocks were striking thirteen. Winston Smith")
	edit := slices.Clone(base)
	edit[5] = 1000
	steps := []struct {
		name string
		req  Request
	}{
		{"prompt", Request{IDs: base[:10], TopK: 10, Target: -1}},
		{"append one", Request{IDs: base[:11], TopK: 10, Target: -1}},
		{"append many", Request{IDs: base, TopK: 10, Target: -1}},
		{"delete", Request{IDs: base[:7], TopK: 10, Target: -1}},
		{"edit middle", Request{IDs: edit, TopK: 10, Target: -1}},
		{"new target", Request{IDs: edit, TopK: 10, Target: 262}},
		{"sublayers", Request{IDs: edit, TopK: 3, Target: 262, Sublayers: true}},
		{"back to base", Request{IDs: base, TopK: 10, Target: -1}},
	}
	s := m.NewSession()
	for _, st := range steps {
		inc, err := s.Lens(context.Background(), st.req, nil)
		if err != nil {
			t.Fatal(err)
		}
		full, err := m.NewSession().Lens(context.Background(), st.req, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxCellDiff(t, inc, full); d > ownTol() {
			t.Errorf("%s: incremental differs from full recompute by %g", st.name, d)
		}
	}
	// Appending one token reuses every earlier position.
	l, err := s.Lens(context.Background(), Request{IDs: append(slices.Clone(base), 13), TopK: 10, Target: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Reused != len(base) {
		t.Errorf("append reused %d positions, want %d", l.Reused, len(base))
	}
}

// ownTol is the tolerance between two runs of our own code. Our Sgemm sums
// every row in the same order whatever the batch, so an incremental step
// equals a full recompute bit for bit; OpenBLAS picks kernels by shape, so a
// row rounds differently in a one-token step than in a full pass.
func ownTol() float64 {
	if strings.HasPrefix(BLASName(), "openblas") {
		return 1e-5
	}
	return tolOwnProb
}

func maxCellDiff(t *testing.T, a, b *Lens) float64 {
	t.Helper()
	if !slices.Equal(a.IDs, b.IDs) || len(a.Rows) != len(b.Rows) {
		t.Fatalf("different shapes: %d×%d vs %d×%d", len(a.Rows), len(a.IDs), len(b.Rows), len(b.IDs))
	}
	var d float64
	for r := range a.Cells {
		for p := range a.Cells[r] {
			x, y := a.Cells[r][p], b.Cells[r][p]
			if len(x.Top) != len(y.Top) || x.FinalTop1Rank != y.FinalTop1Rank || x.TargetRank != y.TargetRank {
				t.Fatalf("row %d pos %d: %+v vs %+v", r, p, x, y)
			}
			for j := range x.Top {
				if x.Top[j].ID != y.Top[j].ID {
					t.Fatalf("row %d pos %d: top ids differ", r, p)
				}
				d = max(d, math.Abs(x.Top[j].Prob-y.Top[j].Prob))
			}
			d = max(d, math.Abs(x.Entropy-y.Entropy), math.Abs(x.KLToFinal-y.KLToFinal), math.Abs(x.TargetProb-y.TargetProb))
		}
	}
	return d
}

func TestStreamedColumnsMatchResult(t *testing.T) {
	m := openModel(t, "tiny-seed11")
	ids := m.tok.EncodeIDs("It was a bright cold day in April, and the clocks were striking thirteen. Winston Smith, his chin nuzzled into his breast in an effort to escape the vile wind")
	var cols []Column
	l, err := m.NewSession().Lens(context.Background(), Request{IDs: ids, TopK: 4, Target: -1, Sublayers: true}, func(c Column) { cols = append(cols, c) })
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != len(ids) {
		t.Fatalf("%d columns streamed, want %d", len(cols), len(ids))
	}
	for p, c := range cols {
		if c.Pos != p || len(c.Cells) != len(l.Rows) {
			t.Fatalf("column %d: pos %d with %d cells", p, c.Pos, len(c.Cells))
		}
		for r := range l.Rows {
			if c.Cells[r].Entropy != l.Cells[r][p].Entropy || c.Cells[r].Top[0] != l.Cells[r][p].Top[0] {
				t.Fatalf("column %d row %d differs from the result", p, r)
			}
		}
	}
}

func TestBadRequests(t *testing.T) {
	m := openModel(t, "tiny-f32")
	P := m.Config().NPositions
	long := make([]int, P+1)
	for _, tc := range []struct {
		name string
		req  Request
	}{
		{"empty", Request{TopK: 10, Target: -1}},
		{"too long", Request{IDs: long, TopK: 10, Target: -1}},
		{"bad id", Request{IDs: []int{1, 50257}, TopK: 10, Target: -1}},
		{"negative id", Request{IDs: []int{-1}, TopK: 10, Target: -1}},
		{"top-k 0", Request{IDs: []int{1}, TopK: 0, Target: -1}},
		{"top-k 51", Request{IDs: []int{1}, TopK: 51, Target: -1}},
		{"bad target", Request{IDs: []int{1}, TopK: 10, Target: 60000}},
	} {
		if _, err := m.NewSession().Lens(context.Background(), tc.req, nil); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	_, err := m.NewSession().Lens(context.Background(), Request{IDs: long, TopK: 10, Target: -1}, nil)
	if !errors.Is(err, ErrPromptTooLong) {
		t.Errorf("too long: %v is not ErrPromptTooLong", err)
	}
}

// Cancelling and restarting from many goroutines leaves the session
// consistent: the final answer equals a fresh computation (run with -race).
func TestConcurrentCancelRestart(t *testing.T) {
	m := openModel(t, "tiny-seed11")
	ids := m.tok.EncodeIDs("It was a bright cold day in April, and the clocks were striking thirteen. Winston Smith, his chin nuzzled")
	s := m.NewSession()
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			n := 1 + (i*7)%len(ids)
			go cancel()
			_, err := s.Lens(ctx, Request{IDs: ids[:n], TopK: 5, Target: -1}, func(Column) {})
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	req := Request{IDs: ids, TopK: 5, Target: -1}
	got, err := s.Lens(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.NewSession().Lens(context.Background(), req, nil)
	if d := maxCellDiff(t, got, want); d > ownTol() {
		t.Errorf("after concurrent cancels the session differs by %g", d)
	}
}

func abs(x int) int { return max(x, -x) }

// nearTies recomputes one lens row's logits in float64 from the session's
// stored stream and counts the ids whose logit is within float32 rounding
// (2⁻²²·max(1, |z|)) of id's.
func nearTies(s *Session, row Row, pos, id int) int {
	m := s.m
	C, V := m.cfg.NEmbd, m.cfg.VocabSize
	d := s.dev.(*cpuDevice) // these tests run the CPU device
	x := append([]float32(nil), d.streams[row.stream()][pos*C:(pos+1)*C]...)
	layerNorm(x, x, d.w.lnFG, d.w.lnFB, C, float32(m.cfg.LayerNormEpsilon))
	u := m.ckpt.LMHead().Data // [V,C]
	logit := func(j int) float64 {
		var z float64
		for p, v := range x {
			z += float64(v) * float64(u[j*C+p])
		}
		return z
	}
	zi := logit(id)
	tol := math.Ldexp(max(1, math.Abs(zi)), -22)
	n := 0
	for j := 0; j < V; j++ {
		if j != id && math.Abs(logit(j)-zi) <= tol {
			n++
		}
	}
	return n
}
