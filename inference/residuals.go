package inference

import (
	"context"
	"slices"
)

// Residuals runs the model on ids from position 0 on the CPU and returns
// copies of the block rows h[0..L] (the embedding, then each block's
// output), each [T,C] row-major: what training a tuned lens decodes
// (inference/tune). A model placed on a GPU is run on the host here too,
// from the same checkpoint, since training runs there.
func (m *Model) Residuals(ctx context.Context, ids []int) ([][]float32, error) {
	if err := m.Validate(Request{IDs: ids, TopK: 1, Target: -1}); err != nil {
		return nil, err
	}
	b, err := m.hostBackend()
	if err != nil {
		return nil, err
	}
	d := b.NewDevice().(*cpuDevice)
	defer d.Close()
	if err := d.Forward(ctx, ids, 0); err != nil {
		return nil, err
	}
	C, L := m.cfg.NEmbd, m.cfg.NLayer
	out := make([][]float32, L+1)
	for i := range out {
		out[i] = slices.Clone(d.streams[2*i][:len(ids)*C])
	}
	return out, nil
}

// hostBackend is the model's CPU backend: its own, or one made once from
// the checkpoint when the model runs on a GPU.
func (m *Model) hostBackend() (*cpuBackend, error) {
	if b, ok := m.backend.(*cpuBackend); ok {
		return b, nil
	}
	m.hostOnce.Do(func() {
		var b Backend
		b, m.hostErr = NewCPUBackend(m.ckpt)
		if m.hostErr == nil {
			m.host = b.(*cpuBackend)
		}
	})
	return m.host, m.hostErr
}
