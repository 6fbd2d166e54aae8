// Package cuda runs GPT-2's forward pass and the logit lens on an NVIDIA GPU.
//
// Design. The CUDA driver (libcuda.so.1) and cuBLAS are loaded at run time
// with dlopen (github.com/ebitengine/purego), so one binary, built with or
// without cgo, runs everywhere: Open says exactly why CUDA is unusable (no
// driver, cuInit's error, no device, no cuBLAS) and the caller falls back to
// the CPU. Nothing here imports package inference; inference imports this
// package and maps its small types (Config, Weights, Cell).
//
// Memory lives on the device: a Model uploads the weights once; a State
// holds one prompt's KV cache and residual streams. GEMMs go through
// cuBLAS (row-major products by the column-major transposition trick,
// gemm.go; TF32 off unless asked for, so results stay float32-exact).
// Our own kernels (kernels/*.cu, one op per file, compiled to PTX by
// gen.sh and embedded) do embedding, layer norm, bias add, residual add,
// GELU, causal attention on the KV cache and the lens reduction. The lens
// projects every requested row in one (R·n)×C · C×V GEMM against the
// resident unembedding, then reduces each row on the device to its softmax
// statistics, the ranks of the final top-1, a target and each position's
// next token, and its top-k: only those cross the bus.
//
// Libraries are searched for in this order. The driver: LOGITLENS_CUDA_DRIVER
// if set; else the loader's search for libcuda.so.1, then Debian multiarch,
// /usr/lib64, WSL and NVIDIA container paths. cuBLAS: LOGITLENS_CUBLAS (a
// file, or a directory searched for .13, .12, .11); else each soname, newest
// first and none newer than the driver's CUDA release, through the loader's
// search, then CUDA_HOME, /usr/local/cuda*, multiarch, conda and the NVIDIA
// wheels PyTorch installs (site-packages/nvidia/*/lib) of the Python on PATH,
// an activated venv or conda environment and ~/.local; a library that loads
// but cannot create a handle is passed over. libcublasLt is preloaded from
// cuBLAS's directory. Every "cannot use CUDA here" error wraps
// ErrUnavailable and lists what was tried.
//
// Context and threads: the device's primary context (cuDevicePrimaryCtxRetain;
// cuCtxCreate's signature changed in CUDA 13) and the legacy default stream,
// so every call is ordered after the one before; each public call runs with
// the device locked, on a locked OS thread with the context current. Symbols
// are the _v2 ABI every driver since CUDA 4 exports.
//
// PTX with nvcc, not NVRTC: gen.sh (go generate) compiles the kernels to PTX
// for compute_75 (the oldest target nvcc 13 accepts) with nvcc, and the PTX
// is committed and embedded; the driver JIT-compiles it for the GPU it finds
// (PTX is forward-compatible). NVRTC was
// rejected: another large run-time library tied to a toolkit version, compile
// errors that would surface only on GPU boxes, and source that is not the
// exact code that runs. The cost is that editing a .cu needs nvcc (Debian's
// nvidia-cuda-toolkit, 11.8); TestPTXIsCurrent fails when the committed PTX
// differs from a fresh run of the nvcc release it names (ptxNVCC), and skips
// without that release; TestPTXAssembles runs ptxas when it is there.
//
// Every driver and cuBLAS call goes through two small interfaces (driver.go),
// so the host-side logic (module loading, launch shapes, buffer sizes, GEMM
// arguments, the order of operations) is tested on machines without a GPU
// against an emulated device that runs Go versions of the kernels
// (Emulator, emulator.go). It is exported so that the tests of other
// packages (the device conformance suite, the lifetime tests of inference
// and serve) can run the CUDA device too; the program never refers to it,
// so the linker leaves it out of the binary.
//
// Conventions are inference's (see its package doc): rows run h[0..L],
// ln_f once per row, entropy and KL(P_final ‖ P_row) in nats, rank = the
// number of strictly larger logits, top-k descending with ties to the
// smaller id. Shape letters: T positions in this step, P positions so far,
// C = n_embd, H = n_head, D = C/H, V = vocabulary, L = n_layer, R lens rows,
// n positions per lens chunk.
package cuda
