//go:build linux && (amd64 || arm64)

package cuda

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Fake driver and cuBLAS libraries, compiled with gcc into t.TempDir(),
// prove the error paths of Open (and the argument passing through purego)
// on a machine without a GPU.

var fakeDriverSymbols = []string{
	"cuDeviceGet",
	"cuDevicePrimaryCtxRelease_v2", "cuModuleLoadDataEx", "cuModuleGetFunction",
	"cuMemAlloc_v2", "cuMemFree_v2", "cuMemcpyHtoD_v2", "cuMemcpyDtoH_v2", "cuMemcpyDtoDAsync_v2",
	"cuMemGetInfo_v2", "cuStreamSynchronize", "cuEventCreate", "cuEventRecord",
	"cuEventSynchronize", "cuEventElapsedTime_v2", "cuEventDestroy_v2",
}

const fakeDriverC = `
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
int cuInit(unsigned f) { return CUINIT; }
#ifndef DRVVER
#define DRVVER 13000
#endif
int cuDriverGetVersion(int *v) { *v = DRVVER; return 0; }
int cuDevicePrimaryCtxRetain(void **ctx, int dev) { *ctx = (void *)0xC0; return 0; }
/* fake_ctx: the context each thread made current last, by thread id */
long long fake_ctx_tid[256], fake_ctx_val[256];
int cuCtxSetCurrent(void *ctx) {
	long long tid = syscall(SYS_gettid);
	int i = 0;
	while (i < 255 && fake_ctx_tid[i] != 0 && fake_ctx_tid[i] != tid) i++;
	fake_ctx_tid[i] = tid;
	fake_ctx_val[i] = (long long)ctx;
	return 0;
}
int cuDeviceGetCount(int *n) { *n = COUNT; return 0; }
int cuGetErrorName(int c, const char **s) {
	if (c == 100) { *s = "CUDA_ERROR_NO_DEVICE"; return 0; }
	return 1;
}
int cuGetErrorString(int c, const char **s) {
	if (c == 100) { *s = "no CUDA-capable device is detected"; return 0; }
	return 1;
}
int cuDeviceGetName(char *name, int len, int dev) { strncpy(name, "Fake GPU", len); return 0; }
int cuDeviceTotalMem_v2(unsigned long long *b, int dev) { *b = 80000000000ULL; return 0; }
int cuDeviceGetAttribute(int *v, int attr, int dev) { *v = attr == 75 ? 9 : 0; return 0; }
long long fake_launch[10];
int cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                   unsigned shared, void *stream, void **params, void **extra) {
	fake_launch[0] = gx; fake_launch[1] = gy; fake_launch[2] = bx; fake_launch[3] = shared;
	fake_launch[4] = *(int *)params[0];
	float v = *(float *)params[1]; fake_launch[5] = (long long)(v * 1000);
	fake_launch[6] = *(unsigned long long *)params[2];
	fake_launch[7] = params[3] == 0; /* the engine ends the list with NULL */
	return 0;
}
`

const fakeBLASC = `
#define _GNU_SOURCE
#include <unistd.h>
#include <sys/syscall.h>
#ifndef CREATE
#define CREATE 0
#endif
int cublasCreate_v2(void **h) { *h = (void *)0x1234; return CREATE; }
long long fake_destroy_tid;
int cublasDestroy_v2(void *h) { fake_destroy_tid = syscall(SYS_gettid); return 0; }
int cublasGetVersion_v2(void *h, int *v) { *v = 130000; return 0; }
int fake_math = -1;
int cublasSetMathMode(void *h, int mode) { fake_math = mode; return 0; }
long long fake_gemm[16];
int cublasSgemm_v2(void *h, int ta, int tb, int m, int n, int k, const float *alpha,
                   unsigned long long a, int lda, unsigned long long b, int ldb, const float *beta,
                   unsigned long long c, int ldc) {
	long long v[] = {(long long)h, ta, tb, m, n, k, (long long)(*alpha * 1000), (long long)a, lda,
	                 (long long)b, ldb, (long long)(*beta * 1000), (long long)c, ldc};
	for (int i = 0; i < 14; i++) fake_gemm[i] = v[i];
	return 0;
}
`

