package inference

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/weights/tunedlens"
)

// loadTestLens reads a tuned lens written by the reference's make_tuned.py
// for tiny-f32 (weights/tunedlens/testdata/lenses).
func loadTestLens(t *testing.T, name string) *tunedlens.Lens {
	t.Helper()
	l, err := tunedlens.Load(filepath.Join("..", "weights", "tunedlens", "testdata", "lenses", name), 64, 2)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestTunedMatchesReference: the tuned lens's cells equal lens_ref.py
// --tuned's at the logit lens's tolerances, for lenses stored as F32, BF16
// with the layer_translators. prefix and unembed.* keys, without bias, and
// in torch's legacy layout.
func TestTunedMatchesReference(t *testing.T) {
	for _, tc := range []struct{ golden, lens string }{
		{"tuned-f32", "f32"}, {"tuned-bf16", "bf16-prefixed"}, {"tuned-nobias", "nobias"}, {"tuned-legacy", "legacy-f32"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			g := readGolden(t, tc.golden, "tiny-f32")
			m := testModel(t, "tiny-f32")
			lens := loadTestLens(t, tc.lens)
			ids := m.tok.EncodeIDs(g.Prompt)
			if g.PrependBOS {
				ids = append([]int{m.EOT()}, ids...)
			}
			if !slices.Equal(ids, g.IDs) {
				t.Fatalf("tokenized %q to %v, reference %v", g.Prompt, ids, g.IDs)
			}
			s := m.NewSession()
			l, err := s.Lens(context.Background(), Request{IDs: ids, TopK: 10, Target: -1, Tuned: lens}, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstGolden(t, g, l, func(row, pos int) int {
				return nearTiesTuned(s, lens, l.Rows[row], pos, l.FinalTop1[pos])
			})
		})
	}
}

// nearTiesTuned is nearTies for a row decoded through a tuned lens.
func nearTiesTuned(s *Session, lens *tunedlens.Lens, row Row, pos, id int) int {
	m := s.m
	C, V, L := m.cfg.NEmbd, m.cfg.VocabSize, m.cfg.NLayer
	d := s.dev.(*cpuDevice)
	h := d.streams[row.stream()][pos*C : (pos+1)*C]
	x := append([]float32(nil), h...)
	if i := row.stream() / 2; i < L {
		tr := lens.Translators[i]
		for o := range C {
			z := float64(h[o])
			for k := range C {
				z += float64(h[k]) * float64(tr.Weight[o*C+k])
			}
			if tr.Bias != nil {
				z += float64(tr.Bias[o])
			}
			x[o] = float32(z)
		}
	}
	layerNorm(x, x, d.w.lnFG, d.w.lnFB, C, float32(m.cfg.LayerNormEpsilon))
	u := m.ckpt.LMHead().Data
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
	for j := range V {
		if j != id && math.Abs(logit(j)-zi) <= tol {
			n++
		}
	}
	return n
}

// TestTunedKeepsPrefixCache: switching a session between the logit and the
// tuned lens recomputes cells, not the forward pass, and each result equals
// a fresh session's; the final row is the same under both lenses.
func TestTunedKeepsPrefixCache(t *testing.T) {
	m := testModel(t, "tiny-f32")
	lens := loadTestLens(t, "f32")
	ids := m.tok.EncodeIDs("The Eiffel Tower is in the city of")
	fresh := func(tuned *tunedlens.Lens) *Lens {
		l, err := m.NewSession().Lens(context.Background(), Request{IDs: ids, TopK: 5, Target: -1, Tuned: tuned}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	wantLogit, wantTuned := fresh(nil), fresh(lens)
	s := m.NewSession()
	for i, tuned := range []*tunedlens.Lens{nil, lens, nil, lens} {
		l, err := s.Lens(context.Background(), Request{IDs: ids, TopK: 5, Target: -1, Tuned: tuned}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && l.Reused != len(ids) {
			t.Errorf("call %d recomputed the forward pass (reused %d of %d)", i, l.Reused, len(ids))
		}
		want := wantLogit
		if tuned != nil {
			want = wantTuned
		}
		for r := range want.Cells {
			for p := range ids {
				if !slices.Equal(l.Cells[r][p].Top, want.Cells[r][p].Top) || l.Cells[r][p].KLToFinal != want.Cells[r][p].KLToFinal {
					t.Fatalf("call %d: row %d pos %d differs from a fresh session", i, r, p)
				}
			}
		}
	}
	last := len(wantLogit.Cells) - 1
	for p := range ids {
		if !slices.Equal(wantLogit.Cells[last][p].Top, wantTuned.Cells[last][p].Top) {
			t.Errorf("pos %d: the output row differs between the lenses", p)
		}
		if wantLogit.Cells[0][p].Top[0] == wantTuned.Cells[0][p].Top[0] && wantLogit.Cells[0][p].KLToFinal == wantTuned.Cells[0][p].KLToFinal {
			t.Errorf("pos %d: the embedding row is the same under both lenses", p)
		}
	}
}

func TestTunedRefused(t *testing.T) {
	m := testModel(t, "tiny-f32")
	lens := loadTestLens(t, "f32")
	ids := m.tok.EncodeIDs("Hello")
	_, err := m.NewSession().Lens(context.Background(), Request{IDs: ids, TopK: 5, Target: -1, Tuned: lens, Sublayers: true}, nil)
	if !errors.Is(err, ErrSublayersTuned) {
		t.Errorf("sublayers with a tuned lens: %v", err)
	}
	wrong := tunedlens.Identity("x", 32, 2, true)
	_, err = m.NewSession().Lens(context.Background(), Request{IDs: ids, TopK: 5, Target: -1, Tuned: wrong}, nil)
	if err == nil || !strings.Contains(err.Error(), "d_model 32 and 2 layers, but this model has d_model 64 and 2 layers") {
		t.Errorf("a lens for another width: %v", err)
	}
}

// countingDevice counts the lens calls that reach the device.
type countingDevice struct {
	Device
	lenses int
}

func (d *countingDevice) Lens(ctx context.Context, req LensRequest, out [][]Cell) error {
	d.lenses++
	return d.Device.Lens(ctx, req, out)
}

// TestSessionKeepsTwoLenses: a session keeps the cells of its last two
// request options, so switching between the logit and a tuned lens (the
// explorer's l, and its panel asking for the other lens's top-1) computes
// each lens once; an edit invalidates both from where it changes.
func TestSessionKeepsTwoLenses(t *testing.T) {
	m := testModel(t, "tiny-f32")
	lens := loadTestLens(t, "f32")
	s := m.NewSession()
	dev := &countingDevice{Device: s.dev}
	s.dev = dev
	ids := m.tok.EncodeIDs("The Eiffel Tower is in the city of")
	run := func(ids []int, tuned *tunedlens.Lens) *Lens {
		l, err := s.Lens(context.Background(), Request{IDs: ids, TopK: 3, Target: -1, NextToken: true, Tuned: tuned}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	run(ids, nil)
	run(ids, lens)
	n := dev.lenses
	a, b := run(ids, nil), run(ids, lens)
	if dev.lenses != n {
		t.Errorf("switching back and forth made %d more device lens calls", dev.lenses-n)
	}
	if a.Cells[0][0].Top[0] == b.Cells[0][0].Top[0] && a.Cells[0][0].KLToFinal == b.Cells[0][0].KLToFinal {
		t.Error("the two lenses' cells are the same")
	}
	// an edit at the end: both lenses recompute only from there (the next
	// token of the position before changes too)
	edited := append(slices.Clone(ids[:len(ids)-1]), 1234)
	want := map[bool]*Lens{false: freshLens(t, m, edited, nil), true: freshLens(t, m, edited, lens)}
	for _, tuned := range []bool{false, true, false} {
		var tl *tunedlens.Lens
		if tuned {
			tl = lens
		}
		got := run(edited, tl)
		for r := range got.Cells {
			for p := range edited {
				if !slices.Equal(got.Cells[r][p].Top, want[tuned].Cells[r][p].Top) || got.Cells[r][p].NextProb != want[tuned].Cells[r][p].NextProb {
					t.Fatalf("tuned %v: row %d pos %d differs from a fresh session after the edit", tuned, r, p)
				}
			}
		}
	}
}

// freshLens is the lens of ids on a fresh session.
func freshLens(t *testing.T, m *Model, ids []int, tuned *tunedlens.Lens) *Lens {
	t.Helper()
	l, err := m.NewSession().Lens(context.Background(), Request{IDs: ids, TopK: 3, Target: -1, NextToken: true, Tuned: tuned}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
