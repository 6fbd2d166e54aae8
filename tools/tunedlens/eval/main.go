// Command eval measures a tuned lens against the logit lens on held-out
// text, the comparison of Belrose et al. 2023's figure 1: per layer, the
// mean KL(P_output ‖ P_lens) over every position and the mean next-token
// cross-entropy, both in nats, through inference/tune.Evaluate.
//
//	go run ./tools/tunedlens/eval -m demo --lens DIR --data FILE... [--max-windows N] [--svg FILE] [--title T]
//
// It prints a Markdown table; --svg writes the two panels as a figure.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/tune"
	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/hub"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(s string) error { *f = append(*f, s); return nil }

func main() {
	var data files
	model := flag.String("m", "demo", "model")
	lensDir := flag.String("lens", "", "tuned lens folder (config.json, params.pt)")
	flag.Var(&data, "data", "held-out text file (repeatable); each is one document")
	maxWindows := flag.Int("max-windows", 0, "evaluate at most this many windows (0: all)")
	svg := flag.String("svg", "", "write the figure here")
	title := flag.String("title", "", "figure title")
	flag.Parse()
	if err := run(*model, *lensDir, data, *maxWindows, *svg, *title); err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(1)
	}
}

func run(model, lensDir string, data []string, maxWindows int, svg, title string) error {
	ctx := context.Background()
	m, err := inference.Load(ctx, model, inference.LoadOptions{Hub: hub.OptionsFromEnv(), Device: "cpu"})
	if err != nil {
		return err
	}
	defer m.Close()
	cfg := m.Config()
	lens, err := tunedlens.Load(lensDir, cfg.NEmbd, cfg.NLayer)
	if err != nil {
		return err
	}
	var docs []string
	for _, p := range data {
		b, err := weights.ReadFile(p, 1<<30)
		if err != nil {
			return err
		}
		docs = append(docs, string(b))
	}
	corpus, err := tune.NewCorpus(tune.TokenizerOf(m), docs, cfg.NPositions)
	if err != nil {
		return err
	}
	windows := corpus.Windows
	if maxWindows > 0 && len(windows) > maxWindows {
		windows = windows[:maxWindows]
	}
	model2 := tune.FromInference(m)
	logit, err := tune.Evaluate(ctx, model2, nil, windows)
	if err != nil {
		return err
	}
	tuned, err := tune.Evaluate(ctx, model2, lens, windows)
	if err != nil {
		return err
	}
	fmt.Printf("%s, %d held-out windows of %d tokens (%d files)\n\n", model, len(windows), cfg.NPositions, len(data))
	fmt.Println("| row | KL logit | KL tuned | CE logit | CE tuned |")
	fmt.Println("|---|---:|---:|---:|---:|")
	for r := range logit {
		name := fmt.Sprint(r)
		if r == 0 {
			name = "embed"
		}
		if r == len(logit)-1 {
			name += " (output)"
		}
		fmt.Printf("| %s | %.3f | %.3f | %.3f | %.3f |\n", name, logit[r].KL, tuned[r].KL, logit[r].CE, tuned[r].CE)
	}
	if svg != "" {
		return os.WriteFile(svg, []byte(figure(title, logit, tuned)), 0o644)
	}
	return nil
}

// figure draws KL and cross-entropy per layer, logit against tuned, as two
// panels of an SVG line chart. The KL panel has a logarithmic axis: the
// embedding row's KL is tens of times the others' on a small model, and
// the output row, whose KL is 0 by definition, is left out of it.
func figure(title string, logit, tuned []tune.RowStats) string {
	const W, H, panelW, panelH, left, top = 800, 350, 320, 220, 60, 60
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15">%s</text>`+"\n", left, escape(title))
	panels := []struct {
		name string
		get  func(tune.RowStats) float64
		log  bool
	}{
		{"KL(P_output ‖ P_lens), nats (log scale)", func(s tune.RowStats) float64 { return s.KL }, true},
		{"next-token cross-entropy, nats", func(s tune.RowStats) float64 { return s.CE }, false},
	}
	n := len(logit)
	for p, panel := range panels {
		x0 := left + p*(panelW+60)
		rows := n
		if panel.log {
			rows = n - 1 // the output row's KL is 0
		}
		lo, hi := math.Inf(1), 0.0
		for r := range rows {
			for _, v := range []float64{panel.get(logit[r]), panel.get(tuned[r])} {
				hi = max(hi, v)
				if v > 0 {
					lo = min(lo, v)
				}
			}
		}
		x := func(r int) float64 { return float64(x0) + float64(r)*panelW/float64(max(1, n-1)) }
		var y func(v float64) float64
		var ticks []float64
		if panel.log {
			if math.IsInf(lo, 1) {
				lo = 1
			}
			a, z := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(max(hi, lo*10)))
			y = func(v float64) float64 { return top + panelH - (math.Log10(max(v, 1e-300))-a)/(z-a)*panelH }
			for e := a; e <= z; e++ {
				ticks = append(ticks, math.Pow(10, e))
			}
		} else { // from a round number below the lowest value: the rows differ by little
			lo = min(lo, hi)
			step := niceCeil((hi - lo) / 4)
			a, z := math.Floor(lo/step)*step, math.Ceil(hi/step)*step
			z = max(z, a+step)
			y = func(v float64) float64 { return top + panelH - (v-a)/(z-a)*panelH }
			for v := a; v <= z+step/2; v += step {
				ticks = append(ticks, v)
			}
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x0, top-12, escape(panel.name))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", x0, top, panelW, panelH)
		for _, v := range ticks {
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%.3g</text>`+"\n",
				x0, x0+panelW, y(v), y(v), x0-6, y(v)+4, v)
		}
		for r := range n {
			label := fmt.Sprint(r)
			if r == 0 {
				label = "emb"
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(r), top+panelH+16, label)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">layer (row h[l])</text>`+"\n", x0+panelW/2, top+panelH+34)
		for _, series := range []struct {
			stats  []tune.RowStats
			colour string
			dash   string
		}{{logit, "#440154", "6 4"}, {tuned, "#21918c", ""}} {
			var pts []string
			for r := range rows {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(r), y(panel.get(series.stats[r]))))
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n", strings.Join(pts, " "), series.colour, series.dash)
			for r := range rows {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(r), y(panel.get(series.stats[r])), series.colour)
			}
		}
	}
	ly := H - 12
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#440154" stroke-width="2" stroke-dasharray="6 4"/><text x="%d" y="%d">logit lens</text>`+"\n", left, left+30, ly, ly, left+36, ly+4)
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#21918c" stroke-width="2"/><text x="%d" y="%d">tuned lens</text>`+"\n", left+130, left+160, ly, ly, left+166, ly+4)
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
