package cuda

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"unsafe"

	"github.com/logitlens/logitlens/inference/sgemm"
)

// Emulator is a CUDA driver and cuBLAS that run on the host, for tests on
// machines without a GPU: device memory is Go memory, and each kernel is a
// Go transcription of its CUDA C, thread by thread and with the same
// reduction trees (the pure-Go reference of the kernels' exact algorithms).
// It records every call, so tests can check the sequence the engine
// issues; it checks what the real driver would reject (out-of-bounds
// pointers, unknown modules, bad launch shapes, invalid GEMM leading
// dimensions); and it counts the bytes allocated, so tests can find leaks.
//
// Nothing in the program refers to it: only tests link it in.
type Emulator struct {
	mu      sync.Mutex // the Device serialises calls; Allocated may come from anywhere
	next    DevicePtr
	mem     map[DevicePtr][]byte // allocations by base address
	bases   []DevicePtr          // sorted
	modules []ptxInfo            // loaded modules
	funcs   []string             // Function handles index this
	params  [][]string           // per Function: its PTX parameter types
	calls   []string
	tf32    bool
	events  int             // events created
	live    map[Event]bool  // events not yet destroyed
	broken  map[string]bool // kernels that do nothing (Break)
	faulty  map[string]bool // kernels that fault (Fault)
	sticky  error           // a kernel's fault, returned by every later call
}

// NewEmulator returns an emulated GPU with nothing allocated.
func NewEmulator() *Emulator {
	return &Emulator{next: 0x10000, mem: map[DevicePtr][]byte{}, broken: map[string]bool{}, faulty: map[string]bool{}, live: map[Event]bool{}}
}

// NewEmulatedDevice returns a Device on a new Emulator, and the Emulator.
func NewEmulatedDevice() (*Device, *Emulator, error) {
	e := NewEmulator()
	d, err := e.NewDevice(false)
	return d, e, err
}

// NewDevice opens another Device on the emulated GPU, with cuBLAS's TF32
// mode as asked (the emulated products stay float32 either way).
func (e *Emulator) NewDevice(tf32 bool) (*Device, error) { return newDevice(e, e, tf32) }

// Allocated returns the device memory allocated and not yet freed, in bytes.
func (e *Emulator) Allocated() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n int64
	for _, b := range e.mem {
		n += int64(len(b))
	}
	return n
}

// Break makes a kernel do nothing from now on, leaving its output as it
// was: a deliberately wrong device, for tests of what catches one.
func (e *Emulator) Break(kernel string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.broken[kernel] = true
}

// Fault makes a kernel fault from now on, as one that reads out of bounds
// does on a GPU: CUDA_ERROR_ILLEGAL_ADDRESS, and the context lost.
func (e *Emulator) Fault(kernel string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faulty[kernel] = true
}

func (e *Emulator) log(format string, args ...any) {
	e.calls = append(e.calls, fmt.Sprintf(format, args...))
}

// bytes returns the device memory at p, n bytes long, panicking on an
// out-of-bounds access (what would be CUDA_ERROR_ILLEGAL_ADDRESS).
func (e *Emulator) bytes(p DevicePtr, n int) []byte {
	i := sort.Search(len(e.bases), func(i int) bool { return e.bases[i] > p }) - 1
	if i < 0 {
		panic(fmt.Sprintf("emu: illegal address %#x", p))
	}
	base := e.bases[i]
	b := e.mem[base]
	off := int(p - base)
	if off+n > len(b) {
		panic(fmt.Sprintf("emu: illegal address %#x+%d (allocation %#x of %d bytes)", p, n, base, len(b)))
	}
	return b[off : off+n]
}

func (e *Emulator) f32(p DevicePtr, n int) []float32 {
	if n == 0 {
		return nil
	}
	b := e.bytes(p, 4*n)
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
}

func (e *Emulator) i32(p DevicePtr, n int) []int32 {
	if n == 0 {
		return nil
	}
	b := e.bytes(p, 4*n)
	return unsafe.Slice((*int32)(unsafe.Pointer(&b[0])), n)
}

// LoadModule implements the driver API (cuModuleLoadDataEx): it checks
// the PTX's structure and records its entries.
func (e *Emulator) LoadModule(ptx string) (Module, error) {
	info, err := parsePTX(ptx)
	if err != nil {
		return 0, err
	}
	e.modules = append(e.modules, info)
	e.log("LoadModule %s", strings.Join(info.Entries, ","))
	return Module(len(e.modules)), nil
}

