//go:build !amd64 || purego

package inference

// asmKernels: no assembly kernels on this platform.
func asmKernels() []*gemmKernels { return nil }
