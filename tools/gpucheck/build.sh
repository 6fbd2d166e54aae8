#!/bin/sh
# build.sh builds, on a development machine, what the GPU check carries to a
# GPU box that has only the NVIDIA driver and cuBLAS: three linux/amd64
# binaries without cgo (they load the driver and cuBLAS with dlopen, through
# glibc's loader), gzipped into build/gpucheck/ (ignored by git):
#
#   gpucheck.gz    the check: agreement with the CPU device, CUDA-event times
#   cuda.test.gz   inference/cuda's tests, whose TestGPUConformance runs the
#                  conformance suite (inference/devicetest) on the real GPU
#   logitlens.gz   the program itself, for the CLI's own GPU paths
#
# No checkpoint travels: every binary writes weights/testmodel's checkpoints
# itself. The device tool sends the working tree and the carried paths, 64
# MiB in all; this script says how much that is. Then run gpu-check.sh
# there (README.md beside this file gives the exact call).
set -eu
cd "$(dirname "$0")/../.."
out=build/gpucheck
rm -rf "$out"
mkdir -p "$out"
export CGO_ENABLED=0 GOOS=linux GOARCH=amd64
go build -trimpath -ldflags="-s -w" -o "$out/gpucheck" ./tools/gpucheck
go test -c -trimpath -ldflags="-s -w" -o "$out/cuda.test" ./inference/cuda
go build -trimpath -ldflags="-s -w" -o "$out/logitlens" .
gzip -9 "$out/gpucheck" "$out/cuda.test" "$out/logitlens"
git rev-parse HEAD >"$out/commit"
carry=$(du -cb "$out"/* | tail -1 | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | awk '$2 == "total" {s += $1} END {print s + 0}')
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | awk '$2 == "total" {s += $1} END {print s + 0}')
total=$((carry + tree + untracked))
echo "build/gpucheck: $((carry / 1048576)) MiB; with the working tree ($((tree / 1048576)) MiB tracked, $((untracked / 1048576)) MiB untracked) $((total / 1048576)) of the device tool's 64 MiB"
if [ "$total" -gt $((64 * 1048576)) ]; then
	echo "too large for one upload: remove untracked files or carry less" >&2
	exit 1
fi
