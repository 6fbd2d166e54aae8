//go:build unix

package weights

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps the first size bytes of f read-only. Writing to the result
// faults.
func mapFile(f *os.File, size int) ([]byte, error) {
	data, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	return data, nil
}

// unmapFile undoes mapFile.
func unmapFile(data []byte) error {
	if err := syscall.Munmap(data); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	return nil
}