// Function implements the driver API (cuModuleGetFunction).
func (e *Emulator) Function(m Module, name string) (Function, error) {
	if m < 1 || int(m) > len(e.modules) || !slices.Contains(e.modules[m-1].Entries, name) {
		return 0, &DriverError{Call: "cuModuleGetFunction", Code: 500, Name: "CUDA_ERROR_NOT_FOUND"}
	}
	e.funcs = append(e.funcs, name)
	e.params = append(e.params, e.modules[m-1].Params[name])
	e.log("Function %s", name)
	return Function(len(e.funcs)), nil
}

// Alloc implements the driver API (cuMemAlloc).
func (e *Emulator) Alloc(n int) (DevicePtr, error) {
	if n <= 0 {
		return 0, &DriverError{Call: "cuMemAlloc", Code: 1, Name: "CUDA_ERROR_INVALID_VALUE"}
	}
	if e.sticky != nil {
		return 0, e.sticky
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.next
	e.mem[p] = make([]byte, n)
	e.bases = append(e.bases, p)
	e.next += DevicePtr((n + 511) &^ 255) // a gap, so overruns hit no allocation
	return p, nil
}

// Free implements the driver API (cuMemFree). Like the driver's, it works
// after a kernel fault, so a program can still release its memory.
func (e *Emulator) Free(p DevicePtr) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.mem[p]; !ok {
		return &DriverError{Call: "cuMemFree", Code: 1, Name: "CUDA_ERROR_INVALID_VALUE"}
	}
	delete(e.mem, p)
	e.bases = slices.DeleteFunc(e.bases, func(q DevicePtr) bool { return q == p })
	return nil
}

// HtoD implements the driver API (cuMemcpyHtoD).
func (e *Emulator) HtoD(dst DevicePtr, src []byte) error {
	if e.sticky != nil {
		return e.sticky
	}
	copy(e.bytes(dst, len(src)), src)
	return nil
}

// DtoH implements the driver API (cuMemcpyDtoH).
func (e *Emulator) DtoH(dst []byte, src DevicePtr) error {
	if e.sticky != nil {
		return e.sticky
	}
	copy(dst, e.bytes(src, len(dst)))
	return nil
}

// DtoD implements the driver API (cuMemcpyDtoDAsync).
func (e *Emulator) DtoD(dst, src DevicePtr, n int) error {
	if e.sticky != nil {
		return e.sticky
	}
	copy(e.bytes(dst, n), e.bytes(src, n))
	return nil
}

// Synchronize implements the driver API (cuStreamSynchronize): every call
// has already run.
func (e *Emulator) Synchronize() error { return e.sticky }

// NewEvent implements the driver API (cuEventCreate).
func (e *Emulator) NewEvent() (Event, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events++
	e.live[Event(e.events)] = true
	return Event(e.events), nil
}

// errBadEvent is what the emulator answers for an event that was never
// created or is destroyed; the real driver's behaviour is undefined.
var errBadEvent = &DriverError{Call: "cuEvent", Code: 400, Name: "CUDA_ERROR_INVALID_HANDLE", Text: "emu: no such event"}

// Record implements the driver API (cuEventRecord).
func (e *Emulator) Record(ev Event) error {
	if !e.eventLive(ev) {
		return errBadEvent
	}
	return nil
}

// Elapsed implements the driver API (cuEventElapsedTime) with a made-up
// time: 1 ms between any two events, so that a test can tell a time
// measured with events from one read off the host's clock.
func (e *Emulator) Elapsed(a, b Event) (float32, error) {
	if !e.eventLive(a) || !e.eventLive(b) {
		return 0, errBadEvent
	}
	return 1, nil
}

// DestroyEvent implements the driver API (cuEventDestroy). Destroying an
// event twice is an error here.
func (e *Emulator) DestroyEvent(ev Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.live[ev] {
		return errBadEvent
	}
	delete(e.live, ev)
	return nil
}

func (e *Emulator) eventLive(ev Event) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.live[ev]
}

// Events returns the number of events created and not yet destroyed.
func (e *Emulator) Events() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.live)
}

// MemInfo implements the driver API (cuMemGetInfo): 1 GiB free of 2.
func (e *Emulator) MemInfo() (int64, int64, error) { return 1 << 30, 1 << 31, nil }

