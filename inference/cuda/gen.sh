#!/bin/sh
# gen.sh compiles each kernels/*.cu into ptx/*.ptx with nvcc; `go generate
# ./inference/cuda` runs it. The PTX is committed and embedded (kernels.go),
# so building logitlens needs no CUDA toolkit; the driver JIT-compiles the
# PTX for whatever GPU it finds. compute_70 (Volta) is the oldest target we
# generate for: PTX is forward-compatible, so newer GPUs (sm_80, sm_90, …)
# JIT it too. kernels_test.go checks that the committed PTX equals a fresh
# run when the same nvcc release is on PATH.
#
#   NVCC            the compiler (default: nvcc on PATH)
#   PTX_ARCH        the virtual architecture (default: compute_70)
#   OUT             the output directory (default: ptx)
set -eu
cd "$(dirname "$0")"
nvcc=${NVCC:-nvcc}
arch=${PTX_ARCH:-compute_70}
out=${OUT:-ptx}
mkdir -p "$out"
for f in kernels/*.cu; do
	b=$(basename "$f" .cu)
	"$nvcc" --ptx -arch="$arch" -O3 -o "$out/$b.ptx" "$f"
done
