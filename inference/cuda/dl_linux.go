//go:build linux && (amd64 || arm64)

package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// dlopenFirst opens the first candidate that loads, recording why each
// earlier one failed. Absolute paths that do not exist are not dlopen'ed.
func dlopenFirst(lib, hint string, candidates []string, mode int) (uintptr, string, error) {
	e := &LibraryError{Lib: lib, Hint: hint}
	for _, c := range candidates {
		if filepath.IsAbs(c) {
			if _, err := os.Stat(c); err != nil {
				e.Tried, e.Why = append(e.Tried, c), append(e.Why, "absent")
				continue
			}
		}
		h, err := purego.Dlopen(c, mode)
		if err == nil {
			return h, c, nil
		}
		e.Tried, e.Why = append(e.Tried, c), append(e.Why, err.Error())
	}
	return 0, "", e
}

// bind resolves each symbol (the first name of each alternative list that
// the library exports) into its function pointer.
func bind(h uintptr, libPath string, fns map[*any][]string) error {
	for fptr, names := range fns {
		var sym uintptr
		for _, n := range names {
			if s, err := purego.Dlsym(h, n); err == nil {
				sym = s
				break
			}
		}
		if sym == 0 {
			return fmt.Errorf("cuda: %s lacks %s (driver or library too old?)", libPath, names[0])
		}
		purego.RegisterFunc(*fptr, sym)
	}
	return nil
}

// libDriver is driverAPI over the real libcuda.so.1, on the legacy default
// stream. Its callers hold the device's lock with the OS thread locked and
// the context current (Device.do).
type libDriver struct {
	path string

	cuInit                    func(flags uint32) int32
	cuDriverGetVersion        func(v *int32) int32
	cuDeviceGetCount          func(n *int32) int32
	cuDeviceGet               func(dev *int32, ordinal int32) int32
	cuDeviceGetName           func(name *byte, n int32, dev int32) int32
	cuDeviceTotalMem          func(bytes *uint64, dev int32) int32
	cuDeviceGetAttribute      func(v *int32, attr int32, dev int32) int32
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) int32
	cuDevicePrimaryCtxRelease func(dev int32) int32
	cuCtxSetCurrent           func(ctx uintptr) int32
	cuModuleLoadDataEx        func(mod *uintptr, image *byte, n uint32, opts *int32, vals *uintptr) int32
	cuModuleGetFunction       func(f *uintptr, mod uintptr, name *byte) int32
	cuMemAlloc                func(p *uint64, bytes uintptr) int32
	cuMemFree                 func(p uint64) int32
	cuMemcpyHtoD              func(dst uint64, src unsafe.Pointer, bytes uintptr) int32
	cuMemcpyDtoH              func(dst unsafe.Pointer, src uint64, bytes uintptr) int32
	cuMemcpyDtoDAsync         func(dst, src uint64, bytes uintptr, stream uintptr) int32
	cuMemGetInfo              func(free, total *uint64) int32
	cuLaunchKernel            func(f uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params *unsafe.Pointer, extra uintptr) int32
	cuStreamSynchronize       func(s uintptr) int32
	cuEventCreate             func(e *uintptr, flags uint32) int32
	cuEventRecord             func(e, s uintptr) int32
	cuEventSynchronize        func(e uintptr) int32
	cuEventElapsedTime        func(ms *float32, start, end uintptr) int32
	cuEventDestroy            func(e uintptr) int32
	cuGetErrorName            func(code int32, s *uintptr) int32
	cuGetErrorString          func(code int32, s *uintptr) int32

	ctx uintptr
	dev int32
}

// CUDA driver constants.
const (
	attrCCMajor         = 75 // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
	attrCCMinor         = 76 // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
	jitErrorLogBuffer   = 5  // CU_JIT_ERROR_LOG_BUFFER
	jitErrorLogBufBytes = 6  // CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES
)