// SetTF32 implements cuBLAS's cublasSetMathMode; the emulated products
// stay float32 either way.
func (e *Emulator) SetTF32(on bool) error { e.tf32 = on; e.log("SetTF32 %v", on); return nil }

// Close implements cuBLAS's cublasDestroy.
func (e *Emulator) Close() error { return nil }

// emuStructs views n structs of device memory at p.
func emuStructs[T finalStats | rowStats](e *Emulator, p DevicePtr, n int) []T {
	var z T
	b := e.bytes(p, n*int(unsafe.Sizeof(z)))
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n)
}

// Launch implements the driver API (cuLaunchKernel) by running the
// kernel's Go version over the whole grid. A kernel that reads or writes
// outside an allocation fails as on a GPU: CUDA_ERROR_ILLEGAL_ADDRESS, for
// this and every later call but Free (the context is lost).
func (e *Emulator) Launch(f Function, grid, block Dim3, shared int, args []Arg) (err error) {
	if e.sticky != nil {
		return e.sticky
	}
	if f < 1 || int(f) > len(e.funcs) {
		return &DriverError{Call: "cuLaunchKernel", Code: 400, Name: "CUDA_ERROR_INVALID_HANDLE"}
	}
	name := e.funcs[f-1]
	e.log("Launch %s grid(%d,%d,%d) block(%d) shared %d", name, grid.X, grid.Y, grid.Z, block.X, shared)
	if block.X != blockThreads || block.Y != 1 || block.Z != 1 || grid.X < 1 || grid.Y < 1 || grid.Z < 1 || shared > 48<<10 {
		return &DriverError{Call: "cuLaunchKernel", Code: 1, Name: "CUDA_ERROR_INVALID_VALUE"}
	}
	if err := checkArgs(name, e.params[f-1], args); err != nil {
		return err
	}
	k, ok := emuKernels()[name]
	if !ok {
		panic("emu: no Go version of kernel " + name)
	}
	if e.broken[name] {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			e.sticky = &DriverError{Call: "cuLaunchKernel", Code: 700, Name: "CUDA_ERROR_ILLEGAL_ADDRESS",
				Text: fmt.Sprintf("%s: %v", name, r)}
			err = e.sticky
		}
	}()
	if e.faulty[name] {
		panic("a deliberate fault (Emulator.Fault)")
	}
	k(e, grid, shared, args)
	return nil
}

// checkArgs holds a launch's arguments to the kernel's PTX signature: the
// driver copies each parameter by the size the PTX declares, so a missing
// or mistyped one would be garbage on a GPU, silently.
func checkArgs(name string, params []string, args []Arg) error {
	kinds := map[string]argKind{"u64": argPtr, "b64": argPtr, "u32": argInt, "s32": argInt, "b32": argInt, "f32": argFloat}
	bad := len(params) != len(args)
	for i := 0; !bad && i < len(args); i++ {
		k, ok := kinds[params[i]]
		bad = !ok || k != args[i].kind
	}
	if !bad {
		return nil
	}
	got := make([]string, len(args))
	for i, a := range args {
		got[i] = [...]string{argPtr: "ptr", argInt: "int", argFloat: "float"}[a.kind]
	}
	return &DriverError{Call: "cuLaunchKernel", Code: 1, Name: "CUDA_ERROR_INVALID_VALUE",
		Text: fmt.Sprintf("%s declares parameters (%s) but was launched with (%s)", name, strings.Join(params, ", "), strings.Join(got, ", "))}
}

