//go:build unix

package weights

import (
	"os"
	"syscall"
)

// openNoBlock makes open(2) return at once on a FIFO with no writer.
const openNoBlock = syscall.O_NONBLOCK

// clearNoBlock puts the descriptor back into blocking mode once it is
// known to be a regular file.
func clearNoBlock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}
