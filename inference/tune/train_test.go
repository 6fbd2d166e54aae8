package tune

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// synthModel is a stand-in GPT-2 whose residual rows a translator can fix:
// h[0][t] = e(id_t) + pos_t, h[l] = h[0] + l·(M − I)·h[0]/L with a random
// linear M, so the output row h[L] = M·h[0] and the best translator of row
// l is an affine map the logit lens lacks.
type synthModel struct {
	cfg         weights.Config
	emb, pos, m []float32
	gamma, beta []float32
	wu          []float32
}

func newSynth(seed uint64) *synthModel {
	rng := rand.New(rand.NewPCG(seed, 7))
	const C, V, L, T = 8, 40, 3, 16
	s := &synthModel{cfg: weights.Config{NLayer: L, NEmbd: C, NHead: 2, NPositions: T, VocabSize: V, LayerNormEpsilon: 1e-5}}
	s.emb, s.pos, s.m = randn(rng, V*C, 1), randn(rng, T*C, 0.3), randn(rng, C*C, 0.6)
	s.gamma, s.beta = randn(rng, C, 0.2), randn(rng, C, 0.1)
	for i := range s.gamma {
		s.gamma[i] += 1
	}
	s.wu = randn(rng, V*C, 1.5)
	return s
}

func (s *synthModel) Config() weights.Config             { return s.cfg }
func (s *synthModel) FinalNorm() (gamma, beta []float32) { return s.gamma, s.beta }
func (s *synthModel) Unembedding() []float32             { return s.wu }
func (s *synthModel) Residuals(ctx context.Context, ids []int) ([][]float32, error) {
	C, L := s.cfg.NEmbd, s.cfg.NLayer
	out := make([][]float32, L+1)
	for l := range out {
		out[l] = make([]float32, len(ids)*C)
	}
	for t, id := range ids {
		h0 := out[0][t*C : (t+1)*C]
		for j := range C {
			h0[j] = s.emb[id*C+j] + s.pos[t*C+j]
		}
		for j := range C {
			var mh float32
			for k := range C {
				mh += s.m[j*C+k] * h0[k]
			}
			for l := 1; l <= L; l++ {
				out[l][t*C+j] = h0[j] + float32(l)/float32(L)*(mh-h0[j])
			}
		}
	}
	return out, nil
}

// ints is an Encoder whose text is space-separated ids; EOT is id 0.
type ints struct{}

func (ints) EOT() int { return 0 }
func (ints) EncodeIDs(text string) []int {
	var ids []int
	for _, f := range strings.Fields(text) {
		n, _ := strconv.Atoi(f)
		ids = append(ids, n)
	}
	return ids
}

