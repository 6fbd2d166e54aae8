package cuda

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
)

// Environment variables that point the loader elsewhere.
const (
	// EnvDriver names the driver library (libcuda.so.1) to load instead of searching.
	EnvDriver = "LOGITLENS_CUDA_DRIVER"
	// EnvCUBLAS names the cuBLAS library, or a directory holding it, to load instead of searching.
	EnvCUBLAS = "LOGITLENS_CUBLAS"
)

// cublasNames are the cuBLAS sonames tried, newest first: CUDA 13, 12, 11.
var cublasNames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"}

// linuxArch is the Debian multiarch / CUDA targets triple prefix.
func linuxArch() string {
	if runtime.GOARCH == "arm64" {
		return "aarch64"
	}
	return "x86_64"
}

// driverCandidates lists where libcuda.so.1 is looked for: the dynamic
// loader's own search first (LD_LIBRARY_PATH, ld.so.cache, /lib, /usr/lib),
// then the usual driver locations (Debian multiarch, RPM lib64, WSL,
// NVIDIA's container toolkit). An explicit path replaces the search.
func driverCandidates(explicit string) []string {
	if explicit != "" {
		return []string{explicit}
	}
	a := linuxArch()
	return []string{
		"libcuda.so.1",
		"/usr/lib/" + a + "-linux-gnu/libcuda.so.1",
		"/usr/lib64/libcuda.so.1",
		"/usr/lib/wsl/lib/libcuda.so.1",
		"/usr/local/nvidia/lib64/libcuda.so.1",
	}
}

// cublasDirs are the directories searched for cuBLAS after the loader's own
// search: CUDA toolkits, Debian multiarch, conda, and the NVIDIA wheels that
// PyTorch installs (nvidia/cublas/lib, nvidia/cu13/lib).
func cublasDirs(home string) []string {
	a := linuxArch()
	dirs := []string{
		"/usr/local/cuda/lib64",
		"/usr/local/cuda/targets/" + a + "-linux/lib",
	}
	globs := []string{
		"/usr/local/cuda-*/lib64",
		"/usr/local/cuda-*/targets/" + a + "-linux/lib",
		"/usr/lib/" + a + "-linux-gnu",
		"/opt/conda/lib",
		"/usr/local/lib/python3*/dist-packages/nvidia/*/lib",
		"/usr/local/lib/python3*/site-packages/nvidia/*/lib",
		"/usr/lib/python3*/dist-packages/nvidia/*/lib",
		"/opt/conda/lib/python3*/site-packages/nvidia/*/lib",
	}
	if home != "" {
		globs = append(globs, filepath.Join(home, ".local/lib/python3*/site-packages/nvidia/*/lib"))
	}
	for _, g := range globs {
		m, _ := filepath.Glob(g)
		slices.Sort(m)
		slices.Reverse(m) // newer toolkits (cuda-13.0 > cuda-12.4) first
		dirs = append(dirs, m...)
	}
	return slices.Compact(dirs)
}

// cublasCandidates lists where cuBLAS is looked for. explicit (from
// LOGITLENS_CUBLAS) is a library file, or a directory searched for the
// sonames; otherwise the loader's search comes first, then cublasDirs.
func cublasCandidates(explicit, home string) []string {
	if explicit != "" {
		if st, err := os.Stat(explicit); err == nil && st.IsDir() {
			var c []string
			for _, n := range append(slices.Clone(cublasNames), "libcublas.so") {
				c = append(c, filepath.Join(explicit, n))
			}
			return c
		}
		return []string{explicit}
	}
	c := slices.Clone(cublasNames)
	for _, d := range cublasDirs(home) {
		for _, n := range cublasNames {
			c = append(c, filepath.Join(d, n))
		}
	}
	return c
}

// cublasLtFor returns the cublasLt library beside an absolute cuBLAS path
// (libcublas.so.13 needs libcublasLt.so.13), or "" when there is none.
func cublasLtFor(path string) string {
	if !filepath.IsAbs(path) {
		return ""
	}
	base := filepath.Base(path)
	const p = "libcublas"
	if len(base) < len(p) || base[:len(p)] != p {
		return ""
	}
	lt := filepath.Join(filepath.Dir(path), "libcublasLt"+base[len(p):])
	if _, err := os.Stat(lt); err != nil {
		return ""
	}
	return lt
}
