//go:build !linux

package sgemm

// pageDropper: pages are only given back on Linux.
func pageDropper(data []float32, cols int) func(j0, j1 int) { return nil }

// bigFloats allocates n float32s (on the Go heap here).
func bigFloats(n int) ([]float32, func()) { return make([]float32, n), nil }
