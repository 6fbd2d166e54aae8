// Package inference runs GPT-2 and computes the logit lens: every row of
// the residual stream decoded into next-token probabilities.
//
// A Model is a checkpoint, its tokenizer and a Backend: the weights where
// they run. A Session holds one user's prompt and its lens cells, and
// drives a Device, the seam between what a lens means and what computes it
// (device.go). Two devices implement the seam: the CPU device runs the
// forward pass of forward.go on gorgonia.org/tensor's MatMul (through the
// Sgemm of package sgemm) and the plain-loop ops of ops.go, and the CUDA
// device hands whole steps to package cuda, which keeps the weights, the KV
// cache and the residual streams on the GPU. Load picks the device for a
// --device value; on a GPU it first compares the GPU's lens of a few tokens
// with the CPU's (SelfCheck).
//
// Conventions, in the words of the reference (shared/reference/README.md):
//
//   - Rows run h[0..L]: h[0] = wte[ids] + wpe[pos] is the embedding output,
//     h[i] the raw residual stream after block i, before ln_f. With sublayers
//     on, resid_mid (the residual after block i's attention, before its MLP)
//     sits between h[i-1] and h[i].
//   - logits[l] = ln_f(h[l]) @ W_U, with ln_f applied exactly once for every
//     row, so row L equals the model's real output logits. W_U is wteᵀ, or a
//     stored untied lm_head.
//   - P_l = softmax(logits[l]) over the whole vocabulary. Entropy H(P_l) and
//     KL(P_final ‖ P_l) are in nats (natural logarithms).
//   - The rank of a token is the number of ids whose logit is strictly larger
//     (0-based). Top-k is descending, ties broken by the smaller id.
//   - Position t predicts token t+1: next_prob = P_l(ids[t+1]) and next_rank
//     its rank, none at the last position.
//   - A cell whose logits are not all finite has no statistics; it says
//     whether its residual overflowed (Inf), went NaN, or stayed finite while
//     ln_f or the unembedding overflowed (Cell.NonFinite, Lens.NonFinite).
//
// Shape letters used in comments: T positions computed in this step, P
// positions so far (the KV cache), C = n_embd, H = n_head, D = C/H, V =
// vocabulary, L = n_layer, R lens rows.
package inference
