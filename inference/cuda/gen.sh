#!/bin/sh
# gen.sh compiles each kernels/*.cu into ptx/*.ptx with nvcc; `go generate
# ./inference/cuda` runs it. The PTX is committed and embedded (kernels.go),
# so building logitlens needs no CUDA toolkit; the driver JIT-compiles the
# PTX for whatever GPU it finds. compute_75 (Turing) is the target: PTX is
# forward-compatible, so newer GPUs (sm_80, sm_90, sm_100, …) JIT it too,
# and it is the oldest virtual architecture nvcc 13 still accepts (it
# refuses compute_70), so every nvcc from 11.8 to 13 can run this script.
# The committed PTX comes from one release, named by kernels_test.go
# (ptxNVCC): its PTX ISA decides the oldest driver that loads it, and the
# test checks that the committed files equal a fresh run of that release
# when it is on PATH.
#
#   NVCC            the compiler (default: nvcc on PATH)
#   PTX_ARCH        the virtual architecture (default: compute_75)
#   OUT             the output directory (default: ptx)
set -eu
cd "$(dirname "$0")"
nvcc=${NVCC:-nvcc}
arch=${PTX_ARCH:-compute_75}
out=${OUT:-ptx}
mkdir -p "$out"
for f in kernels/*.cu; do
	b=$(basename "$f" .cu)
	"$nvcc" --ptx -arch="$arch" -O3 -o "$out/$b.ptx" "$f"
done