// Sgemm implements cuBLAS's column-major cublasSgemm, validating its
// arguments as cuBLAS does.
func (e *Emulator) Sgemm(c SgemmCall) error {
	if e.sticky != nil {
		return e.sticky
	}
	e.log("Sgemm %v %v m=%d n=%d k=%d lda=%d ldb=%d ldc=%d", c.TransA, c.TransB, c.M, c.N, c.K, c.LDA, c.LDB, c.LDC)
	rowsA, colsA := c.M, c.K
	if c.TransA == OpT {
		rowsA, colsA = c.K, c.M
	}
	rowsB, colsB := c.K, c.N
	if c.TransB == OpT {
		rowsB, colsB = c.N, c.K
	}
	if c.M < 0 || c.N < 0 || c.K < 0 || c.LDA < max(1, rowsA) || c.LDB < max(1, rowsB) || c.LDC < max(1, c.M) {
		return &BLASError{Call: "cublasSgemm", Status: 7}
	}
	if c.M == 0 || c.N == 0 {
		return nil
	}
	A := e.f32(c.A, c.LDA*(colsA-1)+rowsA)
	B := e.f32(c.B, c.LDB*(colsB-1)+rowsB)
	C := e.f32(c.C, c.LDC*(c.N-1)+c.M)
	// A column-major X with leading dimension ld is the row-major Xᵀ with
	// row stride ld, so C = op(A)·op(B) is the row-major Cᵀ = op(B)ᵀ·op(A)ᵀ,
	// which the host's Sgemm (tested against its triple loop) computes fast
	// enough for GPT-2 xl's shapes.
	sgemm.Sgemm(c.TransB == OpT, c.TransA == OpT, c.N, c.M, c.K, c.Alpha, B, c.LDB, A, c.LDA, c.Beta, C, c.LDC)
	return nil
}

// Block reductions, as common.cuh: a shuffle-down tree in each warp, then
// the warps' partials (lane order) through the same tree.

func treeSum[T float64 | int32](v []T) T { // v: one value per lane of a warp, reduced into v[0]
	for off := 16; off > 0; off >>= 1 {
		for i := 0; i < off; i++ {
			v[i] += v[i+off]
		}
	}
	return v[0]
}

func blockSum(v []float64) float64 {
	var w [32]float64
	for g := 0; g < blockThreads/32; g++ {
		w[g] = treeSum(slices.Clone(v[g*32 : g*32+32]))
	}
	return treeSum(w[:])
}

func blockSumInt(v []int32) int32 {
	var w [32]int32
	for g := 0; g < blockThreads/32; g++ {
		w[g] = treeSum(slices.Clone(v[g*32 : g*32+32]))
	}
	return treeSum(w[:])
}

// blockMax is fmaxf's reduction: a NaN is ignored, and all NaN gives −Inf.
func blockMax(v []float32) float32 {
	m := float32(math.Inf(-1))
	for _, x := range v {
		if x > m {
			m = x
		}
	}
	return m
}

func expf(x float32) float32 { return float32(math.Exp(float64(x))) }

