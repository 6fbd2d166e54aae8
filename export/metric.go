package export

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/logitlens/logitlens/inference"
)

// Metric is a statistic that colours a lens cell, in the explorer's grid and
// in the figures alike. Every metric is oriented the same way: the bright end
// of a palette (t=1) means confident or in agreement with the model's
// output — high probability, low rank, low entropy, low KL.
type Metric int

// The metrics, in the order the explorer cycles through them; the first is
// the default.
const (
	// MetricProb is the probability of the cell's own top-1 token.
	MetricProb Metric = iota
	// MetricNextProb is the row's probability of the token that really
	// comes next in the prompt, P_row(ids[t+1]).
	MetricNextProb
	// MetricNextRank is the row's rank of the token that really comes
	// next, on a log scale.
	MetricNextRank
	// MetricCE is the cross-entropy of the token that really comes next,
	// −ln P_row(ids[t+1]), in nats.
	MetricCE
	// MetricFinalProb is the row's probability of the final row's top-1 token.
	MetricFinalProb
	// MetricFinalRank is the row's rank of the final row's top-1 token, on a
	// log scale.
	MetricFinalRank
	// MetricEntropy is the entropy of the row's distribution, in nats.
	MetricEntropy
	// MetricKL is KL(P_final ‖ P_row), in nats.
	MetricKL
	// MetricTarget is the row's probability of the pinned target token.
	MetricTarget
	numLensMetrics

	// The pairwise metrics colour a comparison of two runs (see
	// inference.PairCell) on a diverging palette centred on "no change".

	// MetricKLAB is KL(P_A ‖ P_B) in nats, from 0 up to the comparison's
	// largest.
	MetricKLAB Metric = iota - 1
	// MetricDeltaTop1 is P_B(top1_a) − P_A(top1_a), on −1..+1: what B
	// keeps of A's prediction.
	MetricDeltaTop1
	// MetricDeltaTarget is P_B(target) − P_A(target), on −1..+1.
	MetricDeltaTarget
	numMetrics
)

// metricTable names each metric: its --metric value and its legend label.
var metricTable = [numMetrics]struct{ name, label string }{
	MetricProb:      {"prob", "p(top-1)"},
	MetricNextProb:  {"next-prob", "p(next token)"},
	MetricNextRank:  {"next-rank", "rank of next token (log)"},
	MetricCE:        {"ce", "cross-entropy of next token (nats)"},
	MetricFinalProb: {"final-prob", "p(final top-1)"},
	MetricFinalRank: {"final-rank", "rank of final top-1 (log)"},
	MetricEntropy:   {"entropy", "entropy (nats)"},
	MetricKL:        {"kl", "KL(P_final ‖ P_row) (nats)"},
	MetricTarget:    {"target", "p(target)"},

	MetricKLAB:        {"kl-ab", "KL(P_A ‖ P_B) (nats)"},
	MetricDeltaTop1:   {"delta-top1", "Δp of A's top-1 (B − A)"},
	MetricDeltaTarget: {"delta-target", "Δp(target) (B − A)"},
}

// Metrics lists the metrics of one lens in cycling order, the default
// first.
func Metrics() []Metric {
	ms := make([]Metric, numLensMetrics)
	for i := range ms {
		ms[i] = Metric(i)
	}
	return ms
}

// CompareMetrics lists the metrics of a comparison of two runs in cycling
// order, the default (MetricKLAB) first.
func CompareMetrics() []Metric { return []Metric{MetricKLAB, MetricDeltaTop1, MetricDeltaTarget} }

// Pairwise reports whether m colours a comparison of two runs (a
// PairValue) rather than one lens (a Value).
func (m Metric) Pairwise() bool { return m >= numLensMetrics && m < numMetrics }

// NeedsTarget reports whether m is about the pinned target token.
func (m Metric) NeedsTarget() bool { return m == MetricTarget || m == MetricDeltaTarget }

// MetricNames lists the names ParseMetric accepts, the default first.
func MetricNames() []string {
	names := make([]string, numMetrics)
	for i := range names {
		names[i] = metricTable[i].name
	}
	return names
}

