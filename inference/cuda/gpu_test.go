package cuda_test

import (
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/cuda"
	"github.com/logitlens/logitlens/inference/devicetest"
)

// The CUDA device runs the conformance suite on the machine's GPU, when it
// has one. The test binary carries what it needs (goldens embedded,
// checkpoints generated), so on a GPU box without Go:
//
//	go test -c -o cuda.test ./inference/cuda      (on a development machine)
//	./cuda.test -test.run GPU -test.v             (on the GPU box)
func TestGPUConformance(t *testing.T) {
	dev, err := cuda.Open(cuda.OptionsFromEnv())
	if err != nil {
		t.Skipf("no usable GPU here, so the CUDA device is not checked on hardware: %v", err)
	}
	defer dev.Close()
	t.Log("GPU:", dev)
	devicetest.Run(t, devicetest.Options{
		Open: func(t testing.TB, dir string) *inference.Model {
			m, err := inference.OpenDir(dir, "test", inference.CUDABackend(dev))
			if err != nil {
				t.Fatal(err)
			}
			return m
		},
	})
}
