//go:build (linux || darwin || freebsd) && !android

package sgemm

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/ebitengine/purego"
)

// openBLASFiles are tried in order when LOGITLENS_OPENBLAS is unset. Only
// the LP64 (32-bit integer) interface is used: libopenblas64_ is not.
var openBLASFiles = map[string][]string{
	"linux":   {"libopenblas.so.0", "libopenblas.so"},
	"freebsd": {"libopenblas.so.0", "libopenblas.so"},
	"darwin": {"libopenblas.dylib", "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
		"/usr/local/opt/openblas/lib/libopenblas.dylib"},
}

// CBLAS enum values.
const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

// loadOpenBLAS opens OpenBLAS with dlopen (no cgo), sets its thread count
// and returns its cblas_sgemm as an sgemmFunc.
func loadOpenBLAS(path string, threads int) (string, sgemmFunc, error) {
	files := openBLASFiles[runtime.GOOS]
	if path != "" {
		files = []string{path}
	}
	var lib uintptr
	var errs []string
	for _, f := range files {
		h, err := purego.Dlopen(f, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err == nil {
			lib = h
			break
		}
		errs = append(errs, err.Error())
	}
	if lib == 0 {
		return "", nil, fmt.Errorf("sgemm: no OpenBLAS (%s)", strings.Join(errs, "; "))
	}
	if _, err := purego.Dlsym(lib, "cblas_sgemm"); err != nil {
		return "", nil, errors.New("sgemm: OpenBLAS library lacks cblas_sgemm")
	}
	var sgemm func(order, tA, tB, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32)
	purego.RegisterLibFunc(&sgemm, lib, "cblas_sgemm")
	if _, err := purego.Dlsym(lib, "openblas_set_num_threads"); err == nil {
		var setThreads func(int32)
		purego.RegisterLibFunc(&setThreads, lib, "openblas_set_num_threads")
		setThreads(int32(threads))
	}
	version := ""
	if _, err := purego.Dlsym(lib, "openblas_get_config"); err == nil {
		var config func() string
		purego.RegisterLibFunc(&config, lib, "openblas_get_config")
		if f := strings.Fields(config()); len(f) > 1 && f[0] == "OpenBLAS" {
			version = " " + f[1]
		}
	}
	f := func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
		tA, tB := int32(cblasNoTrans), int32(cblasNoTrans)
		if transA {
			tA = cblasTrans
		}
		if transB {
			tB = cblasTrans
		}
		var pa, pb *float32
		if k > 0 {
			pa, pb = &a[0], &b[0]
		}
		sgemm(cblasRowMajor, tA, tB, int32(m), int32(n), int32(k), alpha, pa, int32(lda), pb, int32(ldb), beta, &c[0], int32(ldc))
		runtime.KeepAlive(a)
		runtime.KeepAlive(b)
		runtime.KeepAlive(c)
	}
	return fmt.Sprintf("openblas%s (%d threads)", version, threads), f, nil
}
