package inference

import (
	"context"
)

// Residuals runs the model on ids from position 0 and returns copies of
// the block rows h[0..L] (the embedding, then each block's output), each
// [T,C] row-major: what training a tuned lens decodes (inference/tune).
// It runs on the model's device and copies the rows back.
func (m *Model) Residuals(ctx context.Context, ids []int) ([][]float32, error) {
	if err := m.Validate(Request{IDs: ids, TopK: 1, Target: -1}); err != nil {
		return nil, err
	}
	d := m.backend.NewDevice()
	defer d.Close()
	if err := d.Forward(ctx, ids, 0); err != nil {
		return nil, err
	}
	out := make([][]float32, m.cfg.NLayer+1)
	for i := range out {
		row := Row{Kind: BlockOut, Layer: i}
		if i == 0 {
			row = Row{Kind: Embed}
		}
		h, err := d.Residual(row, 0, len(ids))
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}
