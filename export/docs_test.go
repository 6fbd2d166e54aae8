package export

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/logitlens/logitlens/display"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights/testmodel"
)

// tinyDoc runs the real lens of the tiny random checkpoint on a prompt with
// awkward characters (newline, tab, markup, a split multi-byte character),
// with sublayer rows and a target.
func tinyDoc(t testing.TB) *Document {
	t.Helper()
	if tinyCache == nil {
		tinyCache = computeTinyDoc(t)
	}
	return tinyCache
}

// tinyCache holds tinyDoc's document: the tests only read it.
var tinyCache *Document

func computeTinyDoc(t testing.TB) *Document {
	t.Helper()
	m, err := inference.OpenDir(testmodel.Dir(t, "tiny-f32"), "tiny-f32", inference.NewCPUBackend)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	prompt := "Hi <b>&amp;</b>\n\tcafé — “ok” </script>"
	req := inference.Request{TopK: 5, Target: m.Encode(" Paris")[0].ID, Sublayers: true, NextToken: true}
	for _, tok := range m.Encode(prompt) {
		req.IDs = append(req.IDs, tok.ID)
	}
	l, err := m.NewSession().Lens(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return NewDocument(l, m, prompt, false, req.TopK)
}

// handDoc builds a lens document by hand that looks like a trained model's:
// "The Eiffel Tower is in the city of" through 12 blocks, where early rows
// echo the input, middle rows guess generic tokens and late rows settle on
// the continuation, with probability rising and entropy and KL falling by
// layer. It also carries a newline token and a lone byte, to exercise the
// display forms. Nothing here is a model's output: it is a picture fixture.
func handDoc() *Document {
	const nLayer, vocab = 12, 50257
	inputs := []string{"The", " Eiffel", " Tower", " is", " in", " the", " city", " of", "\n", "\xe2"}
	answers := []string{" first", " Tower", " is", " a", " the", " city", " of", " Paris", "The", "\x80"}
	generic := []string{",", " the", " and", ".", " of", "\n"}
	ref := func(id int, s string) TokenRef {
		return TokenRef{ID: id, Text: strings.ToValidUTF8(s, "\uFFFD"), Display: display.Token([]byte(s))}
	}
	ids := map[string]int{}
	id := func(s string) int {
		if v, ok := ids[s]; ok {
			return v
		}
		ids[s] = 1000 + 37*len(ids)
		return ids[s]
	}
	target := ref(id(" Paris"), " Paris")
	d := &Document{
		Schema: Schema,
		Model:  ModelInfo{ID: "gpt2 (hand-made picture fixture)", NLayer: nLayer, NEmbd: 768, NHead: 12, NPositions: 1024, VocabSize: vocab},
		Device: "cpu", Prompt: "The Eiffel Tower is in the city of\n\uFFFD", TopK: 5, Target: &target,
	}
	for _, s := range inputs {
		d.Tokens = append(d.Tokens, ref(id(s), s))
	}
	for _, s := range answers {
		d.FinalTop1 = append(d.FinalTop1, ref(id(s), s))
	}
	d.Rows = append(d.Rows, RowInfo{Name: "embed", Kind: "embed"})
	for i := 1; i <= nLayer; i++ {
		d.Rows = append(d.Rows, RowInfo{Name: strconv.Itoa(i), Kind: "block", Layer: i})
	}
	for r := range d.Rows {
		var row []CellInfo
		for p := range inputs {
			f := float64(r) / nLayer                   // depth 0..1
			wave := 0.5 + 0.5*math.Sin(float64(3*p+r)) // per-cell variety
			var top1 string
			switch {
			case r < 3:
				top1 = inputs[p]
			case f < 0.6+0.1*wave:
				top1 = generic[(p+r)%len(generic)]
			default:
				top1 = answers[p]
			}
			p1 := math.Min(0.97, 0.02+0.9*math.Pow(f, 2+wave))
			c := CellInfo{
				Entropy:   Float((1 - 0.9*f) * (6 + 2*wave)),
				KLToFinal: Float((1 - f) * (5 + 3*wave)),
			}
			rank := int(math.Round(math.Pow(10, (1-f)*(3+1.5*wave)))) - 1
			if top1 == answers[p] {
				rank = 0
			}
			c.FinalTop1Rank, c.FinalTop1Prob = rank, Float(p1/float64(1+rank))
			tr, tp := rank+3, c.FinalTop1Prob/2
			if p == 7 {
				tr, tp = rank, c.FinalTop1Prob
			}
			c.TargetRank, c.TargetProb = &tr, &tp
			if p+1 < len(inputs) { // the next input token: likelier with depth
				nr, np := int(math.Round(math.Pow(10, (1-f)*4*wave))), Float(math.Pow(f, 3)*0.8+1e-6)
				c.NextRank, c.NextProb = &nr, &np
			}
			rest := []string{answers[p], generic[p%len(generic)], " Rome", " London", generic[(p+3)%len(generic)], " Berlin"}
			c.Top = append(c.Top, TopEntry{ID: id(top1), Text: strings.ToValidUTF8(top1, "\uFFFD"), Display: display.Token([]byte(top1)), Prob: Float(p1)})
			q := (1 - p1) / 2
			for _, s := range rest {
				if len(c.Top) == 5 {
					break
				}
				if s == top1 || containsID(c.Top, id(s)) {
					continue
				}
				c.Top = append(c.Top, TopEntry{ID: id(s), Text: strings.ToValidUTF8(s, "\uFFFD"), Display: display.Token([]byte(s)), Prob: Float(math.Min(q, p1))})
				q /= 2
			}
			row = append(row, c)
		}
		d.Cells = append(d.Cells, row)
	}
	for p := range inputs { // the output row agrees with itself
		d.Cells[nLayer][p].KLToFinal = 0
	}
	return d
}

func containsID(top []TopEntry, id int) bool {
	for _, t := range top {
		if t.ID == id {
			return true
		}
	}
	return false
}
