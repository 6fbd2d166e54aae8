package inference

import (
	"math"
	"slices"
)

// The lens statistics of one row come from its V logits: the softmax
// normaliser, the sums entropy and KL need, the ranks of the final top-1,
// of the target and of the next token, and the top-k. Nothing is
// exponentiated twice and no probability vector is stored, except the
// final row's, which KL needs for every other row of the same position.
//
// Where the time goes: V exponentials per row, 13·T rows per lens. The fast
// path (rowStats) takes the max first (one cheap vector pass, which also
// finds any logit that is not finite) so that a single vector pass
// (vec_amd64.s, 8 lanes) computes every sum and two ranks with no
// rescaling, in float32 chunks of statsChunk summed in float64; the next
// token's rank is one more vector count, and the top-k stays a scalar scan
// (one compare per logit). rowStatsRef is the same maths as one plain
// online pass, kept as the reference.
//
// A row with a logit that is not finite has no statistics (see Cell): the
// vector kernels clamp their exponent, so they would turn NaN into a
// number rather than propagate it, and the max pass must catch it first.

// finalRow is what the other rows of a position need from its last row.
type finalRow struct {
	top1   int       // argmax of the final logits (smaller id on ties); -1 when they are not all finite
	negEnt float64   // Σ p_f·log p_f = −H(P_final)
	lse    float64   // log Σ exp(z), so that log p_f(i) = z_i − lse
	probs  []float32 // P_final [V]; nil for the final row itself
}

// query is what a row's cell reports besides its distribution.
type query struct {
	k      int // top-k
	target int // pinned token, or -1
	next   int // the token that follows, or -1
}

// allFinite says whether every z is finite.
func allFinite(z []float32) bool {
	for _, v := range z {
		if v-v != 0 { // NaN for ±Inf and NaN
			return false
		}
	}
	return true
}

// rowStatsRef fills c from the logits z[V] of one row in one plain pass:
// the reference rowStats is tested against. It returns false, leaving c
// alone, when z is not all finite.
//
//	lse     = log Σ exp(z)                      (online: m + log Σ exp(z−m))
//	H(P)    = lse − Σ p·z                       (p = exp(z − lse))
//	KL(F‖P) = Σ f·log f − Σ f·log p = −H(F) − Σ f·z + lse       (Σ f = 1)
//	rank(i) = #{j : z_j > z_i}
func rowStatsRef(c *Cell, z []float32, fin *finalRow, q query) bool {
	if !allFinite(z) {
		return false
	}
	inf := float32(math.Inf(1))
	zTop1, zTarget, zNext := inf, inf, inf
	if fin.top1 >= 0 {
		zTop1 = z[fin.top1]
	}
	if q.target >= 0 {
		zTarget = z[q.target]
	}
	if q.next >= 0 {
		zNext = z[q.next]
	}
	kl := fin.probs != nil && fin.top1 >= 0
	top := newTopK(q.k)

	m := z[0]        // running max
	var s, e float64 // Σ exp(z−m), Σ exp(z−m)·z
	var fz float64   // Σ f·z
	rankTop1, rankTarget, rankNext := 0, 0, 0
	for i, v := range z {
		if v > m {
			scale := float64(exp32(m - v))
			s *= scale
			e *= scale
			m = v
		}
		w := float64(exp32(v - m))
		s += w
		e += w * float64(v)
		if kl {
			fz += float64(fin.probs[i]) * float64(v)
		}
		if v > zTop1 {
			rankTop1++
		}
		if v > zTarget {
			rankTarget++
		}
		if v > zNext {
			rankNext++
		}
		if v > top.min {
			top.insert(i, v)
		}
	}
	lse := float64(m) + math.Log(s)
	c.Entropy = lse - e/s
	switch {
	case fin.top1 < 0:
		c.KLToFinal = math.NaN()
	case kl:
		c.KLToFinal = math.Max(0, fin.negEnt-fz+lse)
	default:
		c.KLToFinal = 0
	}
	c.FinalTop1Rank, c.FinalTop1Prob = -1, math.NaN()
	if fin.top1 >= 0 {
		c.FinalTop1Rank = rankTop1
		c.FinalTop1Prob = math.Exp(float64(zTop1) - lse)
	}
	c.TargetRank, c.TargetProb = -1, 0
	if q.target >= 0 {
		c.TargetRank = rankTarget
		c.TargetProb = math.Exp(float64(zTarget) - lse)
	}
	c.NextRank, c.NextProb = -1, 0
	if q.next >= 0 {
		c.NextRank = rankNext
		c.NextProb = math.Exp(float64(zNext) - lse)
	}
	c.NonFinite = Finite
	c.Top = make([]Prediction, len(top.ids))
	for j, id := range top.ids {
		c.Top[j] = Prediction{ID: id, Prob: math.Exp(float64(top.vals[j]) - lse)}
	}
	return true
}