// emuKernels returns the Go versions of the kernels, by .entry name. Each
// runs the whole grid; loops over tid stand for the block's threads. The
// heavy ones (attention, the lens reductions: a loop per logit) are not
// instrumented by the race detector (//go:norace), which made them ~30×
// slower: a kernel runs alone, under the Device's lock, and the copies
// in and out of device memory that it could race with stay instrumented. It is
// a function, not a package variable, so that a binary that never launches
// on an Emulator does not link the kernels in.
func emuKernels() map[string]func(e *Emulator, grid Dim3, shared int, a []Arg) {
	return map[string]func(e *Emulator, grid Dim3, shared int, a []Arg){
		"embed_forward": func(e *Emulator, grid Dim3, _ int, a []Arg) {
			T, C, p0 := a[4].Int(), a[5].Int(), a[6].Int()
			x, ids := e.f32(a[0].Ptr(), T*C), e.i32(a[3].Ptr(), T)
			for i := range min(T*C, grid.X*blockThreads) {
				t, c := i/C, i%C
				x[i] = e.f32(a[1].Ptr(), (int(ids[t])+1)*C)[int(ids[t])*C+c] + e.f32(a[2].Ptr(), (p0+t+1)*C)[(p0+t)*C+c]
			}
		},
		"layernorm_forward": func(e *Emulator, grid Dim3, _ int, a []Arg) {
			M, C, eps := a[4].Int(), a[5].Int(), a[6].Float()
			out, x := e.f32(a[0].Ptr(), M*C), e.f32(a[1].Ptr(), M*C)
			g, b := e.f32(a[2].Ptr(), C), e.f32(a[3].Ptr(), C)
			part := make([]float64, blockThreads)
			for row := range min(M, grid.X) {
				xr, o := x[row*C:(row+1)*C], out[row*C:(row+1)*C]
				for tid := range part {
					part[tid] = 0
					for j := tid; j < C; j += blockThreads {
						part[tid] += float64(xr[j])
					}
				}
				mean := blockSum(part) / float64(C)
				for tid := range part {
					part[tid] = 0
					for j := tid; j < C; j += blockThreads {
						d := float64(xr[j]) - mean
						part[tid] += d * d
					}
				}
				rstd := 1 / math.Sqrt(blockSum(part)/float64(C)+float64(eps))
				for j := range C {
					o[j] = float32((float64(xr[j])-mean)*rstd)*g[j] + b[j]
				}
			}
		},
		"gelu_forward": func(e *Emulator, grid Dim3, _ int, a []Arg) {
			n := a[1].Int()
			x := e.f32(a[0].Ptr(), n)
			const s = float32(0.7978845608028654)
			for i := range min(n, grid.X*blockThreads) {
				v := x[i]
				x[i] = 0.5 * v * (1 + float32(math.Tanh(float64(s*(v+0.044715*v*v*v)))))
			}
		},
		"add_bias": func(e *Emulator, grid Dim3, _ int, a []Arg) {
			M, N := a[2].Int(), a[3].Int()
			x, bias := e.f32(a[0].Ptr(), M*N), e.f32(a[1].Ptr(), N)
			for i := range min(M*N, grid.X*blockThreads) {
				x[i] += bias[i%N]
			}
		},
		"residual_add": func(e *Emulator, grid Dim3, _ int, a []Arg) {
			n := a[2].Int()
			x, y := e.f32(a[0].Ptr(), n), e.f32(a[1].Ptr(), n)
			for i := range min(n, grid.X*blockThreads) {
				x[i] += y[i]
			}
		},
		"kv_append": func(e *Emulator, grid Dim3, _ int, a []Arg) {
			T, C, p0 := a[4].Int(), a[5].Int(), a[6].Int()
			qkv, q := e.f32(a[0].Ptr(), T*3*C), e.f32(a[1].Ptr(), T*C)
			kc, vc := e.f32(a[2].Ptr(), (p0+T)*C), e.f32(a[3].Ptr(), (p0+T)*C)
			for i := range min(T*C, grid.X*blockThreads) {
				t, c := i/C, i%C
				row := qkv[t*3*C:]
				q[i], kc[(p0+t)*C+c], vc[(p0+t)*C+c] = row[c], row[C+c], row[2*C+c]
			}
		},
		"attention_forward": emuAttention,
		"lens_final":        emuLensFinal,
		"lens_stats":        emuLensStats,
	}
}

//go:norace
func emuAttention(e *Emulator, grid Dim3, shared int, a []Arg) {
	T, p0, C, H, scale := a[4].Int(), a[5].Int(), a[6].Int(), a[7].Int(), a[8].Float()
	D, P := C/H, p0+T
	if grid.X != T || grid.Y != H || shared < 4*(D+P+blockThreads) {
		panic(fmt.Sprintf("emu: attention grid %v shared %d for T=%d H=%d", grid, shared, T, H))
	}
	out, q := e.f32(a[0].Ptr(), T*C), e.f32(a[1].Ptr(), T*C)
	kc, vc := e.f32(a[2].Ptr(), P*C), e.f32(a[3].Ptr(), P*C)
	scores := make([]float32, P)
	part := make([]float64, blockThreads)
	G := blockThreads / D
	parts := make([]float32, G*D)
	for t := range T {
		for h := range H {
			n := p0 + t + 1
			qs := q[t*C+h*D : t*C+h*D+D]
			m := float32(math.Inf(-1))
			for j := range n {
				kj := kc[j*C+h*D:]
				var s float32
				for d := range D {
					s += qs[d] * kj[d]
				}
				s *= scale
				scores[j] = s
				m = max(m, s)
			}
			for tid := range part {
				part[tid] = 0
				for j := tid; j < n; j += blockThreads {
					ex := expf(scores[j] - m)
					scores[j] = ex
					part[tid] += float64(ex)
				}
			}
			inv := float32(1 / blockSum(part))
			for g := range G {
				for d := range D {
					var acc float32
					for j := g; j < n; j += G {
						acc += scores[j] * vc[j*C+h*D+d]
					}
					parts[g*D+d] = acc
				}
			}
			for d := range D {
				var acc float32
				for g := range G {
					acc += parts[g*D+d]
				}
				out[t*C+h*D+d] = acc * inv
			}
		}
	}
}

