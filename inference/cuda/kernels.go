package cuda

//go:generate sh gen.sh

import (
	"embed"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// ptxFS holds the PTX that gen.sh compiled from kernels/*.cu with nvcc
// (compute_75, JIT-compiled by the driver for the GPU it finds). Embedding
// PTX rather than compiling CUDA C at run time with NVRTC keeps the run-time
// dependencies to the driver and cuBLAS (NVRTC is another ~60 MB library
// that GPU boxes without a toolkit lack) and makes the exact code that runs
// reviewable in the repository; the cost is that changing a kernel needs
// nvcc and `go generate` (the freshness test catches a stale PTX).
//
//go:embed ptx/*.ptx
var ptxFS embed.FS

// blockThreads is BLOCK in kernels/common.cuh: the block size of every kernel.
const blockThreads = 256

// maxTopK is MAXK in kernels/lens_stats.cu.
const maxTopK = 50

// kernelModules maps each PTX module (ptx/<name>.ptx, from kernels/<name>.cu)
// to the kernels it defines.
var kernelModules = map[string][]string{
	"embedding":  {"embed_forward"},
	"layernorm":  {"layernorm_forward"},
	"gelu":       {"gelu_forward"},
	"bias_add":   {"add_bias"},
	"residual":   {"residual_add"},
	"attention":  {"kv_append", "attention_forward"},
	"lens_stats": {"lens_final", "lens_stats"},
}

// kernelNames lists every kernel, sorted.
func kernelNames() []string {
	var n []string
	for _, k := range kernelModules {
		n = append(n, k...)
	}
	slices.Sort(n)
	return n
}

// moduleNames lists the modules, sorted, so loading order is fixed.
func moduleNames() []string {
	var n []string
	for m := range kernelModules {
		n = append(n, m)
	}
	slices.Sort(n)
	return n
}

// loadKernels loads every module and looks up every kernel.
func loadKernels(drv driverAPI) (map[string]Function, error) {
	fns := map[string]Function{}
	for _, m := range moduleNames() {
		src, err := ptxFS.ReadFile("ptx/" + m + ".ptx")
		if err != nil {
			return nil, fmt.Errorf("cuda: embedded %s.ptx: %w", m, err)
		}
		mod, err := drv.LoadModule(string(src))
		if err != nil {
			return nil, fmt.Errorf("cuda: loading %s.ptx: %w", m, err)
		}
		for _, k := range kernelModules[m] {
			f, err := drv.Function(mod, k)
			if err != nil {
				return nil, fmt.Errorf("cuda: %s.ptx: %w", m, err)
			}
			fns[k] = f
		}
	}
	return fns, nil
}

// ptxInfo is what a PTX file declares.
type ptxInfo struct {
	Version string   // PTX ISA, e.g. "7.8"
	Target  string   // e.g. "sm_75"
	Entries []string // .entry names, in order
	// Params holds each entry's parameter types, in order: "u64" for a
	// pointer, "u32" for an int, "f32" for a float.
	Params  map[string][]string
	Release string // the nvcc release in the header, e.g. "11.8, V11.8.89"
}

var (
	ptxVersion = regexp.MustCompile(`(?m)^\.version\s+(\d+\.\d+)\s*$`)
	ptxTarget  = regexp.MustCompile(`(?m)^\.target\s+(\w+)`)
	ptxEntry   = regexp.MustCompile(`(?ms)^\.visible\s+\.entry\s+(\w+)\s*\((.*?)\)`)
	ptxParam   = regexp.MustCompile(`\.param\s+\.(\w+)\s+\w+`)
	ptxRelease = regexp.MustCompile(`(?m)^// Cuda compilation tools, release (.+)$`)
)

// parsePTX checks a PTX file's structure: a .version, a .target, an
// .address_size 64 and at least one .entry.
func parsePTX(src string) (ptxInfo, error) {
	var p ptxInfo
	m := ptxVersion.FindStringSubmatch(src)
	if m == nil {
		return p, fmt.Errorf("cuda: PTX lacks .version")
	}
	p.Version = m[1]
	if m = ptxTarget.FindStringSubmatch(src); m == nil {
		return p, fmt.Errorf("cuda: PTX lacks .target")
	}
	p.Target = m[1]
	if !strings.Contains(src, ".address_size 64") {
		return p, fmt.Errorf("cuda: PTX is not 64-bit (.address_size 64)")
	}
	p.Params = map[string][]string{}
	for _, e := range ptxEntry.FindAllStringSubmatch(src, -1) {
		p.Entries = append(p.Entries, e[1])
		types := []string{}
		for _, m := range ptxParam.FindAllStringSubmatch(e[2], -1) {
			types = append(types, m[1])
		}
		p.Params[e[1]] = types
	}
	if len(p.Entries) == 0 {
		return p, fmt.Errorf("cuda: PTX has no .entry")
	}
	if m = ptxRelease.FindStringSubmatch(src); m != nil {
		p.Release = strings.TrimSpace(m[1])
	}
	return p, nil
}

// launch shapes, one per kind of kernel.

// elementwise covers n elements with one thread each.
func elementwise(n int) (grid, block Dim3) {
	return Dim3{(n + blockThreads - 1) / blockThreads, 1, 1}, Dim3{blockThreads, 1, 1}
}

// perRow runs one block per row.
func perRow(rows int) (grid, block Dim3) {
	return Dim3{rows, 1, 1}, Dim3{blockThreads, 1, 1}
}

// attentionShape runs block (t, h) for T queries and H heads; its dynamic
// shared memory holds the query (D), the scores of the longest row (P) and
// the groups' partial outputs (BLOCK).
func attentionShape(T, H, D, P int) (grid, block Dim3, shared int) {
	return Dim3{T, H, 1}, Dim3{blockThreads, 1, 1}, 4 * (D + P + blockThreads)
}
