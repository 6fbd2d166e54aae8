package display

import (
	"fmt"
	"strconv"
)

// Prob renders a probability as a percentage, with more digits where small:
// 42.1%, 3.20%, 4e-05.
func Prob(p float64) string {
	switch {
	case p >= 0.0995:
		return strconv.FormatFloat(100*p, 'f', 1, 64) + "%"
	case p >= 0.000995:
		return strconv.FormatFloat(100*p, 'f', 2, 64) + "%"
	case p == 0:
		return "0%"
	}
	return strconv.FormatFloat(p, 'e', 0, 64)
}

// Bytes renders a byte count in binary units: "512 B", "1.5 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n)/unit, 0
	for v >= unit && i < len(units)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
