#!/bin/sh
# gpu-check.sh runs the GPU check on a GPU box with the NVIDIA driver and
# cuBLAS and nothing else (no Go, no Python, no network), from what
# build.sh made on a development machine:
#
#	sh tools/gpucheck/gpu-check.sh [BUILD_DIR]     (default build/gpucheck)
#
# 1. gpucheck: every lens cell of three checkpoints it writes itself
#    (tiny-f32, small-shape, xl-1layer) on the GPU against the CPU device,
#    the self-check of --device auto, and GPT-2 small's times with CUDA
#    events, TF32 off and on, against the goals;
# 2. the conformance suite (inference/devicetest) on the GPU: every
#    statistic against the float64 reference's goldens, KV-cache appends,
#    ties, NaN/Inf rows, cancellation, lifetime;
# 3. logitlens itself: version (the CUDA status), lens with --device auto
#    (which must pick the GPU, silently) and --device cuda, and
#    bench --device cuda.
#
# Each step has its own time limit, so the whole fits one 10-minute device
# run. Reports go to $OUT (the device tool brings them back) or a temporary
# directory. Exit status: 0 when every step passed, else 1.
set -u
build=${1:-build/gpucheck}
out=${OUT:-$(mktemp -d)}
work=$(mktemp -d)
bin=$work/bin
mkdir -p "$bin"
for f in gpucheck cuda.test logitlens; do
	if ! gzip -dc "$build/$f.gz" >"$bin/$f"; then
		echo "gpu-check: $build/$f.gz missing: run tools/gpucheck/build.sh first" >&2
		exit 1
	fi
	chmod +x "$bin/$f"
done
status=0
step() { echo; echo "== $*"; }
failed() { echo "FAILED: $*"; status=1; }

step "GPU (built from commit $(cat "$build/commit" 2>/dev/null || echo unknown))"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm --format=csv,noheader 2>&1 || echo "(nvidia-smi unavailable)"

step "gpucheck: the CUDA device against the CPU device; CUDA-event times"
timeout 270 "$bin/gpucheck" -dir "$work/models" -json "$out/gpucheck.json" >"$out/gpucheck.md" 2>&1
rc=$?
cat "$out/gpucheck.md"
if [ "$rc" -eq 2 ]; then
	echo "FAIL: no GPU to check here (gpucheck says why above)"
	exit 1
fi
[ "$rc" -eq 0 ] || failed "gpucheck exited with $rc (1: disagreement, 124: timed out)"

step "conformance suite on the GPU (go test -run TestGPUConformance ./inference/cuda)"
(cd "$work" && timeout 150 "$bin/cuda.test" -test.run '^TestGPUConformance$' -test.v -test.timeout 140s) >"$out/conformance.txt" 2>&1
rc=$?
grep -E '^\s*--- (PASS|FAIL|SKIP)|^(PASS|FAIL|ok)|GPU:|_test\.go:[0-9]+:' "$out/conformance.txt" | head -80
if grep -q -- '--- SKIP: TestGPUConformance' "$out/conformance.txt"; then
	failed "the conformance suite found no GPU"
fi
[ "$rc" -eq 0 ] || failed "the conformance suite exited with $rc"

step "logitlens on the GPU"
m=$work/models
{
	"$bin/logitlens" version
	prompt="The Eiffel Tower is in the city of"
	for d in auto cuda; do
		echo "-- logitlens lens --device $d --model tiny-f32"
		timeout 40 "$bin/logitlens" lens --device "$d" --model "$m/tiny-f32" --prompt "$prompt" --format json -o "$work/lens-$d.json" 2>"$work/lens-$d.err"
		echo "exit $?; stderr: $(cat "$work/lens-$d.err")"
		grep -o '"device": *"[^"]*"' "$work/lens-$d.json"
	done
	echo "-- logitlens bench --device cuda --model small-shape"
	timeout 80 "$bin/logitlens" bench --device cuda --model "$m/small-shape" --tokens 16,128,1024 --runs 7
	echo "exit $?"
} >"$out/logitlens.txt" 2>&1
cat "$out/logitlens.txt"
for d in auto cuda; do
	grep -q '"device": *"cuda' "$work/lens-$d.json" 2>/dev/null || failed "lens --device $d did not run on the GPU"
done
[ -s "$work/lens-auto.err" ] && failed "lens --device auto wrote to stderr on a GPU that passes its self-check"
grep '^exit ' "$out/logitlens.txt" | grep -qv '^exit 0' && failed "a logitlens command failed"

step "verdict"
if [ "$status" -eq 0 ]; then echo "PASS"; else echo "FAIL"; fi
rm -rf "$work"
exit "$status"