// ParseMetric returns the metric of a name from MetricNames, in any case.
func ParseMetric(name string) (Metric, error) {
	for i, m := range metricTable {
		if strings.EqualFold(name, m.name) {
			return Metric(i), nil
		}
	}
	return 0, fmt.Errorf("export: unknown metric %q (want one of %s)", name, strings.Join(MetricNames(), ", "))
}

// String returns the metric's name, e.g. "entropy".
func (m Metric) String() string {
	if m < 0 || m >= numMetrics {
		return "metric(" + strconv.Itoa(int(m)) + ")"
	}
	return metricTable[m].name
}

// Label is the metric's title on a legend or colour bar, with its unit.
func (m Metric) Label() string {
	if m < 0 || m >= numMetrics {
		return m.String()
	}
	return metricTable[m].label
}

// Next is the metric after m in cycling order among the metrics of its
// kind (one lens's, or a comparison's), skipping the target's when no
// target is pinned.
func (m Metric) Next(hasTarget bool) Metric {
	first, end := Metric(0), numLensMetrics
	if m.Pairwise() {
		first, end = numLensMetrics, numMetrics
	}
	n := first + (m-first+1)%(end-first)
	if n.NeedsTarget() && !hasTarget {
		n = first + (n-first+1)%(end-first)
	}
	return n
}

// Value is the cell's raw statistic for the metric: a probability, a rank
// or nats. A value the cell does not have is NaN: the top-1 probability of
// a cell whose logits were not finite, the next token's statistics at the
// prompt's last position (nothing comes next) or where they were not asked
// for.
func (m Metric) Value(c inference.Cell) float64 {
	switch m {
	case MetricNextProb, MetricNextRank, MetricCE:
		if c.NextRank < 0 {
			return math.NaN()
		}
		switch m {
		case MetricNextProb:
			return c.NextProb
		case MetricNextRank:
			return float64(c.NextRank)
		}
		return -math.Log(c.NextProb) // +Inf where P is 0
	case MetricFinalProb:
		return c.FinalTop1Prob
	case MetricFinalRank:
		return float64(c.FinalTop1Rank)
	case MetricEntropy:
		return c.Entropy
	case MetricKL:
		return c.KLToFinal
	case MetricTarget:
		return c.TargetProb
	}
	if m.Pairwise() || len(c.Top) == 0 {
		return math.NaN()
	}
	return c.Top[0].Prob
}

// PairValue is an aligned cell's raw statistic for a pairwise metric: nats
// or a difference of probabilities; NaN for a lens metric, for a cell that
// is not finite, and for the target's Δ without a target.
func (m Metric) PairValue(c inference.PairCell, hasTarget bool) float64 {
	switch {
	case c.NonFinite:
		return math.NaN()
	case m == MetricKLAB:
		return c.KL
	case m == MetricDeltaTop1:
		return c.DeltaTop1()
	case m == MetricDeltaTarget && hasTarget:
		return c.DeltaTarget()
	}
	return math.NaN()
}

// Relative reports whether the metric's scale follows the lens by default:
// KL and cross-entropy have no upper bound, so they run from 0 to the
// largest value of the lens, unless a fixed scale is asked for (see
// NewScale).
func (m Metric) Relative() bool { return m == MetricKL || m == MetricCE || m == MetricKLAB }

