package tune

import (
	"context"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/weights"
)

// FromInference adapts a loaded model to Model: the residual streams come
// from inference's forward pass on the CPU, ln_f and W_U from its
// checkpoint.
func FromInference(m *inference.Model) Model { return inferenceModel{m} }

type inferenceModel struct{ m *inference.Model }

func (a inferenceModel) Config() weights.Config { return a.m.Config() }

func (a inferenceModel) Residuals(ctx context.Context, ids []int) ([][]float32, error) {
	return a.m.Residuals(ctx, ids)
}

func (a inferenceModel) FinalNorm() (gamma, beta []float32) {
	ck := a.m.Checkpoint()
	return ck.Tensor("ln_f.weight").Data, ck.Tensor("ln_f.bias").Data
}

func (a inferenceModel) Unembedding() []float32 { return a.m.Checkpoint().LMHead().Data }

// encoder is a model's tokenizer as a corpus Encoder.
type encoder struct{ m *inference.Model }

// TokenizerOf returns m's tokenizer as a corpus Encoder.
func TokenizerOf(m *inference.Model) Encoder { return encoder{m} }

func (e encoder) EncodeIDs(text string) []int { return e.m.Tokenizer().EncodeIDs(text) }
func (e encoder) EOT() int                    { return e.m.EOT() }
