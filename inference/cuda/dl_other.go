//go:build !(linux && (amd64 || arm64))

package cuda

import (
	"fmt"
	"runtime"
)

// platformOpen reports that this build has no CUDA loader.
func platformOpen(Options) (*Device, error) {
	return nil, fmt.Errorf("%w: CUDA is supported on linux/amd64 and linux/arm64 only, not %s/%s", ErrNoDriver, runtime.GOOS, runtime.GOARCH)
}
