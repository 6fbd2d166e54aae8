//go:build !unix

package weights

import "os"

// openNoBlock is 0 where there are no FIFOs to block on.
const openNoBlock = 0

// clearNoBlock has nothing to clear.
func clearNoBlock(*os.File) error { return nil }
