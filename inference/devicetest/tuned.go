package devicetest

import (
	"context"
	"embed"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights/testmodel"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// lensFS holds tuned lenses for tiny-f32 written by the reference's
// make_tuned.py (the same translators as weights/tunedlens's fixtures;
// their numbers do not depend on the checkpoint), embedded like the
// goldens, which lens_ref.py --tuned computed with them.
//
//go:embed testdata/lenses/*/config.json testdata/lenses/*/params.pt
var lensFS embed.FS

// loadLens writes an embedded lens to a folder and reads it as users do.
func loadLens(t *testing.T, name string) *tunedlens.Lens {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"config.json", "params.pt"} {
		b, err := lensFS.ReadFile("testdata/lenses/" + name + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := tunedlens.Load(dir, 64, 2)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// tuned holds the tuned lens (a translator GEMM per row before ln_f) to the
// reference's --tuned goldens, with and without bias; checks that a session
// switching between the logit and the tuned lens reuses its forward pass
// and gives a fresh session's cells; and that sublayer rows are refused.
func (s *suite) tuned(t *testing.T) {
	for _, tc := range []struct{ golden, lens string }{{"tuned-f32", "f32"}, {"tuned-nobias", "nobias"}} {
		t.Run(tc.golden, func(t *testing.T) {
			g, dir := readGolden(t, tc.golden, "tiny-f32")
			m := s.open(t, dir)
			ids := promptIDs(t, m, g)
			req := inference.Request{IDs: ids, TopK: len(g.Results.F64.TopIDs[0][0]), Target: g.ProbeIDs[len(g.ProbeIDs)-1], Tuned: loadLens(t, tc.lens)}
			req.NextToken = true
			checkAgainstGolden(t, g, lens(t, m, req), req.NextToken)
		})
	}
	t.Run("SwitchLenses", func(t *testing.T) {
		m := s.open(t, testmodel.Dir(t, "tiny-f32"))
		tl := loadLens(t, "f32")
		ids := []int{464, 412, 733, 417, 8765, 318}
		fresh := map[bool]*inference.Lens{
			false: lens(t, m, inference.Request{IDs: ids, TopK: 5, Target: -1}),
			true:  lens(t, m, inference.Request{IDs: ids, TopK: 5, Target: -1, Tuned: tl}),
		}
		sess := m.NewSession()
		defer sess.Close()
		for i, tuned := range []bool{false, true, false, true} {
			req := inference.Request{IDs: ids, TopK: 5, Target: -1}
			if tuned {
				req.Tuned = tl
			}
			l, err := sess.Lens(context.Background(), req, nil)
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 && l.Reused != len(ids) {
				t.Errorf("switch %d ran the forward pass again (reused %d of %d positions)", i, l.Reused, len(ids))
			}
			if d := maxCellDiff(t, l, fresh[tuned]); d > s.opt.OwnTol {
				t.Errorf("switch %d (tuned %v): cells differ from a fresh session's by %g", i, tuned, d)
			}
			if !slices.Equal(l.FinalTop1, fresh[false].FinalTop1) {
				t.Errorf("switch %d: the output row's top-1 changed with the lens", i)
			}
		}
	})
	t.Run("SublayersRefused", func(t *testing.T) {
		m := s.open(t, testmodel.Dir(t, "tiny-f32"))
		sess := m.NewSession()
		defer sess.Close()
		_, err := sess.Lens(context.Background(), inference.Request{IDs: []int{464, 412}, TopK: 3, Target: -1, Sublayers: true, Tuned: loadLens(t, "f32")}, nil)
		if !errors.Is(err, inference.ErrSublayersTuned) {
			t.Errorf("sublayer rows with a tuned lens: %v", err)
		}
	})
}
