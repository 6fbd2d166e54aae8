package tui

import (
	"context"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/display"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights/testmodel"
)

// TestRealBackend runs the explorer on the tiny checkpoint through
// *inference.Session and checks the grid and the panel against a lens
// computed by a second, independent session.
func TestRealBackend(t *testing.T) {
	dir := testmodel.Dir(t, "tiny-f32")
	var _ Backend = (*inference.Session)(nil)
	load := func(ctx context.Context, progress func(inference.Progress)) (Backend, error) {
		m, err := inference.Load(ctx, dir, inference.LoadOptions{Device: "cpu"})
		if err != nil {
			return nil, err
		}
		return m.NewSession(), nil
	}
	const prompt = "The Eiffel Tower is in"
	m := newModel(Options{ModelID: dir, Prompt: prompt, TopK: 5, Load: load})
	m.Update(teaSize(100, 30))
	settle(t, m, m.Init())
	if m.loadErr != nil {
		t.Fatal(m.loadErr)
	}
	b, err := load(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, tok := range b.Encode(prompt) {
		ids = append(ids, tok.ID)
	}
	want, err := b.Lens(context.Background(), inference.Request{IDs: ids, TopK: 5, Target: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := screen(m)
	R := len(want.Rows)
	if got := strings.Fields(s); len(got) == 0 {
		t.Fatal("empty screen")
	}
	label := rowLabel(want.Rows[R-1], true)
	out := line(s, label)
	for p := m.grid.left; p < m.grid.left+m.grid.visibleCols() && p < len(ids); p++ {
		text := display.Token(b.TokenBytes(want.Cells[R-1][p].Top[0].ID))
		if cut := shownText(m, text, p == m.grid.col); !strings.Contains(out, cut) {
			t.Errorf("output row %q lacks %q (pos %d)", out, cut, p)
		}
	}
	// The panel of the cursor cell (output row, last token) lists the
	// final top-k with their probabilities.
	c := want.Cells[R-1][len(ids)-1]
	for _, p := range c.Top {
		if w := display.Prob(p.Prob); !strings.Contains(s, w) {
			t.Errorf("panel lacks probability %s:\n%s", w, s)
		}
	}
	if !strings.Contains(s, "(output)") || !strings.Contains(s, "cpu") {
		t.Errorf("panel or status:\n%s", s)
	}
}
