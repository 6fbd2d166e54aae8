package tui

import (
	"fmt"
	"math"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/tui/figure"
)

// Metric is the statistic that colours the grid. Every metric is mapped so
// that the bright end of the scale means "confident / agrees with the final
// output": high probability, low rank, low entropy, low KL.
type Metric int

const (
	// MetricTop1 is the probability of the cell's own top-1 token.
	MetricTop1 Metric = iota
	// MetricFinalProb is the probability of the final row's top-1 token.
	MetricFinalProb
	// MetricFinalRank is the rank of the final row's top-1 token, log scale.
	MetricFinalRank
	// MetricEntropy is the entropy of the row's distribution, in nats.
	MetricEntropy
	// MetricKL is KL(P_final ‖ P_row), in nats.
	MetricKL
	// MetricTarget is the probability of the pinned target token.
	MetricTarget
	numMetrics
)

// String names the metric for the legend.
func (m Metric) String() string {
	switch m {
	case MetricTop1:
		return "top-1 prob"
	case MetricFinalProb:
		return "p(final top-1)"
	case MetricFinalRank:
		return "rank of final top-1"
	case MetricEntropy:
		return "entropy"
	case MetricKL:
		return "KL to final"
	case MetricTarget:
		return "p(target)"
	}
	return "?"
}

// figureName names the metric for tui/figure, whose metrics are the
// same six in the same order.
func (m Metric) figureName() string { return figure.Metrics()[m] }

// next cycles to the following metric, skipping MetricTarget when no target
// is pinned.
func (m Metric) next(hasTarget bool) Metric {
	n := (m + 1) % numMetrics
	if n == MetricTarget && !hasTarget {
		n = (n + 1) % numMetrics
	}
	return n
}

// scaleRange is what a metric's colours are normalised against: the vocabulary
// size for ranks and entropy, the largest KL of the lens for KL.
type scaleRange struct {
	vocab int
	maxKL float64
}

// value is the raw statistic of a cell.
func (m Metric) value(c inference.Cell) float64 {
	switch m {
	case MetricTop1:
		if len(c.Top) == 0 {
			return 0
		}
		return c.Top[0].Prob
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
	return 0
}

// norm maps a raw value to t in [0,1], 1 being the bright, confident end.
func (m Metric) norm(v float64, r scaleRange) float64 {
	switch m {
	case MetricFinalRank:
		return 1 - math.Log1p(v)/math.Log1p(float64(max(r.vocab-1, 1)))
	case MetricEntropy:
		return 1 - v/math.Log(float64(max(r.vocab, 2)))
	case MetricKL:
		return 1 - v/math.Max(r.maxKL, 1e-9)
	}
	return v
}

// ends returns the legend labels of the dark (t=0) and bright (t=1) ends.
func (m Metric) ends(r scaleRange) (dark, bright string) {
	switch m {
	case MetricFinalRank:
		return fmt.Sprintf("%d", max(r.vocab-1, 1)), "0 (log)"
	case MetricEntropy:
		return fmt.Sprintf("%.1f", math.Log(float64(max(r.vocab, 2)))), "0 nats"
	case MetricKL:
		return fmt.Sprintf("%.2f", r.maxKL), "0 nats"
	}
	return "0", "1"
}

// format renders a raw value compactly for number mode and copies.
func (m Metric) format(v float64) string {
	switch m {
	case MetricFinalRank:
		return fmt.Sprintf("%d", int(v))
	case MetricEntropy, MetricKL:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}