// synthCorpus makes docs of random ids 1..V-1.
func synthCorpus(t *testing.T, seed uint64, tokens int) *Corpus {
	rng := rand.New(rand.NewPCG(seed, 9))
	var docs []string
	for len(docs)*50 < tokens {
		var b strings.Builder
		for range 49 {
			b.WriteString(" ")
			b.WriteString(strconv.Itoa(1 + rng.IntN(39)))
		}
		docs = append(docs, b.String())
	}
	c, err := NewCorpus(ints{}, docs, 16)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCorpus(t *testing.T) {
	c, err := NewCorpus(ints{}, []string{"5 6 7", "8 9"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	// stream: 0 5 6 7 0 8 9 -> windows [0 5 6] [7 0 8]; the tail [9] is dropped
	if want := [][]int{{0, 5, 6}, {7, 0, 8}}; !slices.EqualFunc(c.Windows, want, slices.Equal) || c.Tokens != 7 {
		t.Errorf("windows %v (%d tokens)", c.Windows, c.Tokens)
	}
	if _, err := NewCorpus(ints{}, []string{"1"}, 3); err == nil || !strings.Contains(err.Error(), "fewer than one window of n_positions = 3") {
		t.Errorf("short corpus: %v", err)
	}
	// epochs reshuffle, deterministically
	big := synthCorpus(t, 1, 2000)
	n := len(big.Windows)
	first, _ := big.window(5, 0)
	again, _ := big.window(5, 0)
	_, epoch := big.window(5, n)
	if !slices.Equal(first, again) || epoch != 1 {
		t.Errorf("window order not deterministic, or epoch %d", epoch)
	}
	o0, o1 := big.order(5, 0), big.order(5, 1)
	if sorted := slices.Sorted(slices.Values(o0)); sorted[0] != 0 || sorted[n-1] != n-1 || slices.Compact(sorted)[n-1] != n-1 {
		t.Errorf("epoch order is not a permutation: %v", o0)
	}
	if slices.Equal(o0, o1) {
		t.Error("two epochs in the same order")
	}
}

func trainSynth(t *testing.T, opts Options) *tunedlens.Lens {
	t.Helper()
	l, err := Train(context.Background(), newSynth(1), synthCorpus(t, 2, 3000), opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestTrainBeatsLogitLens: after training, the tuned lens's KL to the
// output on held-out windows is well below the logit lens's on every row
// but the last, for both optimisers.
func TestTrainBeatsLogitLens(t *testing.T) {
	m := newSynth(1)
	held := synthCorpus(t, 99, 800).Windows
	logit, err := Evaluate(context.Background(), m, nil, held)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{SGD, Adam} {
		lr := 1.0
		if name == Adam {
			lr = 30 // a short run: the package's 1e-3 is made for 250 steps of 2^18 tokens
		}
		l := trainSynth(t, Options{Steps: 40, TokensPerStep: 128, Optimizer: name, LR: lr, Seed: 3, BaseModel: "synth"})
		tuned, err := Evaluate(context.Background(), m, l, held)
		if err != nil {
			t.Fatal(err)
		}
		for r := range logit {
			t.Logf("%s row %d: KL logit %.4f tuned %.4f; CE logit %.3f tuned %.3f", name, r, logit[r].KL, tuned[r].KL, logit[r].CE, tuned[r].CE)
		}
		L := len(logit) - 1
		for r := range L {
			if !(tuned[r].KL < 0.7*logit[r].KL) {
				t.Errorf("%s: row %d: tuned KL %.4f is not clearly below the logit lens's %.4f", name, r, tuned[r].KL, logit[r].KL)
			}
		}
		if tuned[L] != logit[L] || logit[L].KL > 1e-6 {
			t.Errorf("%s: the output row changed: %+v vs %+v", name, tuned[L], logit[L])
		}
	}
}

// TestTrainDeterministic: the same seed gives the same lens bit for bit;
// another seed another one.
func TestTrainDeterministic(t *testing.T) {
	opts := Options{Steps: 5, TokensPerStep: 64, Seed: 4}
	a, b := trainSynth(t, opts), trainSynth(t, opts)
	opts.Seed = 5
	c := trainSynth(t, opts)
	for i := range a.Translators {
		if !slices.Equal(a.Translators[i].Weight, b.Translators[i].Weight) || !slices.Equal(a.Translators[i].Bias, b.Translators[i].Bias) {
			t.Fatalf("translator %d differs between two runs with one seed", i)
		}
	}
	if slices.Equal(a.Translators[0].Weight, c.Translators[0].Weight) {
		t.Error("another seed gave the same lens")
	}
}

// TestResume: cancelling mid-run saves a checkpoint; running again resumes
// and ends with exactly the lens of an uninterrupted run.
func TestResume(t *testing.T) {
	for _, name := range []string{SGD, Adam} {
		whole := trainSynth(t, Options{Steps: 6, TokensPerStep: 64, Optimizer: name, Seed: 8})
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		opts := Options{Steps: 6, TokensPerStep: 64, Optimizer: name, Seed: 8, Dir: dir, Progress: func(p Progress) {
			calls++
			if calls == 11 { // in the middle of step 2 (4 windows per step)
				cancel()
			}
		}}
		corpus := synthCorpus(t, 2, 3000)
		_, err := Train(ctx, newSynth(1), corpus, opts)
		if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "after 2 of 6 steps") {
			t.Fatalf("%s: interrupted run: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "checkpoint", "state.json")); err != nil {
			t.Fatal(err)
		}
		resumedAt := -1
		opts.Progress = func(p Progress) { resumedAt = p.ResumedFrom }
		l, err := Train(context.Background(), newSynth(1), corpus, opts)
		if err != nil {
			t.Fatal(err)
		}
		if resumedAt != 2 {
			t.Errorf("%s: resumed from step %d, want 2", name, resumedAt)
		}
		for i := range l.Translators {
			if !slices.Equal(l.Translators[i].Weight, whole.Translators[i].Weight) || !slices.Equal(l.Translators[i].Bias, whole.Translators[i].Bias) {
				t.Fatalf("%s: translator %d of the resumed run differs from the uninterrupted run", name, i)
			}
		}
		// another run's options refuse the checkpoint
		opts.Seed = 9
		if _, err := Train(context.Background(), newSynth(1), corpus, opts); err == nil || !strings.Contains(err.Error(), "checkpoint of another run") {
			t.Errorf("%s: a checkpoint of other options was resumed: %v", name, err)
		}
		if err := RemoveCheckpoint(dir); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOptionsRefused(t *testing.T) {
	corpus := synthCorpus(t, 2, 3000)
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{TokensPerStep: 100}, "not a multiple of the window, n_positions = 16 (e.g. 96)"},
		{Options{Steps: -1}, "--steps -1"},
		{Options{LR: -1}, "--lr -1"},
		{Options{Optimizer: "lion"}, `unknown optimizer "lion"`},
	} {
		if _, err := Train(context.Background(), newSynth(1), corpus, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.opts, err, c.want)
		}
	}
}
