package tokenizer

import "unicode/utf8"

// Reencode returns Encode(text) given prev = Encode(prevText), tokenizing
// again only from shortly before the first byte where the texts differ, so
// that typing at the end of a long prompt costs the end, not the whole text.
//
// It is exact, not a heuristic: the pre-tokenizer decides where a piece
// ends by reading the piece and the character after it, and an added token
// (<|endoftext|>) that an edit creates or breaks starts at most its own
// length before the edit. So every piece that ends at least the longest
// added token plus one character (utf8.UTFMax bytes) before the first
// difference is the same piece in both texts, with the same tokens, and
// encoding resumes at the end of the last such piece. If prev does not tile
// prevText up to that point (it was not Encode(prevText)), Reencode encodes
// text whole.
func (t *Tokenizer) Reencode(prevText string, prev []Token, text string) []Token {
	p := 0
	for p < len(prevText) && p < len(text) && prevText[p] == text[p] {
		p++
	}
	margin := utf8.UTFMax
	for _, a := range t.added {
		margin = max(margin, len(a.content)+utf8.UTFMax)
	}
	b := t.resumePoint(text, p-margin)
	if b <= 0 {
		return t.Encode(text)
	}
	keep := 0
	for keep < len(prev) && prev[keep].End <= b {
		if prev[keep].Start != 0 && (keep == 0 || prev[keep].Start != prev[keep-1].End) {
			return t.Encode(text)
		}
		keep++
	}
	if keep == 0 || prev[keep-1].End != b {
		return t.Encode(text)
	}
	rest := t.Encode(text[b:])
	out := make([]Token, keep, keep+len(rest))
	copy(out, prev[:keep])
	for _, tk := range rest {
		out = append(out, Token{tk.ID, tk.Start + b, tk.End + b})
	}
	return out
}

// resumePoint returns the largest offset at most limit where a piece or an
// added token of text ends (0 if none does): a point from which encoding
// can start afresh and give what encoding the whole text gives.
func (t *Tokenizer) resumePoint(text string, limit int) int {
	if limit <= 0 {
		return 0
	}
	next := make([]int, len(t.added))
	for k := range next {
		next[k] = -1
	}
	best := 0
	for pos := 0; pos <= limit; {
		start, end, _ := t.findAdded(text, pos, next)
		segEnd := len(text)
		if start >= 0 {
			segEnd = start
		}
		seg := text[pos:segEnd]
		for i := 0; i < len(seg); {
			j := nextPiece(seg, i)
			if pos+j > limit {
				return best
			}
			best, i = pos+j, j
		}
		if start < 0 || end > limit {
			return best
		}
		best, pos = end, end
	}
	return best
}
