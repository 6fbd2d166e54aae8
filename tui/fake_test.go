package tui

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights"
)

// fakeBackend is a deterministic stand-in for *inference.Session: a
// byte-level vocabulary plus a few words, and a lens whose cells are a pure
// function of the prefix, the row and the request, so prefix reuse is
// consistent. Tests read their expectations from the lenses it returned.
type fakeBackend struct {
	layers int
	note   string        // Info.Note
	delay  time.Duration // per column, to exercise streaming and cancellation
	nPos   int           // n_positions; 0 for 1024
	// oracle makes the output row's top-1 the prompt's next token at
	// every other position, so that some cells predict it.
	oracle bool
	// refuseNext refuses next-token statistics, as the GPU device does.
	refuseNext bool
	// settle makes position p's rows from p mod rows up predict the
	// output's top-1, so columns lock in at different rows.
	settle bool

	mu      sync.Mutex
	lenses  []*inference.Lens // every completed lens, in order
	asked   [][]int           // the Priority of every request, in order
	calls   int
	cancels int
	prev    []int
}

var _ Backend = (*fakeBackend)(nil)

// fakeWords follow the 256 one-byte tokens; the last id is <|endoftext|>.
var fakeWords = []string{
	"The", " the", " cat", " sat", " on", " mat", " Paris", " is", " capital", " of", " France",
	"\n", "\t", " ", "\xe2\x80", " supercalifragilistic", "é", " city", " Eiffel", " Tower",
	"Paris",
}

const fakeEOTText = "<|endoftext|>"

func (f *fakeBackend) vocab() int { return 256 + len(fakeWords) + 1 }

func (f *fakeBackend) Info() inference.Info {
	return inference.Info{
		ID:     "fake/gpt2-test",
		Config: weights.Config{NLayer: f.layers, NEmbd: 8, NHead: 2, NPositions: f.positions(), VocabSize: f.vocab()},
		Device: "cpu", BLAS: "fake", Note: f.note,
	}
}

func (f *fakeBackend) positions() int {
	if f.nPos > 0 {
		return f.nPos
	}
	return 1024
}

func (f *fakeBackend) EOT() int { return f.vocab() - 1 }

func (f *fakeBackend) TokenBytes(id int) []byte {
	switch {
	case id < 0 || id >= f.vocab():
		return nil
	case id < 256:
		return []byte{byte(id)}
	case id == f.EOT():
		return []byte(fakeEOTText)
	}
	return []byte(fakeWords[id-256])
}

// Encode is greedy longest match over the words, one byte otherwise.
func (f *fakeBackend) Encode(text string) []inference.Token {
	var toks []inference.Token
	for i := 0; i < len(text); {
		id, n := int(text[i]), 1
		for w, s := range fakeWords {
			if len(s) > n && strings.HasPrefix(text[i:], s) {
				id, n = 256+w, len(s)
			}
		}
		toks = append(toks, inference.Token{ID: id, Start: i, End: i + n})
		i += n
	}
	return toks
}

func (f *fakeBackend) rows(sublayers bool) []inference.Row {
	rows := []inference.Row{{Kind: inference.Embed, Name: "embed"}}
	for l := 1; l <= f.layers; l++ {
		if sublayers {
			rows = append(rows, inference.Row{Kind: inference.AttnMid, Layer: l, Name: strconv.Itoa(l) + ".attn"})
		}
		rows = append(rows, inference.Row{Kind: inference.BlockOut, Layer: l, Name: strconv.Itoa(l)})
	}
	return rows
}

// cell makes the cell of one row at the last position of prefix.
func (f *fakeBackend) cell(prefix []int, row, nrows, k, target int) inference.Cell {
	h := fnv.New64a()
	for _, id := range prefix {
		h.Write([]byte(strconv.Itoa(id) + ","))
	}
	h.Write([]byte("r" + strconv.Itoa(row)))
	rng := rand.New(rand.NewPCG(h.Sum64(), 7))
	depth := float64(row+1) / float64(nrows)
	p := 0.05 + 0.9*depth*rng.Float64()
	c := inference.Cell{Entropy: 6 * (1 - depth), KLToFinal: 3 * (1 - depth), TargetRank: -1}
	used := map[int]bool{}
	for len(c.Top) < k {
		id := 256 + rng.IntN(len(fakeWords))
		if rng.IntN(3) == 0 {
			id = 32 + rng.IntN(95)
		}
		if used[id] {
			continue
		}
		used[id] = true
		c.Top = append(c.Top, inference.Prediction{ID: id, Prob: p})
		p *= 0.5
	}
	if target >= 0 {
		c.TargetRank = (target + row) % 40
		c.TargetProb = 1 / float64(c.TargetRank+3)
	}
	return c
}

