package cuda

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
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

// searchEnv is what the cuBLAS search reads from the environment, apart
// so that tests can point it at made-up layouts.
type searchEnv struct {
	home        string // the user's home directory
	path        string // PATH: the Python installations on it are searched
	virtualEnv  string // VIRTUAL_ENV, an activated venv
	condaPrefix string // CONDA_PREFIX, an activated conda environment
	cudaHome    string // CUDA_HOME (or CUDA_PATH), a toolkit
}

// environment reads the search's variables.
func environment() searchEnv {
	home, _ := os.UserHomeDir()
	cuda := os.Getenv("CUDA_HOME")
	if cuda == "" {
		cuda = os.Getenv("CUDA_PATH")
	}
	return searchEnv{home: home, path: os.Getenv("PATH"), virtualEnv: os.Getenv("VIRTUAL_ENV"),
		condaPrefix: os.Getenv("CONDA_PREFIX"), cudaHome: cuda}
}

// pythonPrefixes lists the Python installations whose site-packages may
// hold NVIDIA's wheels: the activated venv and conda environment, then
// each PATH directory with a python3 (its parent is the prefix, as for
// /opt/torch/.venv/bin/python3), then the usual system and user places.
func (e searchEnv) pythonPrefixes() []string {
	var p []string
	for _, d := range []string{e.virtualEnv, e.condaPrefix} {
		if d != "" {
			p = append(p, d)
		}
	}
	for _, d := range filepath.SplitList(e.path) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		for _, py := range []string{"python3", "python"} {
			if st, err := os.Stat(filepath.Join(d, py)); err == nil && !st.IsDir() {
				p = append(p, filepath.Dir(d))
				break
			}
		}
	}
	p = append(p, "/usr/local", "/usr", "/opt/conda")
	if e.home != "" {
		p = append(p, filepath.Join(e.home, ".local"))
	}
	return p
}

// cublasDirs are the directories searched for cuBLAS after the loader's
// own search: CUDA toolkits (CUDA_HOME, /usr/local/cuda, versioned ones
// newest first), Debian multiarch, conda, and NVIDIA's pip wheels, which
// PyTorch installs: site-packages/nvidia/cublas/lib (CUDA 12) and
// nvidia/cu13/lib (CUDA 13), in every Python installation pythonPrefixes
// finds.
func cublasDirs(e searchEnv) []string {
	a := linuxArch()
	var dirs []string
	if e.cudaHome != "" {
		dirs = append(dirs, filepath.Join(e.cudaHome, "lib64"), filepath.Join(e.cudaHome, "targets", a+"-linux", "lib"))
	}
	dirs = append(dirs,
		"/usr/local/cuda/lib64",
		"/usr/local/cuda/targets/"+a+"-linux/lib",
	)
	globs := []string{
		"/usr/local/cuda-*/lib64",
		"/usr/local/cuda-*/targets/" + a + "-linux/lib",
		"/usr/lib/" + a + "-linux-gnu",
		"/opt/conda/lib",
	}
	for _, p := range e.pythonPrefixes() {
		for _, sp := range []string{"site-packages", "dist-packages"} {
			globs = append(globs, filepath.Join(p, "lib", "python3*", sp, "nvidia", "*", "lib"))
		}
	}
	for _, g := range globs {
		m, _ := filepath.Glob(g)
		slices.Sort(m)
		slices.Reverse(m) // newer toolkits (cuda-13.0 > cuda-12.4), newer Pythons and cu13 > cublas first
		dirs = append(dirs, m...)
	}
	var out []string
	seen := map[string]bool{}
	for _, d := range dirs {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// cublasCandidates lists where cuBLAS is looked for. explicit (from
// LOGITLENS_CUBLAS) is a library file, or a directory searched for the
// sonames; otherwise each soname, newest first, is tried with the loader's
// own search and then in every cublasDirs directory. A driver that reports
// CUDA driverMajor (e.g. 12) skips the sonames of newer CUDA releases, whose
// cuBLAS it could not run; 0 means unknown.
func cublasCandidates(explicit string, e searchEnv, driverMajor int) []string {
	names := cublasNames
	if driverMajor > 0 {
		names = slices.DeleteFunc(slices.Clone(cublasNames), func(n string) bool { return sonameMajor(n) > driverMajor })
	}
	if explicit != "" {
		if st, err := os.Stat(explicit); err == nil && st.IsDir() {
			var c []string
			for _, n := range append(slices.Clone(names), "libcublas.so") {
				c = append(c, filepath.Join(explicit, n))
			}
			return c
		}
		return []string{explicit}
	}
	dirs := cublasDirs(e)
	var c []string
	for _, n := range names {
		c = append(c, n)
		for _, d := range dirs {
			c = append(c, filepath.Join(d, n))
		}
	}
	return c
}

// sonameMajor returns the CUDA major release of a cuBLAS soname:
// libcublas.so.13 → 13.
func sonameMajor(name string) int {
	v, _ := strconv.Atoi(name[strings.LastIndexByte(name, '.')+1:])
	return v
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
