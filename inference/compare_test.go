package inference_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights/testmodel"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// compareGolden is the part of lens_ref.py --compare-*'s JSON the tests
// read (tools/goldens/compare.sh writes them).
type compareGolden struct {
	Model      string `json:"model_dir"`
	SHA256     string `json:"model_safetensors_sha256"`
	Prompt     string `json:"prompt"`
	PrependBOS bool   `json:"prepend_bos"`
	IDs        []int  `json:"ids"`
	Tuned      string `json:"tuned_lens"`
	Results    struct {
		F64 struct {
			TopIDs   [][][]int     `json:"top_ids"`
			TopProbs [][][]float64 `json:"top_probs"`
		} `json:"float64"`
	} `json:"results"`
	Compare struct {
		IDsB      []int  `json:"ids_b"`
		Columns   int    `json:"columns"`
		Alignment string `json:"alignment"`
		B         struct {
			Prompt *string `json:"prompt"`
			Model  *string `json:"model_dir"`
			Tuned  *string `json:"tuned"`
		} `json:"b"`
		KL    [][]float64 `json:"kl_ab"`
		Top1B [][]int     `json:"top1_b"`
		ProbB [][]float64 `json:"prob_b_of_top1_a"`
	} `json:"compare"`
}

func readCompareGolden(t *testing.T, name string) *compareGolden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "compare", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var g compareGolden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("golden %s: %v", name, err)
	}
	if g.Compare.Alignment != "right" {
		t.Fatalf("golden %s: alignment %q", name, g.Compare.Alignment)
	}
	return &g
}

// comparePin returns the sha256 compare.sh recorded for a run B checkpoint.
func comparePin(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "compare", "pins.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if n, sha, ok := strings.Cut(sc.Text(), " "); ok && n == name {
			return sha
		}
	}
	t.Fatalf("testdata/compare/pins.txt has no %s", name)
	return ""
}

