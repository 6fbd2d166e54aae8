// Package inference runs GPT-2 on gorgonia.org/tensor and computes the logit
// lens: every row of the residual stream decoded into next-token
// probabilities.
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
//   - Position t predicts token t+1.
//
// Shape letters used in comments: T positions computed in this step, P
// positions so far (the KV cache), C = n_embd, H = n_head, D = C/H, V =
// vocabulary, L = n_layer, R lens rows.
package inference
