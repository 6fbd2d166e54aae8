// Package tune trains tuned lenses (Belrose et al. 2023) for a GPT-2, as
// the tuned-lens package's training script does, with gorgonia's automatic
// differentiation: `logitlens tune` and tools/tunedlens run it.
//
// For each layer l < L a translator (W_l, b_l), zero at the start so that
// training begins at the logit lens, decodes the residual stream h_l as
//
//	logits_l = ln_f(h_l + h_l·W_lᵀ + b_l)·W_Uᵀ
//
// with ln_f and the unembedding W_U frozen; the loss is KL(P_output ‖
// P_lens) at every position, in nats, averaged over the tokens of a step.
// The residual streams come from inference's own forward pass (Model,
// FromInference): no gradient flows through the model, so each layer's
// translator trains on its own small graph (graph.go), one graph shared by
// every layer. The unembedding (unembed.go) and the loss (xent.go) are
// gorgonia ops of our own: their products run on inference/sgemm's packed
// Sgemm, which sgemm.Use also installs as gorgonia.org/tensor's BLAS, so
// the rest of the graph's MatMuls use it too.
//
// Text (Corpus) is cut into windows of n_positions tokens read in an
// order fixed by a seed. The optimisers (optim.go) are the package's: SGD
// with Nesterov momentum and a linear decay, or AMSGrad with a warm-up;
// gradients are clipped to a global norm of 1. A checkpoint in the tuned-
// lens layout (checkpoint.go) lets an interrupted run resume and end with
// the same lens as an uninterrupted one. Evaluate measures a lens against
// the logit lens on held-out windows (docs/TUNED.md).
package tune