// Format renders a raw value of the metric compactly, for cells in number
// mode, tooltips and colour-bar ticks: ranks as integers, nats with two
// decimals, probabilities with three digits; "NaN" or "±Inf" where the value
// is not finite.
func (m Metric) Format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	switch m {
	case MetricFinalRank, MetricNextRank:
		return strconv.Itoa(int(v))
	case MetricEntropy, MetricKL, MetricCE, MetricKLAB:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// Scale maps one metric's values to positions t in [0,1] along a palette:
//
//   - prob, next-prob, final-prob, target: t = p, on 0..1.
//   - next-rank, final-rank: t = 1 − ln(1+r)/ln(V), r the 0-based rank on
//     0..V−1 (a log scale; the base cancels).
//   - entropy: t = 1 − H/ln V, H in nats on 0..ln V (ln V is the entropy of
//     the uniform distribution over the vocabulary).
//   - kl, ce: t = 1 − x/max, KL(P_final ‖ P_row) or −ln P_row(next) in nats
//     on 0..the largest value of the lens (the output row's KL is 0, so
//     that row is bright); with a fixed scale on 0..ln V instead, the same
//     for every prompt, so that two lenses compare by eye (a value beyond
//     ln V, worse than the uniform guess, is as dark as ln V).
//
// The pairwise metrics sit on a diverging palette whose centre (t = 0.5)
// is "no change" and whose t = 0 end is "B moved away from A":
//
//   - delta-top1, delta-target: t = (1 + Δp)/2, Δp on −1..+1.
//   - kl-ab: t = (1 − KL/max)/2, KL(P_A ‖ P_B) in nats on 0..the largest
//     of the comparison (or 0..ln V with a fixed scale): the half of the
//     palette from its centre to its t = 0 end.
type Scale struct {
	Metric Metric
	Lo, Hi float64 // the value range: Lo maps to t=0 unless Reversed
	// Reversed is set when small values are the confident ones (rank,
	// entropy, KL, cross-entropy): then Lo maps to t=1.
	Reversed bool
	// Log is set for the ranks, whose colour follows ln(1+r).
	Log bool
	// Fixed is set when a relative metric (kl, ce) runs on 0..ln V rather
	// than up to the lens's largest value.
	Fixed bool
	// Half is set for a scale that uses the half t ∈ [0, 0.5] of a
	// diverging palette (kl-ab): T is halved.
	Half bool
}

// NewScale returns the scale of a metric for a model of vocab tokens.
// lensMax is the largest finite value of the metric in the lens drawn; it
// sets the top of a relative metric's scale (kl, ce) unless fixed is set,
// and is ignored by the others. A non-finite or negative lensMax counts as
// 0.
func NewScale(m Metric, vocab int, lensMax float64, fixed bool) Scale {
	s := Scale{Metric: m, Lo: 0, Hi: 1}
	vocab = max(vocab, 2)
	lnV := math.Log(float64(vocab))
	switch m {
	case MetricFinalRank, MetricNextRank:
		s.Hi, s.Reversed, s.Log = float64(vocab-1), true, true
	case MetricEntropy:
		s.Hi, s.Reversed = lnV, true
	case MetricDeltaTop1, MetricDeltaTarget:
		s.Lo = -1
	case MetricKL, MetricCE, MetricKLAB:
		s.Hi, s.Reversed, s.Half = 0, true, m == MetricKLAB
		switch {
		case fixed:
			s.Hi, s.Fixed = lnV, true
		case lensMax > 0 && !math.IsInf(lensMax, 1):
			s.Hi = lensMax
		}
	}
	return s
}

// Range is the part of the palette the scale uses: [0,1], or [0, 0.5]
// for kl-ab. A colour bar spans it.
func (s Scale) Range() (lo, hi float64) {
	if s.Half {
		return 0, 0.5
	}
	return 0, 1
}

// T maps a raw value to its position on the palette, in [0,1]; a NaN value
// maps to NaN, which callers draw as a cell without colour.
func (s Scale) T(v float64) float64 {
	if math.IsNaN(v) {
		return math.NaN()
	}
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
	t = math.Min(1, math.Max(0, t))
	if s.Half {
		t /= 2
	}
	return t
}

// Ends returns the labels of the scale's dark (t=0) and bright (t=1) ends,
// with units: "50256" and "0 (log)" for the rank, "10.8" and "0 nats" for
// the entropy of a GPT-2 vocabulary.
func (s Scale) Ends() (dark, bright string) {
	switch s.Metric {
	case MetricFinalRank, MetricNextRank:
		return strconv.Itoa(int(s.Hi)), "0 (log)"
	case MetricEntropy:
		return strconv.FormatFloat(s.Hi, 'f', 1, 64), "0 nats"
	case MetricKL, MetricCE, MetricKLAB:
		return strconv.FormatFloat(s.Hi, 'f', 2, 64), "0 nats"
	case MetricDeltaTop1, MetricDeltaTarget:
		return "−1", "+1"
	}
	return "0", "1"
}

// Tick is a labelled value on a colour bar.
type Tick struct {
	T     float64 // position along the palette
	Label string
}

// Ticks returns a colour bar's labels: round values within the range,
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
		if s.Log {
			return strconv.Itoa(int(v))
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
