package inference

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/weights/hub"
)

// The built-in model opens through the ordinary loader and is trained:
// on a held-out Brown passage its next-token accuracy is far above chance
// (0.002% top-1, 0.02% top-10). The reference lens_ref.py scores the same
// passage 12.0% top-1 and 44.0% top-10 (weights/builtin/testdata).
func TestBuiltinModelIsTrained(t *testing.T) {
	m, err := Load(context.Background(), "demo", LoadOptions{Hub: hub.Options{Offline: true, CacheDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Info().ID != "demo" || m.Config().NLayer != 4 {
		t.Fatalf("info %+v", m.Info())
	}
	text, err := os.ReadFile(filepath.Join("..", "weights", "builtin", "testdata", "heldout.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ids := m.Tokenizer().EncodeIDs(strings.TrimSpace(string(text)))
	l, err := m.NewSession().Lens(context.Background(), Request{IDs: ids, TopK: 10, Target: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := l.Cells[len(l.Rows)-1]
	top1, top10 := 0, 0
	for p := 0; p+1 < len(ids); p++ {
		for j, pr := range out[p].Top {
			if pr.ID == ids[p+1] {
				top10++
				if j == 0 {
					top1++
				}
			}
		}
	}
	n := float64(len(ids) - 1)
	t.Logf("held-out passage: %d tokens, top-1 %.1f%%, top-10 %.1f%%", len(ids)-1, 100*float64(top1)/n, 100*float64(top10)/n)
	if float64(top1)/n < 0.06 || float64(top10)/n < 0.30 {
		t.Errorf("top-1 %d/%v, top-10 %d/%v: the built-in model looks untrained", top1, n, top10, n)
	}
}
