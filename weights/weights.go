// Package weights opens a GPT-2 checkpoint folder in Hugging Face layout
// into validated float32 weights and a GPT-2 config: config.json and
// safetensors (mmap, zero-copy for aligned F32; F16/BF16 converted; sharded
// indexes). OpenFile and ReadFile are how every file is read here and in
// the sub-packages: regular files only, never blocking on a FIFO, with a
// size cap per kind (file.go). Its sub-packages own the rest of what is on
// disk: hub resolves and downloads repo ids into the Hugging Face cache,
// tokenizer reads GPT-2's byte-level BPE, builtin embeds the demo model. Of
// logitlens it imports only display (to quote untrusted names in errors),
// and it never prints to stdout.
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
