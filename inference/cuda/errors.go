package cuda

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnavailable is wrapped by every error of Open that means CUDA cannot be
// used on this machine (no driver, no device, no cuBLAS, an unsupported
// platform), as opposed to a failure while running.
var ErrUnavailable = errors.New("CUDA is not available")

// ErrNoDevice says the driver loaded and initialised but found no GPU.
var ErrNoDevice = errors.New("cuda: the driver found no CUDA device")

// ErrNoDriver says there is no NVIDIA driver to load: no libcuda.so.1, or
// a platform without one.
var ErrNoDriver = errors.New("cuda: no NVIDIA driver")

// NoGPU reports whether err, from Open, means this machine has no NVIDIA
// GPU to use (no driver, or a driver that sees no device), as opposed to a
// GPU that cannot be used (no cuBLAS, a failing driver): the first is the
// normal state of most machines and deserves no message.
func NoGPU(err error) bool {
	var de *DriverError
	return errors.Is(err, ErrNoDriver) || errors.Is(err, ErrNoDevice) ||
		(errors.As(err, &de) && de.Call == "cuInit" && de.Code == 100) // CUDA_ERROR_NO_DEVICE
}

// unavailable marks err as one of Open's "cannot use CUDA here" errors.
type unavailable struct{ err error }

func (u unavailable) Error() string   { return u.err.Error() }
func (u unavailable) Unwrap() []error { return []error{ErrUnavailable, u.err} }

// LibraryError says a shared library could not be loaded, listing every
// candidate in the order it was tried and why each failed.
type LibraryError struct {
	Lib   string   // what was looked for, e.g. "libcuda.so.1 (the NVIDIA driver)"
	Tried []string // candidates, in order
	Why   []string // per candidate: the loader's message, or "absent"
	Hint  string   // what to set, e.g. "set LOGITLENS_CUBLAS to the library or its directory"
	Err   error    // a sentinel the failure stands for (ErrNoDriver), or nil
}

// Unwrap returns the sentinel, if any.
func (e *LibraryError) Unwrap() error { return e.Err }

func (e *LibraryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cuda: %s not found; tried ", e.Lib)
	var absent []string
	n := 0
	for i, c := range e.Tried {
		if e.Why[i] == "absent" {
			absent = append(absent, c)
			continue
		}
		if n > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", c, e.Why[i])
		n++
	}
	if len(absent) > 0 {
		if n > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (absent)", strings.Join(absent, ", "))
	}
	if e.Hint != "" {
		b.WriteString("; " + e.Hint)
	}
	return b.String()
}

// DriverError is a failed CUDA driver call: its CUresult and the driver's
// name and description of it.
type DriverError struct {
	Call string // e.g. "cuInit"
	Code int    // the CUresult
	Name string // e.g. "CUDA_ERROR_NO_DEVICE"
	Text string // e.g. "no CUDA-capable device is detected"
}

func (e *DriverError) Error() string {
	s := fmt.Sprintf("cuda: %s failed with code %d (%s", e.Call, e.Code, e.Name)
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s + ")"
}

// BLASError is a failed cuBLAS call and its cublasStatus_t.
type BLASError struct {
	Call   string
	Status int
}

func (e *BLASError) Error() string {
	return fmt.Sprintf("cuda: %s failed with status %d (%s)", e.Call, e.Status, blasStatusName(e.Status))
}

// driverErrorNames names the CUresults Open and the engine can meet, for
// when the driver's cuGetErrorName is unavailable.
var driverErrorNames = map[int]string{
	1:   "CUDA_ERROR_INVALID_VALUE",
	2:   "CUDA_ERROR_OUT_OF_MEMORY",
	3:   "CUDA_ERROR_NOT_INITIALIZED",
	4:   "CUDA_ERROR_DEINITIALIZED",
	34:  "CUDA_ERROR_STUB_LIBRARY",
	46:  "CUDA_ERROR_DEVICE_UNAVAILABLE",
	100: "CUDA_ERROR_NO_DEVICE",
	101: "CUDA_ERROR_INVALID_DEVICE",
	200: "CUDA_ERROR_INVALID_IMAGE",
	201: "CUDA_ERROR_INVALID_CONTEXT",
	209: "CUDA_ERROR_NO_BINARY_FOR_GPU",
	218: "CUDA_ERROR_INVALID_PTX",
	221: "CUDA_ERROR_JIT_COMPILER_NOT_FOUND",
	222: "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
	500: "CUDA_ERROR_NOT_FOUND",
	700: "CUDA_ERROR_ILLEGAL_ADDRESS",
	701: "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
	702: "CUDA_ERROR_LAUNCH_TIMEOUT",
	719: "CUDA_ERROR_LAUNCH_FAILED",
	803: "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
	804: "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
	999: "CUDA_ERROR_UNKNOWN",
}

// blasStatusName names a cublasStatus_t.
func blasStatusName(s int) string {
	switch s {
	case 0:
		return "CUBLAS_STATUS_SUCCESS"
	case 1:
		return "CUBLAS_STATUS_NOT_INITIALIZED"
	case 3:
		return "CUBLAS_STATUS_ALLOC_FAILED"
	case 7:
		return "CUBLAS_STATUS_INVALID_VALUE"
	case 8:
		return "CUBLAS_STATUS_ARCH_MISMATCH"
	case 11:
		return "CUBLAS_STATUS_MAPPING_ERROR"
	case 13:
		return "CUBLAS_STATUS_EXECUTION_FAILED"
	case 14:
		return "CUBLAS_STATUS_INTERNAL_ERROR"
	case 15:
		return "CUBLAS_STATUS_NOT_SUPPORTED"
	case 16:
		return "CUBLAS_STATUS_LICENSE_ERROR"
	}
	return "unknown cuBLAS status"
}
