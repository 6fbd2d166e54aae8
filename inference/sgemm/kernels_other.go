//go:build !amd64 || purego

package sgemm

// asmKernels: no assembly kernels on this platform.
func asmKernels() []*gemmKernels { return nil }