// buildFake compiles C source into dir/name as a shared library.
func buildFake(t *testing.T, dir, name, src string, defs ...string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot build the fake libraries")
	}
	var b strings.Builder
	b.WriteString(src)
	if name == "libcuda.so.1" {
		for _, s := range fakeDriverSymbols {
			fmt.Fprintf(&b, "int %s() { return 0; }\n", s)
		}
	}
	c := filepath.Join(t.TempDir(), "fake.c")
	if err := os.WriteFile(c, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	args := append([]string{"-shared", "-fPIC", "-o", out, c}, defs...)
	if msg, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, msg)
	}
	return out
}

func fakeDriver(t *testing.T, cuInit, count int) string {
	return buildFake(t, t.TempDir(), "libcuda.so.1", fakeDriverC,
		fmt.Sprintf("-DCUINIT=%d", cuInit), fmt.Sprintf("-DCOUNT=%d", count))
}

func TestOpenDriverMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "libcuda.so.1")
	_, err := Open(Options{DriverPath: path})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	var le *LibraryError
	if !errors.As(err, &le) || len(le.Tried) != 1 || le.Tried[0] != path {
		t.Fatalf("err = %v, want a LibraryError trying %s", err, path)
	}
	if !strings.Contains(err.Error(), path+" (absent)") || !strings.Contains(err.Error(), EnvDriver) {
		t.Errorf("message %q does not say what was tried and what to set", err)
	}
}

func TestOpenDriverNotALibrary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "libcuda.so.1")
	os.WriteFile(path, []byte("not ELF"), 0o644)
	_, err := Open(Options{DriverPath: path})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), path+" (") || strings.Contains(err.Error(), "absent") {
		t.Fatalf("err = %v, want the loader's reason for %s", err, path)
	}
}

