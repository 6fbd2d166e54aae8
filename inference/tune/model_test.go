package tune

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/testmodel"
	"github.com/logitlens/logitlens/weights/tokenizer"
)

// tinyModel opens the tiny-f32 test checkpoint (weights/testmodel) on the
// CPU.
func tinyModel(t *testing.T) *inference.Model {
	t.Helper()
	dir := testmodel.Dir(t, "tiny-f32")
	ck, err := weights.OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := inference.NewModel(ck, tok, inference.NewCPUBackend, "tiny-f32")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// prose makes n deterministic sentences of English words.
func prose(seed uint64, n int) []string {
	words := strings.Fields("the a city tower river old new man woman said that was had would in of on at to from and but house day night time world")
	rng := rand.New(rand.NewPCG(seed, 1))
	var docs []string
	for range n {
		var b strings.Builder
		for s := range 12 {
			for w := range 6 + rng.IntN(6) {
				if w > 0 || s > 0 {
					b.WriteString(" ")
				}
				b.WriteString(words[rng.IntN(len(words))])
			}
			b.WriteString(".")
		}
		docs = append(docs, b.String())
	}
	return docs
}

// TestTrainTinyCheckpoint trains on a real (random) checkpoint through
// inference's forward pass: on held-out windows the tuned lens's KL to the
// output falls below the logit lens's on every row but the output, and
// Evaluate's numbers agree with the cells inference computes with the
// lens applied (two implementations: gorgonia's graph here, the CPU
// device's GEMM there).
func TestTrainTinyCheckpoint(t *testing.T) {
	m := tinyModel(t)
	corpus, err := NewCorpus(TokenizerOf(m), prose(1, 20), m.Config().NPositions)
	if err != nil {
		t.Fatal(err)
	}
	held, err := NewCorpus(TokenizerOf(m), prose(2, 4), m.Config().NPositions)
	if err != nil {
		t.Fatal(err)
	}
	model := FromInference(m)
	lens, err := Train(context.Background(), model, corpus, Options{Steps: 8, TokensPerStep: corpus.Window, Optimizer: Adam, LR: 20, BaseModel: "tiny-f32"})
	if err != nil {
		t.Fatal(err)
	}
	logit, err := Evaluate(context.Background(), model, nil, held.Windows)
	if err != nil {
		t.Fatal(err)
	}
	tuned, err := Evaluate(context.Background(), model, lens, held.Windows)
	if err != nil {
		t.Fatal(err)
	}
	L := len(logit) - 1
	for r := range L {
		t.Logf("row %d: KL logit %.3f tuned %.3f", r, logit[r].KL, tuned[r].KL)
		if !(tuned[r].KL < 0.9*logit[r].KL) {
			t.Errorf("row %d: tuned KL %.4f not below the logit lens's %.4f", r, tuned[r].KL, logit[r].KL)
		}
	}

	// inference's cells with the lens applied, averaged the same way
	s := m.NewSession()
	kl := make([]float64, L+1)
	ce := make([]float64, L+1)
	var n, next int
	for _, ids := range held.Windows {
		l, err := s.Lens(context.Background(), inference.Request{IDs: ids, TopK: 1, Target: -1, NextToken: true, Tuned: lens}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for r := range l.Cells {
			for p, c := range l.Cells[r] {
				kl[r] += c.KLToFinal
				if p+1 < len(ids) {
					ce[r] -= math.Log(c.NextProb)
				}
			}
		}
		n += len(ids)
		next += len(ids) - 1
	}
	for r := range kl {
		kl[r] /= float64(n)
		ce[r] /= float64(next)
		if d := math.Abs(kl[r] - tuned[r].KL); d > 1e-3*max(1, kl[r]) {
			t.Errorf("row %d: Evaluate's KL %.5f, inference's %.5f", r, tuned[r].KL, kl[r])
		}
		if d := math.Abs(ce[r] - tuned[r].CE); d > 1e-3*max(1, ce[r]) {
			t.Errorf("row %d: Evaluate's CE %.5f, inference's %.5f", r, tuned[r].CE, ce[r])
		}
	}
}
