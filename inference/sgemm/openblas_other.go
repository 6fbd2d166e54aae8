//go:build !((linux || darwin || freebsd) && !android)

package sgemm

import "errors"

// loadOpenBLAS: this platform has no dlopen without cgo.
func loadOpenBLAS(path string, threads int) (string, sgemmFunc, error) {
	return "", nil, errors.New("sgemm: OpenBLAS is not loaded on this platform")
}