// argmax returns the index of the largest value, the smaller index on ties.
func argmax(z []float32) int {
	best := 0
	for i, v := range z {
		if v > z[best] {
			best = i
		}
	}
	return best
}

// finalRowOfRef prepares a position's finalRow from its final logits z,
// writing P_final into probs: the reference finalRowOf is tested against.
func finalRowOfRef(z []float32, probs []float32) finalRow {
	if !allFinite(z) {
		return finalRow{top1: -1}
	}
	top1 := argmax(z)
	m := z[top1]
	var s float64
	for _, v := range z {
		s += float64(exp32(v - m))
	}
	lse := float64(m) + math.Log(s)
	var negEnt float64
	for i, v := range z {
		lp := float64(v) - lse
		p := math.Exp(lp)
		probs[i] = float32(p)
		negEnt += p * lp
	}
	if math.IsNaN(negEnt) { // finite logits so far apart that z − m overflows
		return finalRow{top1: -1}
	}
	return finalRow{top1: top1, negEnt: negEnt, lse: lse, probs: probs}
}

// topK keeps the k largest values seen, descending, the smaller id first
// among equals (ids arrive in increasing order, and only a strictly larger
// value displaces another).
type topK struct {
	k    int
	ids  []int
	vals []float32
	min  float32 // what a newcomer must beat: −Inf until full
}

func newTopK(k int) *topK {
	return &topK{k: k, ids: make([]int, 0, k), vals: make([]float32, 0, k), min: float32(math.Inf(-1))}
}

func (t *topK) insert(id int, v float32) {
	if len(t.ids) < t.k {
		t.ids = append(t.ids, 0)
		t.vals = append(t.vals, 0)
	}
	j := len(t.ids) - 1
	for j > 0 && t.vals[j-1] < v {
		t.ids[j], t.vals[j] = t.ids[j-1], t.vals[j-1]
		j--
	}
	t.ids[j], t.vals[j] = id, v
	if len(t.ids) == t.k {
		t.min = t.vals[t.k-1]
	}
}

// exp32 returns eˣ in float32 with a relative error of about 1e-7: x = n·ln2 + r,
// |r| ≤ ln2/2, eʳ from Cephes' expf polynomial, 2ⁿ from the exponent bits.
// math.Exp would cost several times more, and the lens takes V of these per row.
func exp32(x float32) float32 {
	if x < -87 || x > 88 || x != x {
		return float32(math.Exp(float64(x)))
	}
	const (
		log2e = 1.44269504088896341
		ln2Hi = 0.693359375
		ln2Lo = -2.12194440e-4
	)
	fx := x * log2e
	var n int32
	if fx >= 0 {
		n = int32(fx + 0.5)
	} else {
		n = int32(fx - 0.5)
	}
	fn := float32(n)
	r := x - fn*ln2Hi - fn*ln2Lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	return y * math.Float32frombits(uint32(n+127)<<23)
}

// expSums are the sums one vector pass computes over a chunk of logits z
// against the row's max m, with d = z − m and w = exp(d): Σ w, Σ w·d, Σ f·d,
// #{z > top1}, #{z > target}. Sums of d rather than z keep large logits
// from cancelling in the entropy and KL.
type expSums struct {
	s, e, fz     float32
	rank1, rankT int32
}

// statsChunk bounds the logits one float32 vector pass sums (about 256 per
// lane), so nothing is lost before the float64 total.
const statsChunk = 2048

// rowSums is expSums over a whole row, in float64.
type rowSums struct {
	s, e, fz     float64
	rank1, rankT int
}

// maxFinite returns the largest logit, and whether every logit is finite
// (when one is not, the max means nothing).
func maxFinite(z []float32) (float32, bool) {
	m := z[0]
	n := 0
	finite := true
	if haveVecStats && len(z) >= 32 {
		n = len(z) &^ 31
		m, finite = vecMaxFinite(z[:n])
	}
	for _, v := range z[n:] {
		if v > m {
			m = v
		}
		finite = finite && v-v == 0
	}
	return m, finite
}

// countAbove returns #{i : z[i] > t}.
func countAbove(z []float32, t float32) int {
	n, c := 0, 0
	if haveVecStats {
		n = len(z) &^ 7
		if n > 0 {
			c = vecCountAbove(z[:n], t)
		}
	}
	for _, v := range z[n:] {
		if v > t {
			c++
		}
	}
	return c
}

