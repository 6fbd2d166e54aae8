package inference

import (
	"time"

	"github.com/logitlens/logitlens/weights/hub"
	"github.com/logitlens/logitlens/weights/tokenizer"

	"github.com/logitlens/logitlens/weights"
	"github.com/logitlens/logitlens/weights/tunedlens"
)

// Token is one prompt token with the byte span of the prompt it came from.
type Token = tokenizer.Token

// Progress reports a download while a model loads.
type Progress = hub.Progress

// RowKind says which point of the residual stream a lens row decodes.
type RowKind int

const (
	// Embed is h[0] = wte[ids] + wpe[pos], the embedding output.
	Embed RowKind = iota
	// AttnMid is resid_mid: the residual after a block's attention, before its MLP.
	AttnMid
	// BlockOut is h[i], the residual after block i.
	BlockOut
)

// Row names one lens row. Rows run from the embedding up to the last block,
// whose lens equals the model's real output.
type Row struct {
	Kind  RowKind
	Layer int    // block number 1..n_layer; 0 for Embed
	Name  string // "embed", "3" (output of block 3), "3.attn" (resid_mid of block 3)
}

// Prediction is one token of a cell's top-k.
type Prediction struct {
	ID   int
	Prob float64
}

// Cell holds the lens statistics of one (row, position). All logarithms are
// natural: entropy and KL are in nats.
//
// A cell whose logits are not all finite (NonFinite ≠ Finite) has no
// statistics: Top is empty, the probabilities, entropy and KL are NaN and
// the ranks −1, on every device. A finite cell whose position's final row
// is not finite has a NaN KL, FinalTop1Rank −1 and a NaN FinalTop1Prob.
type Cell struct {
	Top           []Prediction // k most probable ids, descending, ties by smaller id
	Entropy       float64      // H(P_row)
	KLToFinal     float64      // KL(P_final ‖ P_row); 0 on the last row
	FinalTop1Rank int          // ids whose logit is strictly larger than the final top-1's (0-based)
	FinalTop1Prob float64      // P_row(final top-1)
	TargetRank    int          // like FinalTop1Rank, for Request.Target; -1 without a target
	TargetProb    float64      // P_row(target); 0 without a target
	NextRank      int          // like FinalTop1Rank, for the prompt's next token ids[t+1]; -1 at the last position or without Request.NextToken
	NextProb      float64      // P_row(ids[t+1]); 0 where NextRank is -1 for want of a next token
	NonFinite     NonFinite    // where this cell's computation left float32's range, if it did
}

// Request asks for the lens of a token sequence.
type Request struct {
	IDs       []int
	TopK      int  // 1..MaxTopK
	Target    int  // token id whose probability and rank to report; -1 for none
	Sublayers bool // add a resid_mid row after each block's attention
	// NextToken adds, to every cell but the last position's, the
	// probability and rank of the token that actually follows
	// (Cell.NextProb, Cell.NextRank).
	NextToken bool
	// Priority lists positions whose columns come first: the forward pass
	// runs up to them, their cells are computed and passed to the column
	// callback, and then the other columns follow in order. The explorer
	// passes the columns on screen, so that an edit near the start of a
	// long prompt shows them long before the whole lens is done. Positions
	// outside the prompt are ignored; the Lens returned is the same.
	Priority []int
	// Tuned decodes the rows h[0..L−1] through a tuned lens's translators
	// (see LensRequest.Tuned); nil is the logit lens. It cannot be combined
	// with Sublayers.
	Tuned *tunedlens.Lens
}

// MaxTopK bounds Request.TopK.
const MaxTopK = 50

// Column is one position's cells, one per row, streamed as soon as the
// position is finished.
type Column struct {
	Pos   int
	Cells []Cell
}

// Lens is the logit lens of a whole prompt.
type Lens struct {
	IDs       []int
	Rows      []Row
	Cells     [][]Cell        // [row][position]
	FinalTop1 []int           // the final row's top-1 id per position; -1 where that row is not finite
	Target    int             // -1 when none
	Reused    int             // leading positions served from the prefix cache
	Tuned     *tunedlens.Lens // the tuned lens the rows were decoded with; nil: the logit lens
	Elapsed   time.Duration
	// NonFinite is where the residual stream stopped being finite (the
	// first row, then the first position, whose residual holds ±Inf or
	// NaN) or, when every residual is finite, the first cell whose ln_f or
	// unembedding left float32's range; nil when every cell is finite.
	NonFinite *Breakdown
}

// Info describes a loaded model for status lines and exports.
type Info struct {
	ID     string // repo id, local path, or "demo"
	Config weights.Config
	Device string // e.g. "cpu"
	BLAS   string // e.g. "pure-go", "openblas"
	Note   string // why a fallback was taken, if any
}
