package tunedlens

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
)

// UnembedHash returns the tuned-lens package's unembed_hash of an
// unembedding matrix W_U ([rows, cols] row-major float32, e.g. GPT-2's
// wte [V, C]): tuned_lens.utils.tensor_hash, the sha256 of
// numpy.array_str(W_U, precision=1) encoded as UTF-8.
//
// array_str prints with numpy's defaults otherwise (numpy ≥ 1.14 style:
// linewidth 75, threshold 1000, edgeitems 3, floatmode "maxprec", sign
// "-", suppress off). Arrays of more than 1000 values print only their
// 3×3 corners, so the hash reads at most 36 values. The formatting
// (positional or scientific, padding, line wrapping) is rebuilt here from
// numpy's arrayprint.py; UnembedHash is checked against hashes numpy
// printed (make_tuned.py --unembed-hash and synthetic matrices).
func UnembedHash(w []float32, rows, cols int) string {
	s := arrayStr(w, rows, cols)
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// numpy's array2string defaults.
const (
	npLineWidth = 75
	npThreshold = 1000
	npEdgeItems = 3
	npPrecision = 1
)

// arrayStr is numpy.array_str(w.reshape(rows, cols), precision=1) for a
// float32 matrix with rows, cols ≥ 1.
func arrayStr(w []float32, rows, cols int) string {
	summary := rows*cols > npThreshold
	rowIdx, colIdx := shown(rows, summary), shown(cols, summary)

	// The format is chosen from the values that are printed.
	var vals []float32
	for _, i := range rowIdx {
		for _, j := range colIdx {
			vals = append(vals, w[i*cols+j])
		}
	}
	f := newFloatFormat(vals)

	// _formatArray, 2-D: rows separated by "\n ", each row's elements
	// wrapped to the line width, "..." in place of the hidden ones.
	const hanging = "  " // the row's hanging indent: "[" + "["
	elemWidth := npLineWidth - 1 - 1
	var b strings.Builder
	b.WriteString("[")
	for n, i := range rowIdx {
		if n > 0 {
			b.WriteString("\n ")
		}
		if summary && rows > 2*npEdgeItems && n == npEdgeItems {
			b.WriteString("...\n ")
		}
		var s strings.Builder
		line := hanging
		extend := func(word string) {
			if len(line)+len(word) > elemWidth && len(line) > len(hanging) {
				s.WriteString(strings.TrimRight(line, " ") + "\n")
				line = hanging
			}
			line += word
		}
		for m, j := range colIdx {
			if summary && cols > 2*npEdgeItems && m == npEdgeItems {
				extend("...")
				line += " "
			}
			extend(f.format(w[i*cols+j]))
			if m < len(colIdx)-1 {
				line += " "
			}
		}
		s.WriteString(line)
		b.WriteString("[" + s.String()[len(hanging):] + "]")
	}
	b.WriteString("]")
	return b.String()
}

// shown returns the indices numpy prints along an axis of length n.
func shown(n int, summary bool) []int {
	var idx []int
	if summary && n > 2*npEdgeItems {
		for i := range npEdgeItems {
			idx = append(idx, i)
		}
		for i := n - npEdgeItems; i < n; i++ {
			idx = append(idx, i)
		}
		return idx
	}
	for i := range n {
		idx = append(idx, i)
	}
	return idx
}

// floatFormat is numpy's FloatingFormat for floatmode "maxprec",
// precision 1, sign "-".
type floatFormat struct {
	exp       bool
	padLeft   int
	padRight  int // positional: fraction digits; scientific: mantissa fraction digits
	expDigits int
}

func newFloatFormat(vals []float32) floatFormat {
	var f floatFormat
	var finite []float32
	for _, v := range vals {
		if !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
			finite = append(finite, v)
		}
	}
	var maxV, minV float32
	first := true
	for _, v := range finite {
		a := float32(math.Abs(float64(v)))
		if a == 0 {
			continue
		}
		if first || a > maxV {
			maxV = a
		}
		if first || a < minV {
			minV = a
		}
		first = false
	}
	if !first && (float64(maxV) >= 1e8 || float64(minV) < 0.0001 || float64(maxV/minV) > 1000) {
		f.exp = true
	}
	if len(finite) == 0 {
		return f
	}
	if f.exp {
		for _, v := range finite {
			mant, exp := scientific(v, npPrecision, 0)
			intPart, frac, _ := strings.Cut(mant, ".")
			f.padLeft = max(f.padLeft, len(intPart))
			f.padRight = max(f.padRight, len(frac))
			f.expDigits = max(f.expDigits, len(exp)-1)
		}
		return f
	}
	for _, v := range finite {
		intPart, frac, _ := strings.Cut(positional(v, npPrecision), ".")
		f.padLeft = max(f.padLeft, len(intPart))
		f.padRight = max(f.padRight, len(frac))
	}
	return f
}

// format prints one value as FloatingFormat.__call__ does.
func (f floatFormat) format(v float32) string {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		s := "nan"
		if math.IsInf(float64(v), 1) {
			s = "inf"
		} else if math.IsInf(float64(v), -1) {
			s = "-inf"
		}
		return strings.Repeat(" ", max(0, f.padLeft+f.padRight+1-len(s))) + s
	}
	if f.exp {
		mant, exp := scientific(v, f.padRight, f.padRight)
		intPart, _, _ := strings.Cut(mant, ".")
		sign, digits := exp[:1], exp[1:]
		for len(digits) < f.expDigits {
			digits = "0" + digits
		}
		return strings.Repeat(" ", f.padLeft-len(intPart)) + mant + "e" + sign + digits
	}
	s := positional(v, npPrecision)
	intPart, frac, _ := strings.Cut(s, ".")
	return strings.Repeat(" ", f.padLeft-len(intPart)) + s + strings.Repeat(" ", f.padRight-len(frac))
}

// positional is numpy's dragon4_positional(v, precision, unique=True,
// fractional=True, trim='.'): the shortest digits that identify the
// float32 when they need at most precision fraction digits, else the
// exact value rounded half-to-even to precision digits; trailing zeros
// dropped, the point kept ("0.", "-0.", "1.2").
func positional(v float32, precision int) string {
	s := strconv.FormatFloat(float64(v), 'f', -1, 32)
	if _, frac, ok := strings.Cut(s, "."); ok && len(frac) > precision {
		s = strconv.FormatFloat(float64(v), 'f', precision, 64)
	}
	if !strings.Contains(s, ".") {
		s += "."
	}
	return strings.TrimRight(s, "0")
}

// scientific is numpy's dragon4_scientific(v, precision, min_digits,
// unique=True) split into mantissa and exponent ("-1.5", "-05"): the
// shortest unique digits when they fit, else the exact value rounded to
// precision fraction digits; trailing zeros trimmed to the point, then
// padded back to minDigits fraction digits.
func scientific(v float32, precision, minDigits int) (mant, exp string) {
	s := strconv.FormatFloat(float64(v), 'e', -1, 32)
	m, e, _ := strings.Cut(s, "e")
	if _, frac, ok := strings.Cut(m, "."); ok && len(frac) > precision {
		s = strconv.FormatFloat(float64(v), 'e', precision, 64)
		m, e, _ = strings.Cut(s, "e")
	}
	if !strings.Contains(m, ".") {
		m += "."
	}
	m = strings.TrimRight(m, "0")
	_, frac, _ := strings.Cut(m, ".")
	m += strings.Repeat("0", max(0, minDigits-len(frac)))
	return m, e
}