// openTestModel opens a testmodel checkpoint on the CPU device, checking
// that it is the one a golden was computed on.
func openTestModel(t *testing.T, name, golden, sha string) *inference.Model {
	t.Helper()
	dir := testmodel.Dir(t, name)
	testmodel.CheckPin(t, name, golden, sha)
	m, err := inference.OpenDir(dir, name, inference.NewCPUBackend)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func loadLens(t *testing.T, name string) *tunedlens.Lens {
	t.Helper()
	if name == "" || name == "logit" {
		return nil
	}
	l, err := tunedlens.Load(filepath.Join("..", "weights", "tunedlens", "testdata", "lenses", name), 64, 2)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// encode tokenizes a golden's prompt as the reference did.
func encode(t *testing.T, m *inference.Model, prompt string, bos bool, want []int) []int {
	t.Helper()
	ids := m.Tokenizer().EncodeIDs(prompt)
	if bos {
		ids = append([]int{m.EOT()}, ids...)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("tokenized %q to %v, reference %v", prompt, ids, want)
	}
	return ids
}

// Tolerances against the float64 reference (issue 16).
const (
	tolCompareKL   = 1e-3
	tolCompareProb = 1e-4
)

// TestCompareMatchesReference: KL(P_A ‖ P_B), B's top-1 and B's
// probability of A's top-1 at every right-aligned cell equal lens_ref.py
// --compare-*'s, for each kind of run B: another prompt (longer, shorter,
// with BOS, the same), another checkpoint (A's bf16-rounded copy, another
// seed) and another lens (logit against tuned, both ways).
func TestCompareMatchesReference(t *testing.T) {
	for _, name := range []string{"prompt-longer", "prompt-shorter", "prompt-bos", "prompt-same",
		"model-bf16", "model-seed11", "lens-tuned", "lens-logit"} {
		t.Run(name, func(t *testing.T) {
			g := readCompareGolden(t, name)
			ma := openTestModel(t, g.Model, name+".json", g.SHA256)
			mb := ma
			if b := g.Compare.B.Model; b != nil {
				mb = openTestModel(t, *b, name+".json", comparePin(t, *b))
			}
			ra := inference.Request{TopK: 10, Target: -1, NextToken: true, Tuned: loadLens(t, g.Tuned)}
			ra.IDs = encode(t, ma, g.Prompt, g.PrependBOS, g.IDs)
			rb := ra
			if p := g.Compare.B.Prompt; p != nil {
				rb.IDs = encode(t, mb, *p, g.PrependBOS, g.Compare.IDsB)
			}
			if l := g.Compare.B.Tuned; l != nil {
				rb.Tuned = loadLens(t, *l)
			}
			if !slices.Equal(rb.IDs, g.Compare.IDsB) {
				t.Fatalf("run B's ids %v, reference %v", rb.IDs, g.Compare.IDsB)
			}
			sa, sb := ma.NewSession(), mb.NewSession()
			defer sa.Close()
			defer sb.Close()
			p, err := inference.NewPair(sa, sb)
			if err != nil {
				t.Fatal(err)
			}
			var streamed []int
			c, err := p.Compare(context.Background(), ra, rb, func(col inference.CompareColumn) {
				streamed = append(streamed, col.Column)
				if col.PosA != c0(len(ra.IDs), len(rb.IDs))+col.Column || col.PosB != c0(len(rb.IDs), len(ra.IDs))+col.Column {
					t.Errorf("column %d pairs A's %d with B's %d", col.Column, col.PosA, col.PosB)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			checkComparison(t, g, c)
			if want := seq(c.Columns); !slices.Equal(streamed, want) {
				t.Errorf("streamed columns %v, want %v", streamed, want)
			}
		})
	}
}

// c0 is the first paired position of a run of T tokens against one of U.
func c0(T, U int) int { return T - min(T, U) }

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// checkComparison holds every aligned cell of c to the golden.
func checkComparison(t *testing.T, g *compareGolden, c *inference.Comparison) {
	t.Helper()
	gc := g.Compare
	if c.Columns != gc.Columns {
		t.Fatalf("%d columns, reference %d", c.Columns, gc.Columns)
	}
	if len(c.Cells) != len(gc.KL) {
		t.Fatalf("%d rows, reference %d", len(c.Cells), len(gc.KL))
	}
	var maxKL, maxProb, maxDelta float64
	differs := 0
	for l, row := range c.Cells {
		for j, pc := range row {
			if pc.NonFinite {
				t.Fatalf("row %d column %d is not finite", l, j)
			}
			maxKL = max(maxKL, math.Abs(pc.KL-gc.KL[l][j]))
			maxProb = max(maxProb, math.Abs(pc.ProbB-gc.ProbB[l][j]))
			if pc.Top1B != gc.Top1B[l][j] {
				t.Errorf("row %d column %d: top1_b %d, reference %d", l, j, pc.Top1B, gc.Top1B[l][j])
			}
			ta := c.PosA(j)
			if want := g.Results.F64.TopIDs[l][ta][0]; pc.Top1A != want {
				t.Errorf("row %d column %d: A's top-1 %d, reference %d", l, j, pc.Top1A, want)
			}
			// Δp of A's top-1, against the reference's two probabilities
			want := gc.ProbB[l][j] - g.Results.F64.TopProbs[l][ta][0]
			maxDelta = max(maxDelta, math.Abs(pc.DeltaTop1()-want))
			if pc.Top1Differs() != (gc.Top1B[l][j] != g.Results.F64.TopIDs[l][ta][0]) {
				t.Errorf("row %d column %d: Top1Differs %v", l, j, pc.Top1Differs())
			}
			if pc.Top1Differs() {
				differs++
			}
			// the pair's top-1s are the runs' own cells' top-1s
			if a, b := c.A.Cells[l][ta].Top[0].ID, c.B.Cells[l][c.PosB(j)].Top[0].ID; a != pc.Top1A || b != pc.Top1B {
				t.Errorf("row %d column %d: the runs' cells say top-1 %d and %d, the pair %d and %d", l, j, a, b, pc.Top1A, pc.Top1B)
			}
		}
	}
	t.Logf("max |ΔKL| %.2e, |Δprob_b_of_top1_a| %.2e, |Δ(Δp top-1)| %.2e; %d cells of %d differ in top-1",
		maxKL, maxProb, maxDelta, differs, len(c.Cells)*c.Columns)
	if maxKL > tolCompareKL || maxProb > tolCompareProb || maxDelta > tolCompareProb {
		t.Errorf("outside tolerance: |ΔKL| %.2e (≤ %g), |Δp| %.2e and %.2e (≤ %g)", maxKL, tolCompareKL, maxProb, maxDelta, tolCompareProb)
	}
}

// TestCompareIdentical: two runs that are the same run give every cell a
// KL of exactly 0 and no differing top-1, whether B is another session of
// the same model, another copy of the checkpoint or the same lens named
// again.
func TestCompareIdentical(t *testing.T) {
	ma := openTestModel(t, "tiny-f32", "", testmodel.SHA256(t, "tiny-f32"))
	mb := openTestModel(t, "tiny-f32", "", testmodel.SHA256(t, "tiny-f32"))
	lens := loadLens(t, "f32")
	req := inference.Request{IDs: ma.Tokenizer().EncodeIDs("The Eiffel Tower is in the city of"), TopK: 5, Target: 1748}
	tuned := req
	tuned.Tuned = lens
	for _, tc := range []struct {
		name   string
		mb     *inference.Model
		ra, rb inference.Request
	}{
		{"prompt", ma, req, req}, {"model", mb, req, req}, {"lens", ma, tuned, tuned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sa, sb := ma.NewSession(), tc.mb.NewSession()
			defer sa.Close()
			defer sb.Close()
			p, err := inference.NewPair(sa, sb)
			if err != nil {
				t.Fatal(err)
			}
			c, err := p.Compare(context.Background(), tc.ra, tc.rb, nil)
			if err != nil {
				t.Fatal(err)
			}
			for l, row := range c.Cells {
				for j, pc := range row {
					if pc.KL != 0 || pc.Top1Differs() || pc.DeltaTop1() != 0 || pc.DeltaTarget() != 0 || pc.RankB != 0 {
						t.Errorf("row %d column %d: %+v", l, j, pc)
					}
				}
			}
		})
	}
}

// TestCompareReuse: a comparison recomputes only the columns whose
// positions changed in either run, with the same results as from scratch;
// a change of length that moves the pairing recomputes them all.
func TestCompareReuse(t *testing.T) {
	m := openTestModel(t, "tiny-f32", "", testmodel.SHA256(t, "tiny-f32"))
	enc := m.Tokenizer().EncodeIDs
	ra := inference.Request{IDs: enc("The Eiffel Tower is in the city of"), TopK: 5, Target: -1}
	sa, sb := m.NewSession(), m.NewSession()
	defer sa.Close()
	defer sb.Close()
	p, err := inference.NewPair(sa, sb)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		b      string
		reused int // columns served from the previous comparison
		lensB  int // positions B's session served from its prefix cache
	}{
		{"The Colosseum is in the city of", 0, 0},         // 10 tokens, as A
		{"The Colosseum is in the city at", 9, 9},         // the last token changed: one column
		{"The Colosseum was in the city at", 5, 5},        // a middle token (The Col os se um | was)
		{"The Colosseum was in the city at last", 0, 10},  // longer: another pairing
		{"The Colosseum was in the city at last", 10, 11}, // nothing changed
	} {
		rb := ra
		rb.IDs = enc(tc.b)
		c, err := p.Compare(ctx, ra, rb, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Reused != tc.reused || c.B.Reused != tc.lensB {
			t.Errorf("%q: %d columns and %d of B's positions reused, want %d and %d", tc.b, c.Reused, c.B.Reused, tc.reused, tc.lensB)
		}
		// from scratch, on fresh sessions
		fa, fb := m.NewSession(), m.NewSession()
		fp, _ := inference.NewPair(fa, fb)
		want, err := fp.Compare(ctx, ra, rb, nil)
		fa.Close()
		fb.Close()
		if err != nil {
			t.Fatal(err)
		}
		for l := range want.Cells {
			for j := range want.Cells[l] {
				if g, w := c.Cells[l][j], want.Cells[l][j]; math.Abs(g.KL-w.KL) > 1e-6 || g.Top1B != w.Top1B || math.Abs(g.ProbB-w.ProbB) > 1e-6 {
					t.Errorf("%q: row %d column %d: %+v, from scratch %+v", tc.b, l, j, g, w)
				}
			}
		}
	}
}

// TestCompareRefuses: runs that cannot be compared cell by cell fail with
// ErrIncomparable and a message naming both models.
func TestCompareRefuses(t *testing.T) {
	a := openTestModel(t, "tiny-f32", "", testmodel.SHA256(t, "tiny-f32"))
	b := openTestModel(t, "small-shape", "", testmodel.SHA256(t, "small-shape"))
	_, err := inference.NewPair(a.NewSession(), b.NewSession())
	if !errors.Is(err, inference.ErrIncomparable) || !strings.Contains(err.Error(), "tiny-f32") || !strings.Contains(err.Error(), "small-shape") {
		t.Errorf("tiny-f32 against small-shape: %v", err)
	}
	sa, sb := a.NewSession(), a.NewSession()
	defer sa.Close()
	defer sb.Close()
	p, err := inference.NewPair(sa, sb)
	if err != nil {
		t.Fatal(err)
	}
	req := inference.Request{IDs: []int{1, 2, 3}, TopK: 3, Target: -1}
	sub := req
	sub.Sublayers = true
	if _, err := p.Compare(context.Background(), req, sub, nil); !errors.Is(err, inference.ErrIncomparable) {
		t.Errorf("sublayer rows against none: %v", err)
	}
}

// TestSessionCompare: a session compares with its own run B, which keeps
// its prefix cache between comparisons and closes with the session.
func TestSessionCompare(t *testing.T) {
	m := openTestModel(t, "tiny-f32", "", testmodel.SHA256(t, "tiny-f32"))
	enc := m.Tokenizer().EncodeIDs
	s := m.NewSession()
	ra := inference.Request{IDs: enc("The Eiffel Tower is in the city of"), TopK: 5, Target: -1}
	rb := ra
	rb.IDs = enc("The Colosseum is in the city of")
	ctx := context.Background()
	if _, err := s.Compare(ctx, ra, rb, nil); err != nil {
		t.Fatal(err)
	}
	rb.IDs = enc("The Colosseum is in the city at")
	c, err := s.Compare(ctx, ra, rb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.B.Reused != len(rb.IDs)-1 || c.A.Reused != len(ra.IDs) {
		t.Errorf("an edit of B's last token reused %d of B's positions and %d of A's", c.B.Reused, c.A.Reused)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Compare(ctx, ra, rb, nil); err == nil {
		t.Error("a closed session compared")
	}
}
