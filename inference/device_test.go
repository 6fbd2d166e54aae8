package inference_test

import (
	"strings"
	"testing"

	"github.com/logitlens/logitlens/inference"
	"github.com/logitlens/logitlens/inference/devicetest"
)

// The CPU device runs the conformance suite.
func TestCPUDeviceConformance(t *testing.T) {
	devicetest.Run(t, devicetest.Options{
		Open: func(t testing.TB, dir string) *inference.Model {
			m, err := inference.OpenDir(dir, "test", inference.NewCPUBackend)
			if err != nil {
				t.Fatal(err)
			}
			return m
		},
		OwnTol: ownTol(),
	})
}

// ownTol: our Sgemm sums every row of a product in one order whatever the
// batch, so an appended token equals a full recompute bit for bit;
// OpenBLAS picks kernels by shape (the suite's default then).
func ownTol() float64 {
	if strings.HasPrefix(inference.BLASName(), "openblas") {
		return 0
	}
	return 1e-6
}
