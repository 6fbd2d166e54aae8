//go:build !unix

package weights

import (
	"io"
	"os"
)

// mapFile reads the first size bytes of f into memory: no mmap here, so
// tensors cost heap. Large allocations are at least 8-byte aligned, so F32
// tensors are still views rather than copies.
func mapFile(f *os.File, size int) ([]byte, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	return data, nil
}

// unmapFile undoes mapFile: the garbage collector frees the bytes.
func unmapFile([]byte) error { return nil }
