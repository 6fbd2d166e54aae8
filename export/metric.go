package figure

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/logitlens/logitlens/inference/export"
)

// metricInfo describes one statistic a figure can be coloured by.
type metricInfo struct {
	name  string // the --metric value
	label string // the colour bar's title
}

// metrics lists the --metric values, the default first. The names and the
// mapping to colour match the explorer's metrics (tui/metric.go).
var metrics = []metricInfo{
	{"prob", "p(top-1)"},
	{"final-prob", "p(final top-1)"},
	{"final-rank", "rank of final top-1 (log)"},
	{"entropy", "entropy (nats)"},
	{"kl", "KL(P_final ‖ P_row) (nats)"},
	{"target", "p(target)"},
}

// DefaultMetric is the metric used when Options.Metric is empty.
const DefaultMetric = "prob"

// Metrics returns the names --metric accepts, the default first.
func Metrics() []string {
	n := make([]string, len(metrics))
	for i, m := range metrics {
		n[i] = m.name
	}
	return n
}

// Scale maps one metric's values to positions t in [0,1] along a palette.
// Every metric is oriented like the explorer's: t=1, the bright end, means
// confident or in agreement with the model's output.
//
//   - prob, final-prob, target: t = p, on 0..1.
//   - final-rank: t = 1 − ln(1+r)/ln(V), r the 0-based rank on 0..V−1
//     (a log scale; the base cancels).
//   - entropy: t = 1 − H/ln V, H in nats on 0..ln V (ln V is the entropy of
//     the uniform distribution).
//   - kl: t = 1 − KL/max, KL(P_final ‖ P_row) in nats on 0..the largest KL
//     of the document (0 on the output row, so that row is bright).
type Scale struct {
	Metric string  // the metric's name, e.g. "entropy"
	Label  string  // the colour bar's title
	Lo, Hi float64 // the value range: Lo maps to the dark end, Hi to the bright end unless Reversed
	// Reversed is set when small values are the confident ones (rank,
	// entropy, KL): then Lo maps to t=1.
	Reversed bool
	// Log is set for the rank, whose colour follows ln(1+r).
	Log bool
}

// NewScale returns the scale of metric over the document d: the vocabulary
// size fixes the rank and entropy ranges, the document's largest KL the KL
// range. An empty metric is DefaultMetric.
func NewScale(metric string, d *export.Document) (Scale, error) {
	if metric == "" {
		metric = DefaultMetric
	}
	var info *metricInfo
	for i := range metrics {
		if metrics[i].name == metric {
			info = &metrics[i]
		}
	}
	if info == nil {
		return Scale{}, fmt.Errorf("figure: unknown metric %q (want one of %s)", metric, strings.Join(Metrics(), ", "))
	}
	s := Scale{Metric: info.name, Label: info.label, Lo: 0, Hi: 1}
	vocab := max(d.Model.VocabSize, 2)
	switch metric {
	case "target":
		if d.Target == nil {
			return Scale{}, fmt.Errorf("figure: metric target needs a target token (--target)")
		}
		s.Label = "p(target " + clean(d.Target.Display) + ")"
	case "final-rank":
		s.Hi, s.Reversed, s.Log = float64(vocab-1), true, true
	case "entropy":
		s.Hi, s.Reversed = math.Log(float64(vocab)), true
	case "kl":
		s.Reversed = true
		s.Hi = 0
		for _, row := range d.Cells {
			for _, c := range row {
				s.Hi = math.Max(s.Hi, c.KLToFinal)
			}
		}
	}
	return s, nil
}

// Value returns the cell's raw statistic for the scale's metric: a
// probability, a rank, or nats.
func (s Scale) Value(c export.CellInfo) float64 {
	switch s.Metric {
	case "final-prob":
		return c.FinalTop1Prob
	case "final-rank":
		return float64(c.FinalTop1Rank)
	case "entropy":
		return c.Entropy
	case "kl":
		return c.KLToFinal
	case "target":
		if c.TargetProb == nil {
			return 0
		}
		return *c.TargetProb
	}
	if len(c.Top) == 0 {
		return 0
	}
	return c.Top[0].Prob
}

// T maps a raw value to its position on the palette, in [0,1].
func (s Scale) T(v float64) float64 {
	lo, hi := s.Lo, s.Hi
	if s.Log {
		v, lo, hi = math.Log1p(math.Max(v, 0)), math.Log1p(lo), math.Log1p(hi)
	}
	var t float64
	if hi > lo {
		t = (v - lo) / (hi - lo)
	}
	if s.Reversed {
		t = 1 - t
	}
	if math.IsNaN(t) {
		return 0
	}
	return math.Min(1, math.Max(0, t))
}

// Tick is a labelled value on the colour bar.
type Tick struct {
	T     float64 // position along the palette
	Label string
}

// Ticks returns the colour bar's labels: round values within the range,
// always including both ends.
func (s Scale) Ticks() []Tick {
	var vals []float64
	if s.Log {
		for v := 1.0; v < s.Hi*0.5; v *= 10 {
			vals = append(vals, v)
		}
	} else {
		step := niceStep((s.Hi - s.Lo) / 6)
		for v := s.Lo + step; v < s.Hi-0.4*step; v += step {
			vals = append(vals, v)
		}
	}
	label := func(v float64) string {
		if s.Metric == "final-rank" {
			return s.format(v)
		}
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	ticks := []Tick{{s.T(s.Lo), label(s.Lo)}}
	for _, v := range vals {
		ticks = append(ticks, Tick{s.T(v), label(v)})
	}
	if s.Hi > s.Lo {
		ticks = append(ticks, Tick{s.T(s.Hi), label(s.Hi)})
	}
	return ticks
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// format renders a value of the scale's metric for labels and tooltips.
func (s Scale) format(v float64) string {
	switch s.Metric {
	case "final-rank":
		return strconv.Itoa(int(v))
	case "entropy", "kl":
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