// TestOpenDefaultSearch runs Open in a child process whose LD_LIBRARY_PATH
// is an empty directory, so the loader's own search is what fails, and
// expects every default candidate in the message.
func TestOpenDefaultSearch(t *testing.T) {
	if os.Getenv("LOGITLENS_CUDA_CHILD") != "" {
		_, err := Open(Options{})
		fmt.Println("OPEN-ERROR:", err)
		return
	}
	for _, c := range driverCandidates("") {
		if _, err := os.Stat(c); filepath.IsAbs(c) && err == nil {
			t.Skipf("%s exists: this machine has a driver", c)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenDefaultSearch$", "-test.count=1")
	cmd.Env = append(os.Environ(), "LOGITLENS_CUDA_CHILD=1", "LD_LIBRARY_PATH="+t.TempDir(), EnvDriver+"=", EnvCUBLAS+"=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	msg := string(out)
	if !strings.Contains(msg, "OPEN-ERROR: cuda: libcuda.so.1 (the NVIDIA driver) not found; tried libcuda.so.1 (") {
		t.Fatalf("child said:\n%s", msg)
	}
	for _, c := range driverCandidates("")[1:] {
		if !strings.Contains(msg, c) {
			t.Errorf("message lacks candidate %s:\n%s", c, msg)
		}
	}
}

// TestOpenUsesLDLibraryPath puts a fake driver (cuInit → 999) on a child's
// LD_LIBRARY_PATH: the loader's own search must find it before any system
// driver.
func TestOpenUsesLDLibraryPath(t *testing.T) {
	dir := filepath.Dir(fakeDriver(t, 999, 0))
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenDefaultSearch$", "-test.count=1")
	cmd.Env = append(os.Environ(), "LOGITLENS_CUDA_CHILD=1", "LD_LIBRARY_PATH="+dir, EnvDriver+"=", EnvCUBLAS+"=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "OPEN-ERROR: cuda: cuInit failed with code 999 (CUDA_ERROR_UNKNOWN)") {
		t.Fatalf("child said:\n%s", out)
	}
}

func TestOpenCuInitFails(t *testing.T) {
	_, err := Open(Options{DriverPath: fakeDriver(t, 100, 0)})
	var de *DriverError
	if !errors.As(err, &de) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want an unavailable DriverError", err)
	}
	want := "cuda: cuInit failed with code 100 (CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected)"
	if err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
	// a code the driver cannot name falls back to our table
	_, err = Open(Options{DriverPath: fakeDriver(t, 999, 0)})
	if err == nil || err.Error() != "cuda: cuInit failed with code 999 (CUDA_ERROR_UNKNOWN)" {
		t.Errorf("err = %v", err)
	}
}

func TestOpenNoDevice(t *testing.T) {
	_, err := Open(Options{DriverPath: fakeDriver(t, 0, 0)})
	if !errors.Is(err, ErrNoDevice) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrNoDevice", err)
	}
}

func TestOpenCUBLASMissing(t *testing.T) {
	drv := fakeDriver(t, 0, 1)
	empty := t.TempDir()
	check := func(err error) {
		t.Helper()
		var le *LibraryError
		if !errors.As(err, &le) || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want a LibraryError", err)
		}
		for _, n := range []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"} {
			if !strings.Contains(err.Error(), filepath.Join(empty, n)) {
				t.Errorf("message lacks %s: %v", filepath.Join(empty, n), err)
			}
		}
		if !strings.Contains(err.Error(), EnvCUBLAS) {
			t.Errorf("message does not name %s: %v", EnvCUBLAS, err)
		}
	}
	_, err := Open(Options{DriverPath: drv, CUBLASPath: empty})
	check(err)
	t.Setenv(EnvCUBLAS, empty) // the environment is honoured the same way
	_, err = Open(Options{DriverPath: drv})
	check(err)
}

