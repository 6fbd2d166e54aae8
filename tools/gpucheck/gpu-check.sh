#!/bin/sh
# gpu-check.sh: the CUDA engine's checks and benchmarks on a GPU box with no
# Go toolchain (seen target: driver 580, CUDA 13, PyTorch; never run yet).
#
# On a development machine, from the repository root, build what it carries
# (linux/amd64, no cgo):
#
#	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -o gpucheck ./tools/gpucheck
#	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -o logitlens .
#	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -o testmodel ./tools/testmodel
#
# and copy gpucheck, logitlens, testmodel and tools/gpucheck/gpu-check.sh (or
# a ready GPT-2-small-shape checkpoint directory instead of testmodel) to the
# box. There:
#
#	sh gpu-check.sh [MODEL_DIR]
#
# It prints the GPU, then gpucheck's table for T = 16, 128, 1024: the full
# lens and one appended token timed with CUDA events, the kernel breakdown,
# and every cell's agreement with the CPU engine (top-k ids, |Δprob| ≤ 1e-4).
# It also runs `logitlens bench --device cuda` and compares
# `logitlens lens --format json` on the CPU and on CUDA.
#
# Environment: GPUCHECK, LOGITLENS, TESTMODEL (binaries; default ./gpucheck,
# ./logitlens, ./testmodel),
# TOKENS (default 16,128,1024), RUNS (default 7), LOGITLENS_CUBLAS (cuBLAS
# library or directory when it is not found by itself; PyTorch's wheels keep
# it in site-packages/nvidia/cu13/lib or nvidia/cublas/lib, which are searched).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
gpucheck=${GPUCHECK:-./gpucheck}
logitlens=${LOGITLENS:-./logitlens}
testmodel=${TESTMODEL:-./testmodel}
tokens=${TOKENS:-16,128,1024}
runs=${RUNS:-7}
model=${1:-small-shape}

echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>/dev/null || echo "(nvidia-smi unavailable)"

if [ ! -f "$model/model.safetensors" ]; then
	if [ -x "$testmodel" ]; then
		echo "== writing weights/testmodel's small-shape checkpoint in $model"
		"$testmodel" small-shape "$model"
	else
		ref=""
		for f in ./make_model.py "$here/make_model.py" "$here/../../../shared/reference/make_model.py"; do
			[ -f "$f" ] && ref=$f && break
		done
		[ -n "$ref" ] || { echo "no checkpoint at $model, and neither $testmodel nor make_model.py to make one" >&2; exit 1; }
		echo "== making a GPT-2-small-shape checkpoint (make_model.py --size small-shape --seed 1) in $model"
		python3 "$ref" --out "$model" --size small-shape --seed 1 >/dev/null
	fi
fi

echo "== gpucheck (CUDA engine vs CPU engine; CUDA events)"
"$gpucheck" -model "$model" -tokens "$tokens" -runs "$runs"

if [ -x "$logitlens" ] && "$logitlens" bench --help 2>&1 | grep -q -- '--device'; then
	echo "== logitlens bench --device cuda"
	"$logitlens" bench --device cuda --model "$model" --tokens "$tokens" || echo "(bench failed)"
	echo "== logitlens lens: CPU vs CUDA"
	prompt="The quick brown fox jumps over the lazy dog because it was"
	"$logitlens" lens --device cpu --model "$model" --prompt "$prompt" --format json -o cpu.json
	if ! "$logitlens" lens --device cuda --model "$model" --prompt "$prompt" --format json -o cuda.json; then
		echo "(lens --device cuda failed: is the CUDA engine wired into this logitlens?)"
		exit 0
	fi
	python3 - cpu.json cuda.json <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
print("devices:", a.get("device"), "vs", b.get("device"))
dp, mism, n = 0.0, 0, 0
for ra, rb in zip(a["cells"], b["cells"]):
    for ca, cb in zip(ra, rb):
        for ta, tb in zip(ca["top"], cb["top"]):
            n += 1
            d = abs(ta["prob"] - tb["prob"])
            dp = max(dp, d)
            if ta["id"] != tb["id"] and d > 1e-6:
                mism += 1
print("| cells | top-k ids differing | max |dprob| | verdict |")
print("|---|---|---|---|")
print("| %d | %d of %d | %.1e | %s |" % (sum(map(len, a["cells"])), mism, n, dp,
      "PASS" if mism == 0 and dp <= 1e-4 else "FAIL"))
PY
else
	echo "== (skipped) logitlens bench/lens --device cuda: the carried logitlens has no CUDA engine wired in yet"
fi
