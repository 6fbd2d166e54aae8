// Package display turns values into the short strings people read in the
// explorer, the exports and the command line, so that every view says the
// same thing the same way: a token's bytes in display form (Token), a
// probability (Prob) and a byte count (Bytes). It imports nothing of ours,
// so every package may use it.
package display