// TestOpenFakeGPU opens a fake driver and cuBLAS that accept everything,
// and checks what crossed purego: device properties, the math mode, and a
// kernel launch's and a GEMM's arguments.
func TestOpenFakeGPU(t *testing.T) {
	drv := fakeDriver(t, 0, 1)
	dir := t.TempDir()
	blas := buildFake(t, dir, "libcublas.so.13", fakeBLASC)
	d, err := Open(Options{DriverPath: drv, CUBLASPath: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.CUBLASPath != blas || d.DriverPath != drv {
		t.Errorf("loaded %s and %s", d.DriverPath, d.CUBLASPath)
	}
	if got, want := d.String(), "Fake GPU (sm_90, 80 GB, driver 13.0, cuBLAS 13.0.0)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	read := func(lib, sym string, n int) []int64 { return readFake(t, lib, sym, n) }
	if m := read(blas, "fake_math", 1)[0] & 0xffffffff; m != cublasDefaultMath {
		t.Errorf("math mode %d, want %d (no TF32)", m, cublasDefaultMath)
	}
	err = d.do(func() error {
		return d.drv.Launch(Function(1), Dim3{3, 2, 1}, Dim3{256, 1, 1}, 128,
			[]Arg{IntArg(-7), FloatArg(1.5), PtrArg(0xdead0000)})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := read(drv, "fake_launch", 8), []int64{3, 2, 256, 128, -7, 1500, 0xdead0000, 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("launch arrived as %v, want %v", got, want)
	}
	err = d.do(func() error { return d.blas.Sgemm(gemmRowMajor(0x30, 0x10, 0x20, 13, 50257, 768, true)) })
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{0x1234, 1, 0, 50257, 13, 768, 1000, 0x20, 768, 0x10, 768, 0, 0x30, 50257}
	if got := read(blas, "fake_gemm", 14); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sgemm arrived as %v, want %v", got, want)
	}
}

// readFake returns n int64s of a fake library's global sym.
func readFake(t *testing.T, lib, sym string, n int) []int64 {
	t.Helper()
	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := purego.Dlsym(h, sym)
	if err != nil {
		t.Fatal(err)
	}
	return append([]int64(nil), unsafe.Slice(*(**int64)(unsafe.Pointer(&p)), n)...)
}

// TestCloseOnContextThread closes a device from a thread whose current
// context was cleared: cublasDestroy must still run with the device's
// context current on its thread (Close makes it current first), or the
// handle's workspace is freed in no context.
func TestCloseOnContextThread(t *testing.T) {
	drv := fakeDriver(t, 0, 1)
	dir := t.TempDir()
	blas := buildFake(t, dir, "libcublas.so.13", fakeBLASC)
	d, err := Open(Options{DriverPath: drv, CUBLASPath: dir})
	if err != nil {
		t.Fatal(err)
	}
	h, err := purego.Dlopen(drv, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		t.Fatal(err)
	}
	var setCurrent func(ctx uintptr) int32
	purego.RegisterLibFunc(&setCurrent, h, "cuCtxSetCurrent")
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // Close runs on this thread, whose context is cleared
		defer runtime.UnlockOSThread()
		setCurrent(0)
		done <- d.Close()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tid := readFake(t, blas, "fake_destroy_tid", 1)[0]
	tids, ctxs := readFake(t, drv, "fake_ctx_tid", 256), readFake(t, drv, "fake_ctx_val", 256)
	i := slices.Index(tids, tid)
	if tid == 0 || i < 0 || ctxs[i] != 0xC0 {
		t.Fatalf("cublasDestroy ran on thread %d, whose current context is %#x (want the device's, 0xc0)", tid, ctxs[max(i, 0)])
	}
	if err := d.Close(); err != nil { // a second Close does nothing
		t.Errorf("second Close: %v", err)
	}
}

// wheelLayout makes a venv whose site-packages hold NVIDIA's cuBLAS
// wheels' directories, as pip installs them, and returns its root and the
// two library directories (CUDA 13's nvidia/cu13/lib, CUDA 12's
// nvidia/cublas/lib). Each call makes a new one: the dynamic loader keeps
// a library by its path, so a rebuilt fake needs a path of its own.
func wheelLayout(t *testing.T) (venv, cu13, cu12 string) {
	t.Helper()
	venv = filepath.Join(t.TempDir(), "venv")
	sp := filepath.Join(venv, "lib", "python3.12", "site-packages", "nvidia")
	cu13, cu12 = filepath.Join(sp, "cu13", "lib"), filepath.Join(sp, "cublas", "lib")
	for _, d := range []string{cu13, cu12, filepath.Join(venv, "bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(venv, "bin", "python3"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return venv, cu13, cu12
}

// The search finds cuBLAS where pip wheels put it, in the Python on PATH
// (a venv such as /opt/torch/.venv), an activated venv or conda
// environment, and the user's site-packages, and in CUDA_HOME's toolkit
// first.
func TestCUBLASDirs(t *testing.T) {
	venv, cu13, cu12 := wheelLayout(t)
	root := t.TempDir()
	conda := filepath.Join(root, "conda", "lib", "python3.11", "site-packages", "nvidia", "cublas", "lib")
	user := filepath.Join(root, "home", ".local", "lib", "python3.10", "site-packages", "nvidia", "cu13", "lib")
	toolkit := filepath.Join(root, "cuda")
	for _, d := range []string{conda, user} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := searchEnv{home: filepath.Join(root, "home"), path: "relative/bin:" + filepath.Join(venv, "bin") + ":/nonexistent",
		condaPrefix: filepath.Join(root, "conda"), cudaHome: toolkit}
	dirs := cublasDirs(env)
	at := func(d string) int {
		i := slices.Index(dirs, d)
		if i < 0 {
			t.Errorf("%s not searched; dirs: %v", d, dirs)
		}
		return i
	}
	if dirs[0] != filepath.Join(toolkit, "lib64") {
		t.Errorf("CUDA_HOME is not searched first: %v", dirs)
	}
	at(cu13)
	at(cu12)
	at(conda)
	at(user)
}

// Each soname is tried everywhere before an older one, and none newer than
// the driver's CUDA release.
func TestCUBLASCandidatesOrder(t *testing.T) {
	venv, cu13, _ := wheelLayout(t)
	env := searchEnv{path: filepath.Join(venv, "bin")}
	c := cublasCandidates("", env, 0)
	last13 := slices.IndexFunc(c, func(s string) bool { return strings.HasSuffix(s, ".so.12") })
	for i, s := range c {
		if strings.HasSuffix(s, ".so.13") && i > last13 {
			t.Fatalf("%s tried after a libcublas.so.12: %v", s, c)
		}
	}
	if !slices.Contains(c, filepath.Join(cu13, "libcublas.so.13")) || c[0] != "libcublas.so.13" {
		t.Errorf("candidates %v", c)
	}
	for _, s := range cublasCandidates("", env, 12) {
		if strings.HasSuffix(s, ".so.13") {
			t.Fatalf("a CUDA 12 driver is offered %s", s)
		}
	}
}

// Open finds a cuBLAS in the site-packages of the Python on PATH. A
// cuBLAS that loads but cannot create a handle is passed over, and a
// driver of CUDA 12 never loads CUDA 13's.
func TestOpenFindsWheelCUBLAS(t *testing.T) {
	if h, err := purego.Dlopen("libcublas.so.13", purego.RTLD_NOW|purego.RTLD_LOCAL); err == nil {
		purego.Dlclose(h)
		t.Skip("this machine's loader finds a libcublas.so.13 before any site-packages")
	}
	venv, cu13, cu12 := wheelLayout(t)
	path := os.Getenv("PATH")
	t.Setenv("PATH", filepath.Join(venv, "bin")+string(os.PathListSeparator)+path)
	t.Setenv("CUDA_HOME", "")
	t.Setenv("CUDA_PATH", "")
	t.Setenv(EnvCUBLAS, "")
	want := buildFake(t, cu13, "libcublas.so.13", fakeBLASC)
	d, err := Open(Options{DriverPath: fakeDriver(t, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if d.CUBLASPath != want {
		t.Errorf("loaded %s, want %s", d.CUBLASPath, want)
	}
	d.Close()

	// CUDA 13's cuBLAS fails cublasCreate: the search goes on to CUDA 12's.
	venv, cu13, cu12 = wheelLayout(t)
	t.Setenv("PATH", filepath.Join(venv, "bin")+string(os.PathListSeparator)+path)
	buildFake(t, cu13, "libcublas.so.13", fakeBLASC, "-DCREATE=1")
	old := buildFake(t, cu12, "libcublas.so.12", fakeBLASC)
	d, err = Open(Options{DriverPath: fakeDriver(t, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if d.CUBLASPath != old {
		t.Errorf("loaded %s, want %s", d.CUBLASPath, old)
	}
	d.Close()

	// A CUDA 12 driver with only CUDA 13's cuBLAS around: none to load.
	if err := os.Remove(old); err != nil {
		t.Fatal(err)
	}
	drv12 := buildFake(t, t.TempDir(), "libcuda.so.1", fakeDriverC, "-DCUINIT=0", "-DCOUNT=1", "-DDRVVER=12040")
	_, err = Open(Options{DriverPath: drv12})
	var le *LibraryError
	if !errors.As(err, &le) || slices.ContainsFunc(le.Tried, func(s string) bool { return strings.HasSuffix(s, ".so.13") }) {
		t.Errorf("a CUDA 12 driver: %v", err)
	}
}
