// Package weights turns a model name or folder into validated float32
// weights, a GPT-2 config and a tokenizer.
//
// It owns everything on disk: Hugging Face hub resolution and download into
// the cache layout that Python's huggingface_hub uses, safetensors (mmap,
// zero-copy for aligned F32), config.json and the tokenizer files. It imports
// nothing else of logitlens and never prints to stdout.
package weights

// Config holds the GPT2Config fields the forward pass needs.
type Config struct {
	NLayer             int     `json:"n_layer"`
	NEmbd              int     `json:"n_embd"`
	NHead              int     `json:"n_head"`
	NPositions         int     `json:"n_positions"`
	VocabSize          int     `json:"vocab_size"`
	LayerNormEpsilon   float64 `json:"layer_norm_epsilon"`
	ActivationFunction string  `json:"activation_function"`
}

// Tensor is one float32 tensor of a checkpoint, row-major. Data may alias a
// read-only mmap of the file: never write to it.
type Tensor struct {
	Name  string // canonical name, without "transformer."
	Shape []int
	Data  []float32
}