//go:norace
func emuLensFinal(e *Emulator, grid Dim3, _ int, a []Arg) {
	V, n, rf := a[1].Int(), a[2].Int(), a[3].Int()
	logits := e.f32(a[0].Ptr(), (rf+1)*n*V)
	out := emuStructs[finalStats](e, a[4].Ptr(), n)
	s, ee := make([]float64, blockThreads), make([]float64, blockThreads)
	for t := range min(n, grid.X) {
		z := logits[(rf*n+t)*V : (rf*n+t+1)*V]
		m := blockMax(z)
		first := int32(0) // none equals the max when all are NaN: the kernel clamps to 0
		for i, v := range z {
			if v == m {
				first = int32(i)
				break
			}
		}
		for tid := range blockThreads {
			var ts, te float32
			for i := tid; i < V; i += blockThreads {
				d := z[i] - m
				w := expf(d)
				ts += w
				te += w * d
			}
			s[tid], ee[tid] = float64(ts), float64(te)
		}
		out[t] = finalStats{S: blockSum(s), E: blockSum(ee), M: m, Top1: first}
	}
}

//go:norace
func emuLensStats(e *Emulator, grid Dim3, _ int, a []Arg) {
	V, n, rf, target, k := a[1].Int(), a[2].Int(), a[3].Int(), a[5].Int(), a[7].Int()
	rows := grid.X
	logits := e.f32(a[0].Ptr(), rows*V)
	fin := emuStructs[finalStats](e, a[4].Ptr(), n)
	var next []int32 // NULL: no next tokens
	if a[6].Ptr() != 0 {
		next = e.i32(a[6].Ptr(), n)
	}
	stats := emuStructs[rowStats](e, a[8].Ptr(), rows)
	topIDs, topVals := e.i32(a[9].Ptr(), rows*k), e.f32(a[10].Ptr(), rows*k)
	s, ee, fz := make([]float64, blockThreads), make([]float64, blockThreads), make([]float64, blockThreads)
	r1, rt, rn := make([]int32, blockThreads), make([]int32, blockThreads), make([]int32, blockThreads)
	type cand struct {
		v  float32
		id int32
	}
	lists := make([][]cand, blockThreads)
	for row := range rows {
		t := row % n
		z := logits[row*V : (row+1)*V]
		zf := logits[(rf*n+t)*V : (rf*n+t+1)*V]
		F := fin[t]
		kl := row/n != rf
		z1 := z[F.Top1]
		zt := float32(math.Inf(1))
		if target >= 0 {
			zt = z[target]
		}
		zn := float32(math.Inf(1))
		if next != nil && next[t] >= 0 {
			zn = z[next[t]]
		}
		m := blockMax(z)
		invSf := float32(1 / F.S)
		for tid := range blockThreads {
			var ts, te, tf float32
			var c1, ct, cn int32
			l := lists[tid][:0]
			for i := tid; i < V; i += blockThreads {
				v := z[i]
				d := v - m
				w := expf(d)
				ts += w
				te += w * d
				if kl {
					tf += expf(zf[i]-F.M) * invSf * d
				}
				if v > z1 {
					c1++
				}
				if v > zt {
					ct++
				}
				if v > zn {
					cn++
				}
				if len(l) < k || v > l[k-1].v {
					j := len(l)
					if j < k {
						l = append(l, cand{})
					} else {
						j = k - 1
					}
					for j > 0 && l[j-1].v < v {
						l[j] = l[j-1]
						j--
					}
					l[j] = cand{v, int32(i)}
				}
			}
			lists[tid] = l
			s[tid], ee[tid], fz[tid], r1[tid], rt[tid], rn[tid] = float64(ts), float64(te), float64(tf), c1, ct, cn
		}
		stats[row] = rowStats{S: blockSum(s), E: blockSum(ee), FZ: blockSum(fz), M: m, Z1: z1, ZT: zt, ZN: zn,
			Rank1: blockSumInt(r1), RankT: blockSumInt(rt), RankN: blockSumInt(rn)}
		heads := make([]int, blockThreads)
		for r := range k {
			best := cand{float32(math.Inf(-1)), math.MaxInt32}
			bt := -1
			for tid := range blockThreads {
				if h := heads[tid]; h < len(lists[tid]) {
					c := lists[tid][h]
					if c.v > best.v || (c.v == best.v && c.id < best.id) {
						best, bt = c, tid
					}
				}
			}
			if bt >= 0 {
				heads[bt]++
			}
			topIDs[row*k+r], topVals[row*k+r] = best.id, best.v
		}
	}
}
