package cuda

import (
	"fmt"
	"math"
)

// DevicePtr is an address in device memory (CUdeviceptr).
type DevicePtr uint64

// Dim3 is a grid or block size.
type Dim3 struct{ X, Y, Z int }

// Arg is one kernel parameter: a device pointer, an int32 or a float32, as
// the kernel's C signature declares it.
type Arg struct {
	kind argKind
	bits uint64
}

type argKind uint8

const (
	argPtr argKind = iota
	argInt
	argFloat
)

// PtrArg passes a device pointer.
func PtrArg(p DevicePtr) Arg { return Arg{argPtr, uint64(p)} }

// IntArg passes a C int.
func IntArg(v int) Arg {
	if v < math.MinInt32 || v > math.MaxInt32 {
		panic(fmt.Sprintf("cuda: kernel argument %d overflows int32", v)) // our shapes: a programmer error
	}
	return Arg{argInt, uint64(uint32(int32(v)))}
}

// FloatArg passes a C float.
func FloatArg(v float32) Arg { return Arg{argFloat, uint64(math.Float32bits(v))} }

// Ptr returns the argument as a device pointer.
func (a Arg) Ptr() DevicePtr { return DevicePtr(a.bits) }

// Int returns the argument as an int.
func (a Arg) Int() int { return int(int32(uint32(a.bits))) }

// Float returns the argument as a float32.
func (a Arg) Float() float32 { return math.Float32frombits(uint32(a.bits)) }

// Function is a kernel handle returned by the driver (CUfunction).
type Function uintptr

// Module is a loaded PTX module (CUmodule).
type Module uintptr

// Event is a CUDA event (CUevent), used for timing.
type Event uintptr

// driverAPI is the part of the CUDA driver API the engine calls, on the
// current context and the legacy default stream (stream 0), so that every
// call is ordered after the previous one. libDriver implements it with
// dlopen; the tests implement it with an emulated device.
type driverAPI interface {
	// LoadModule JIT-compiles PTX text (cuModuleLoadDataEx).
	LoadModule(ptx string) (Module, error)
	// Function looks a kernel up by its .entry name (cuModuleGetFunction).
	Function(m Module, name string) (Function, error)
	// Alloc allocates bytes of device memory (cuMemAlloc).
	Alloc(bytes int) (DevicePtr, error)
	// Free releases an allocation (cuMemFree).
	Free(p DevicePtr) error
	// HtoD copies host bytes to the device (cuMemcpyHtoD).
	HtoD(dst DevicePtr, src []byte) error
	// DtoH copies device bytes to the host (cuMemcpyDtoH).
	DtoH(dst []byte, src DevicePtr) error
	// DtoD copies bytes within the device, ordered on stream 0 (cuMemcpyDtoDAsync).
	DtoD(dst, src DevicePtr, bytes int) error
	// Launch queues a kernel on stream 0 (cuLaunchKernel).
	Launch(f Function, grid, block Dim3, sharedBytes int, args []Arg) error
	// Synchronize waits for stream 0 (cuStreamSynchronize).
	Synchronize() error
	// NewEvent creates a timing event (cuEventCreate).
	NewEvent() (Event, error)
	// Record records an event on stream 0 (cuEventRecord).
	Record(e Event) error
	// Elapsed waits for end and returns the milliseconds between two recorded events (cuEventElapsedTime).
	Elapsed(start, end Event) (float32, error)
	// DestroyEvent releases an event (cuEventDestroy).
	DestroyEvent(e Event) error
	// MemInfo returns the free and total device memory in bytes (cuMemGetInfo).
	MemInfo() (free, total int64, err error)
}

// GemmOp says whether a cuBLAS operand is used as stored or transposed.
type GemmOp int

// cuBLAS operations (cublasOperation_t).
const (
	OpN GemmOp = 0 // CUBLAS_OP_N
	OpT GemmOp = 1 // CUBLAS_OP_T
)

// SgemmCall is one column-major cublasSgemm: C[m,n] = alpha·op(A)[m,k]·op(B)[k,n] + beta·C,
// every matrix column-major with its leading dimension.
type SgemmCall struct {
	TransA, TransB GemmOp
	M, N, K        int
	Alpha          float32
	A              DevicePtr
	LDA            int
	B              DevicePtr
	LDB            int
	Beta           float32
	C              DevicePtr
	LDC            int
}

// blasAPI is the part of cuBLAS the engine calls.
type blasAPI interface {
	// Sgemm runs one column-major single-precision GEMM on stream 0.
	Sgemm(c SgemmCall) error
	// SetTF32 allows (true) or forbids TF32 tensor-core maths (cublasSetMathMode).
	SetTF32(on bool) error
	// Close destroys the handle.
	Close() error
}