// openDriver loads libcuda.so.1 and binds the calls the engine uses. The
// _v2 entry points are the ABI every driver since CUDA 4 exports (CUDA 13
// keeps them); cuEventElapsedTime_v2 is preferred where present.
func openDriver(explicit string) (*libDriver, error) {
	h, path, err := dlopenFirst("libcuda.so.1 (the NVIDIA driver)", "is the NVIDIA driver installed? set "+EnvDriver+" to its path",
		driverCandidates(explicit), purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		if le, ok := err.(*LibraryError); ok && explicit == "" {
			le.Err = ErrNoDriver // an explicit path that fails is a mistake to report, not a machine without a GPU
		}
		return nil, err
	}
	d := &libDriver{path: path}
	fns := map[*any][]string{}
	add := func(f any, names ...string) { fns[&f] = names }
	add(&d.cuInit, "cuInit")
	add(&d.cuDriverGetVersion, "cuDriverGetVersion")
	add(&d.cuDeviceGetCount, "cuDeviceGetCount")
	add(&d.cuDeviceGet, "cuDeviceGet")
	add(&d.cuDeviceGetName, "cuDeviceGetName")
	add(&d.cuDeviceTotalMem, "cuDeviceTotalMem_v2")
	add(&d.cuDeviceGetAttribute, "cuDeviceGetAttribute")
	add(&d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")
	add(&d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease")
	add(&d.cuCtxSetCurrent, "cuCtxSetCurrent")
	add(&d.cuModuleLoadDataEx, "cuModuleLoadDataEx")
	add(&d.cuModuleGetFunction, "cuModuleGetFunction")
	add(&d.cuMemAlloc, "cuMemAlloc_v2")
	add(&d.cuMemFree, "cuMemFree_v2")
	add(&d.cuMemcpyHtoD, "cuMemcpyHtoD_v2")
	add(&d.cuMemcpyDtoH, "cuMemcpyDtoH_v2")
	add(&d.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2")
	add(&d.cuMemGetInfo, "cuMemGetInfo_v2")
	add(&d.cuLaunchKernel, "cuLaunchKernel")
	add(&d.cuStreamSynchronize, "cuStreamSynchronize")
	add(&d.cuEventCreate, "cuEventCreate")
	add(&d.cuEventRecord, "cuEventRecord")
	add(&d.cuEventSynchronize, "cuEventSynchronize")
	add(&d.cuEventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime")
	add(&d.cuEventDestroy, "cuEventDestroy_v2", "cuEventDestroy")
	add(&d.cuGetErrorName, "cuGetErrorName")
	add(&d.cuGetErrorString, "cuGetErrorString")
	if err := bind(h, path, fns); err != nil {
		return nil, err
	}
	return d, nil
}

// cString reads a NUL-terminated C string at p (owned by the driver, or a
// buffer the caller keeps alive).
func cString(p uintptr) string {
	if p == 0 {
		return ""
	}
	base := *(*unsafe.Pointer)(unsafe.Pointer(&p)) // uintptr -> pointer without vet's unsafeptr complaint
	var b []byte
	for i := 0; i < 4096; i++ {
		c := *(*byte)(unsafe.Add(base, i))
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// check turns a CUresult into nil or a *DriverError named by the driver.
func (d *libDriver) check(call string, r int32) error {
	if r == 0 {
		return nil
	}
	e := &DriverError{Call: call, Code: int(r), Name: driverErrorNames[int(r)]}
	var p uintptr
	if d.cuGetErrorName(r, &p) == 0 {
		if s := cString(p); s != "" {
			e.Name = s
		}
	}
	if d.cuGetErrorString(r, &p) == 0 {
		e.Text = cString(p)
	}
	if e.Name == "" {
		e.Name = "unknown CUresult"
	}
	return e
}

// deviceInfo is what Open reports about the chosen GPU.
type deviceInfo struct {
	name          string
	major, minor  int
	totalMem      int64
	driverVersion int
}

// init runs cuInit, picks device ordinal, retains its primary context and
// makes it current on this thread.
func (d *libDriver) init(ordinal int) (deviceInfo, error) {
	var info deviceInfo
	if err := d.check("cuInit", d.cuInit(0)); err != nil {
		return info, err
	}
	var v, n int32
	if err := d.check("cuDriverGetVersion", d.cuDriverGetVersion(&v)); err != nil {
		return info, err
	}
	info.driverVersion = int(v)
	if err := d.check("cuDeviceGetCount", d.cuDeviceGetCount(&n)); err != nil {
		return info, err
	}
	if n == 0 {
		return info, ErrNoDevice
	}
	if ordinal < 0 || ordinal >= int(n) {
		return info, fmt.Errorf("cuda: device %d requested, but the driver sees %d", ordinal, n)
	}
	if err := d.check("cuDeviceGet", d.cuDeviceGet(&d.dev, int32(ordinal))); err != nil {
		return info, err
	}
	name := make([]byte, 256)
	if err := d.check("cuDeviceGetName", d.cuDeviceGetName(&name[0], int32(len(name)), d.dev)); err != nil {
		return info, err
	}
	info.name = bytesString(name)
	var mem uint64
	var major, minor int32
	if err := d.check("cuDeviceTotalMem", d.cuDeviceTotalMem(&mem, d.dev)); err != nil {
		return info, err
	}
	if err := d.check("cuDeviceGetAttribute", d.cuDeviceGetAttribute(&major, attrCCMajor, d.dev)); err != nil {
		return info, err
	}
	if err := d.check("cuDeviceGetAttribute", d.cuDeviceGetAttribute(&minor, attrCCMinor, d.dev)); err != nil {
		return info, err
	}
	info.totalMem, info.major, info.minor = int64(mem), int(major), int(minor)
	if err := d.check("cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain(&d.ctx, d.dev)); err != nil {
		return info, err
	}
	return info, d.makeCurrent()
}

// makeCurrent binds the primary context to the calling OS thread.
func (d *libDriver) makeCurrent() error { return d.check("cuCtxSetCurrent", d.cuCtxSetCurrent(d.ctx)) }

// release gives the primary context back.
func (d *libDriver) release() error {
	return d.check("cuDevicePrimaryCtxRelease", d.cuDevicePrimaryCtxRelease(d.dev))
}

func (d *libDriver) LoadModule(ptx string) (Module, error) {
	img := append([]byte(ptx), 0)
	log := make([]byte, 8192)
	opts := []int32{jitErrorLogBuffer, jitErrorLogBufBytes}
	vals := []uintptr{uintptr(unsafe.Pointer(&log[0])), uintptr(len(log))}
	var m uintptr
	r := d.cuModuleLoadDataEx(&m, &img[0], uint32(len(opts)), &opts[0], &vals[0])
	runtime.KeepAlive(log)
	runtime.KeepAlive(img)
	if err := d.check("cuModuleLoadDataEx", r); err != nil {
		if s := bytesString(log); s != "" {
			return 0, fmt.Errorf("%w: JIT log: %s", err, s)
		}
		return 0, err
	}
	return Module(m), nil
}

func (d *libDriver) Function(m Module, name string) (Function, error) {
	n := append([]byte(name), 0)
	var f uintptr
	if err := d.check("cuModuleGetFunction("+name+")", d.cuModuleGetFunction(&f, uintptr(m), &n[0])); err != nil {
		return 0, err
	}
	return Function(f), nil
}

func (d *libDriver) Alloc(bytes int) (DevicePtr, error) {
	var p uint64
	err := d.check("cuMemAlloc", d.cuMemAlloc(&p, uintptr(bytes)))
	return DevicePtr(p), err
}

func (d *libDriver) Free(p DevicePtr) error { return d.check("cuMemFree", d.cuMemFree(uint64(p))) }

func (d *libDriver) HtoD(dst DevicePtr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	r := d.cuMemcpyHtoD(uint64(dst), unsafe.Pointer(&src[0]), uintptr(len(src)))
	runtime.KeepAlive(src)
	return d.check("cuMemcpyHtoD", r)
}

func (d *libDriver) DtoH(dst []byte, src DevicePtr) error {
	if len(dst) == 0 {
		return nil
	}
	r := d.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), uint64(src), uintptr(len(dst)))
	runtime.KeepAlive(dst)
	return d.check("cuMemcpyDtoH", r)
}

func (d *libDriver) DtoD(dst, src DevicePtr, bytes int) error {
	if bytes == 0 {
		return nil
	}
	return d.check("cuMemcpyDtoDAsync", d.cuMemcpyDtoDAsync(uint64(dst), uint64(src), uintptr(bytes), 0))
}

func (d *libDriver) Launch(f Function, grid, block Dim3, sharedBytes int, args []Arg) error {
	vals := make([]uint64, len(args)) // each parameter in its own 8-byte slot, little-endian
	ptrs := make([]unsafe.Pointer, len(args)+1)
	for i, a := range args {
		vals[i] = a.bits
		ptrs[i] = unsafe.Pointer(&vals[i])
	}
	r := d.cuLaunchKernel(uintptr(f), uint32(grid.X), uint32(grid.Y), uint32(grid.Z),
		uint32(block.X), uint32(block.Y), uint32(block.Z), uint32(sharedBytes), 0, &ptrs[0], 0)
	runtime.KeepAlive(vals)
	runtime.KeepAlive(ptrs)
	return d.check("cuLaunchKernel", r)
}

func (d *libDriver) Synchronize() error {
	return d.check("cuStreamSynchronize", d.cuStreamSynchronize(0))
}

func (d *libDriver) NewEvent() (Event, error) {
	var e uintptr
	err := d.check("cuEventCreate", d.cuEventCreate(&e, 0))
	return Event(e), err
}

func (d *libDriver) Record(e Event) error {
	return d.check("cuEventRecord", d.cuEventRecord(uintptr(e), 0))
}

func (d *libDriver) Elapsed(start, end Event) (float32, error) {
	if err := d.check("cuEventSynchronize", d.cuEventSynchronize(uintptr(end))); err != nil {
		return 0, err
	}
	var ms float32
	err := d.check("cuEventElapsedTime", d.cuEventElapsedTime(&ms, uintptr(start), uintptr(end)))
	return ms, err
}

func (d *libDriver) DestroyEvent(e Event) error {
	return d.check("cuEventDestroy", d.cuEventDestroy(uintptr(e)))
}

func (d *libDriver) MemInfo() (free, total int64, err error) {
	var f, t uint64
	err = d.check("cuMemGetInfo", d.cuMemGetInfo(&f, &t))
	return int64(f), int64(t), err
}

// libBLAS is blasAPI over the real cuBLAS.
type libBLAS struct {
	path    string
	version int
	handle  uintptr

	create      func(h *uintptr) int32
	destroy     func(h uintptr) int32
	getVersion  func(h uintptr, v *int32) int32
	setMathMode func(h uintptr, mode int32) int32
	sgemm       func(h uintptr, ta, tb int32, m, n, k int32, alpha *float32, a uint64, lda int32, b uint64, ldb int32, beta *float32, c uint64, ldc int32) int32
}

// cuBLAS math modes (cublasMath_t).
const (
	cublasDefaultMath = 0 // no TF32: float32 GEMMs stay float32
	cublasTF32Math    = 3 // CUBLAS_TF32_TENSOR_OP_MATH
)

// openBLAS loads cuBLAS (its cublasLt first, from the same directory, so an
// absolute path outside the loader's search still resolves) and creates a
// handle on the current context. It takes the first candidate that loads,
// exports what the engine calls and creates a handle, saying for every
// earlier one why not; driverMajor (the driver's CUDA major release, 0 if
// unknown) rules out a cuBLAS too new for the driver.
func openBLAS(explicit string, driverMajor int) (*libBLAS, error) {
	hint := "set " + EnvCUBLAS + " to the library or its directory"
	e := &LibraryError{Lib: "cuBLAS (libcublas.so.13, .12 or .11)", Hint: hint}
	for _, c := range cublasCandidates(explicit, environment(), driverMajor) {
		if lt := cublasLtFor(c); lt != "" {
			purego.Dlopen(lt, purego.RTLD_NOW|purego.RTLD_GLOBAL) //nolint:errcheck // cuBLAS's own open reports it
		}
		h, path, err := dlopenFirst(e.Lib, hint, []string{c}, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err != nil {
			le := err.(*LibraryError)
			e.Tried, e.Why = append(e.Tried, le.Tried...), append(e.Why, le.Why...)
			continue
		}
		b, err := newLibBLAS(h, path)
		if err != nil {
			purego.Dlclose(h) //nolint:errcheck // the reason is err
			e.Tried, e.Why = append(e.Tried, path), append(e.Why, strings.TrimPrefix(err.Error(), "cuda: "))
			continue
		}
		return b, nil
	}
	return nil, e
}

// newLibBLAS binds an opened cuBLAS and creates its handle.
func newLibBLAS(h uintptr, path string) (*libBLAS, error) {
	b := &libBLAS{path: path}
	fns := map[*any][]string{}
	add := func(f any, names ...string) { fns[&f] = names }
	add(&b.create, "cublasCreate_v2")
	add(&b.destroy, "cublasDestroy_v2")
	add(&b.getVersion, "cublasGetVersion_v2")
	add(&b.setMathMode, "cublasSetMathMode")
	add(&b.sgemm, "cublasSgemm_v2")
	if err := bind(h, path, fns); err != nil {
		return nil, err
	}
	if s := b.create(&b.handle); s != 0 {
		return nil, &BLASError{Call: "cublasCreate", Status: int(s)}
	}
	var v int32
	if b.getVersion(b.handle, &v) == 0 {
		b.version = int(v)
	}
	return b, nil
}

func (b *libBLAS) Sgemm(c SgemmCall) error {
	alpha, beta := c.Alpha, c.Beta
	s := b.sgemm(b.handle, int32(c.TransA), int32(c.TransB), int32(c.M), int32(c.N), int32(c.K),
		&alpha, uint64(c.A), int32(c.LDA), uint64(c.B), int32(c.LDB), &beta, uint64(c.C), int32(c.LDC))
	if s != 0 {
		return &BLASError{Call: "cublasSgemm", Status: int(s)}
	}
	return nil
}

func (b *libBLAS) SetTF32(on bool) error {
	mode := int32(cublasDefaultMath)
	if on {
		mode = cublasTF32Math
	}
	if s := b.setMathMode(b.handle, mode); s != 0 {
		return &BLASError{Call: "cublasSetMathMode", Status: int(s)}
	}
	return nil
}

func (b *libBLAS) Close() error {
	if s := b.destroy(b.handle); s != 0 {
		return &BLASError{Call: "cublasDestroy", Status: int(s)}
	}
	return nil
}

// platformOpen loads the driver and cuBLAS and initialises the device.
func platformOpen(opt Options) (*Device, error) {
	drv, err := openDriver(opt.DriverPath)
	if err != nil {
		return nil, err
	}
	info, err := drv.init(opt.Ordinal)
	if err != nil {
		return nil, err
	}
	blas, err := openBLAS(opt.CUBLASPath, info.driverVersion/1000)
	if err != nil {
		drv.release() //nolint:errcheck // the cuBLAS error is the one to report
		return nil, err
	}
	d := &Device{
		Name: info.name, Major: info.major, Minor: info.minor, TotalMem: info.totalMem,
		DriverVersion: info.driverVersion, DriverPath: drv.path, CUBLASPath: blas.path, CUBLASVersion: blas.version,
		drv: drv, blas: blas, current: drv.makeCurrent, release: drv.release,
	}
	return d, nil
}

// bytesString returns b up to its first NUL.
func bytesString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