func (f *fakeBackend) Lens(ctx context.Context, req inference.Request, onColumn func(inference.Column)) (*inference.Lens, error) {
	start := time.Now()
	if len(req.IDs) > f.positions() {
		// As inference.Model.Validate words it.
		return nil, fmt.Errorf("inference: %w: %d tokens, but this model reads at most n_positions = %d",
			inference.ErrPromptTooLong, len(req.IDs), f.positions())
	}
	if f.refuseNext && req.NextToken {
		return nil, fmt.Errorf("fake: next-token statistics: %w", inference.ErrUnsupported)
	}
	if req.Tuned != nil && req.Sublayers {
		return nil, fmt.Errorf("fake: %w", inference.ErrSublayersTuned)
	}
	f.mu.Lock()
	f.calls++
	f.asked = append(f.asked, slices.Clone(req.Priority))
	reused := 0
	for reused < len(f.prev) && reused < len(req.IDs) && f.prev[reused] == req.IDs[reused] {
		reused++
	}
	f.mu.Unlock()
	rows := f.rows(req.Sublayers)
	R, T := len(rows), len(req.IDs)
	l := &inference.Lens{IDs: slices.Clone(req.IDs), Rows: rows, Target: req.Target, Reused: reused,
		Cells: make([][]inference.Cell, R), FinalTop1: make([]int, T), Tuned: req.Tuned}
	for r := range l.Cells {
		l.Cells[r] = make([]inference.Cell, T)
	}
	for p := range T {
		f.mu.Lock()
		delay := f.delay // tests change it while a lens runs
		f.mu.Unlock()
		if p >= reused && delay > 0 {
			time.Sleep(delay)
		}
		if err := ctx.Err(); err != nil {
			f.mu.Lock()
			f.cancels++
			f.mu.Unlock()
			return nil, err
		}
		col := inference.Column{Pos: p, Cells: make([]inference.Cell, R)}
		for r := range R {
			prefix := req.IDs[:p+1]
			if req.Tuned != nil && r < R-1 { // a tuned lens decodes other cells, but the same output row
				prefix = append(slices.Clone(prefix), -1)
			}
			col.Cells[r] = f.cell(prefix, r, R, req.TopK, req.Target)
		}
		if f.oracle && p%2 == 0 && p+1 < T {
			top := &col.Cells[R-1].Top
			*top = append([]inference.Prediction{{ID: req.IDs[p+1], Prob: 0.9}}, (*top)[:len(*top)-1]...)
		}
		final := col.Cells[R-1].Top[0].ID
		if f.settle {
			for r := p % R; r < R-1; r++ {
				col.Cells[r].Top[0].ID = final
			}
		}
		l.FinalTop1[p] = final
		for r := range R {
			c := &col.Cells[r]
			c.FinalTop1Rank, c.FinalTop1Prob = 1000+r, 1e-4
			for i, pr := range c.Top {
				if pr.ID == final {
					c.FinalTop1Rank, c.FinalTop1Prob = i, pr.Prob
				}
			}
			if r == R-1 {
				c.KLToFinal = 0
			}
			c.NextRank, c.NextProb = -1, 0
			if req.NextToken && p+1 < T {
				// The next token's rank and probability: from the
				// top-k when it is there, else far down.
				c.NextRank, c.NextProb = 2000+r, 1e-5
				for i, pr := range c.Top {
					if pr.ID == req.IDs[p+1] {
						c.NextRank, c.NextProb = i, pr.Prob
					}
				}
			}
			l.Cells[r][p] = *c
		}
		if onColumn != nil {
			onColumn(col)
		}
	}
	l.Elapsed = time.Since(start)
	f.mu.Lock()
	f.prev = slices.Clone(req.IDs)
	f.lenses = append(f.lenses, l)
	f.mu.Unlock()
	return l, nil
}

// lensFor returns the last completed lens of exactly these ids.
func (f *fakeBackend) lensFor(ids []int) *inference.Lens {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.lenses) - 1; i >= 0; i-- {
		if slices.Equal(f.lenses[i].IDs, ids) {
			return f.lenses[i]
		}
	}
	return nil
}

// ids tokenises text as the explorer does.
func (f *fakeBackend) ids(text string, bos bool) []int {
	var ids []int
	if bos {
		ids = append(ids, f.EOT())
	}
	for _, t := range f.Encode(text) {
		ids = append(ids, t.ID)
	}
	return ids
}

// fakeOptions returns options whose Load yields b at once.
func fakeOptions(b *fakeBackend, prompt string) Options {
	return Options{
		ModelID: "fake/gpt2-test", Prompt: prompt, TopK: 5,
		Load: func(context.Context, func(inference.Progress)) (Backend, error) { return b, nil },
	}
}