// sumsOf computes the sums of z (and f, if not nil) against its max m.
func sumsOf(z, f []float32, m, top1, target float32) rowSums {
	var r rowSums
	for a := 0; a < len(z); a += statsChunk {
		b := min(len(z), a+statsChunk)
		var c expSums
		n := a
		if haveVecStats {
			n = a + (b-a)&^7
			if n > a {
				var fc []float32
				if f != nil {
					fc = f[a:n]
				}
				vecExpSums(z[a:n], fc, m, top1, target, &c)
			}
		}
		for i := n; i < b; i++ { // the tail, or everything without vectors
			v := z[i]
			d := v - m
			w := float64(exp32(d))
			r.s += w
			r.e += w * float64(d)
			if f != nil {
				r.fz += float64(f[i]) * float64(d)
			}
			if v > top1 {
				r.rank1++
			}
			if v > target {
				r.rankT++
			}
		}
		r.s += float64(c.s)
		r.e += float64(c.e)
		r.fz += float64(c.fz)
		r.rank1 += int(c.rank1)
		r.rankT += int(c.rankT)
	}
	return r
}

// rowStats fills c from the logits z[V] of one row, as rowStatsRef does,
// and returns false, leaving c alone, when z is not all finite.
//
//	m, d    = max z, z − m
//	S       = Σ exp(d);  lse = m + log S
//	H(P)    = lse − Σ p·z = log S − Σ exp(d)·d / S        (p = exp(d)/S)
//	KL(F‖P) = −H(F) − Σ f·z + lse = −H(F) − Σ f·d + log S  (Σ f = 1)
//	rank(i) = #{j : z_j > z_i}
func rowStats(c *Cell, z []float32, fin *finalRow, q query) bool {
	m, finite := maxFinite(z)
	if !finite {
		return false
	}
	inf := float32(math.Inf(1))
	zTop1, zTarget := inf, inf
	if fin.top1 >= 0 {
		zTop1 = z[fin.top1]
	}
	if q.target >= 0 {
		zTarget = z[q.target]
	}
	var f []float32
	if fin.top1 >= 0 {
		f = fin.probs
	}
	r := sumsOf(z, f, m, zTop1, zTarget)
	logS := math.Log(r.s)
	lse := float64(m) + logS
	c.Entropy = logS - r.e/r.s
	if math.IsNaN(c.Entropy) { // finite logits so far apart that z − m overflows
		return false
	}
	switch {
	case fin.top1 < 0:
		c.KLToFinal = math.NaN()
	case f != nil:
		c.KLToFinal = math.Max(0, fin.negEnt-r.fz+logS)
	default:
		c.KLToFinal = 0
	}
	c.FinalTop1Rank, c.FinalTop1Prob = -1, math.NaN()
	if fin.top1 >= 0 {
		c.FinalTop1Rank = r.rank1
		c.FinalTop1Prob = math.Exp(float64(zTop1) - lse)
	}
	c.TargetRank, c.TargetProb = -1, 0
	if q.target >= 0 {
		c.TargetRank = r.rankT
		c.TargetProb = math.Exp(float64(zTarget) - lse)
	}
	c.NextRank, c.NextProb = -1, 0
	if q.next >= 0 {
		c.NextRank = countAbove(z, z[q.next])
		c.NextProb = math.Exp(float64(z[q.next]) - lse)
	}
	c.NonFinite = Finite
	top := newTopK(q.k)
	top.scan(z)
	c.Top = make([]Prediction, len(top.ids))
	for j, id := range top.ids {
		c.Top[j] = Prediction{ID: id, Prob: math.Exp(float64(top.vals[j]) - lse)}
	}
	return true
}

// scan offers every z[i] to t in order, as the plain loop
// `if v > t.min { t.insert(i, v) }` does, skipping with a vector compare
// the runs of values that cannot enter (nearly all, once t is full).
func (t *topK) scan(z []float32) {
	for i := 0; i < len(z); {
		if haveVecStats && i%8 == 0 && len(z)-i >= 8 {
			n := (len(z) - i) &^ 7
			j := vecFirstAbove(z[i:i+n], t.min)
			i += j
			if j == n {
				continue
			}
		}
		if z[i] > t.min {
			t.insert(i, z[i])
		}
		i++
	}
}

// finalRowOf prepares a position's finalRow from its final logits z, writing
// P_final = exp(d)/S into probs; −H(P_final) = Σ exp(d)·d / S − log S. Its
// top1 is -1 when z is not all finite.
func finalRowOf(z []float32, probs []float32) finalRow {
	m, finite := maxFinite(z)
	if !finite {
		return finalRow{top1: -1}
	}
	top1 := slices.Index(z, m) // the first maximum: the smaller id on ties
	inf := float32(math.Inf(1))
	r := sumsOf(z, nil, m, inf, inf)
	inv := float32(1 / r.s)
	n := 0
	if haveVecStats {
		n = len(z) &^ 7
		if n > 0 {
			vecExpScale(probs[:n], z[:n], m, inv)
		}
	}
	for i := n; i < len(z); i++ {
		probs[i] = exp32(z[i]-m) * inv
	}
	negEnt := r.e/r.s - math.Log(r.s)
	if math.IsNaN(negEnt) { // finite logits so far apart that z − m overflows
		return finalRow{top1: -1}
	}
	return finalRow{top1: top1, negEnt: negEnt, lse: float64(m) + math.Log(r.s), probs: probs}
}
