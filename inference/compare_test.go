package inference_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights/testmodel"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// The comparisons' goldens are held by the conformance suite that every
// device runs (inference/devicetest, Compare); these tests add what has no
// golden but a property.

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
