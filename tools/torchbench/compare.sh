#!/bin/sh
# Times the logit lens in logitlens and in PyTorch side by side, in one run,
# and prints the ratios (torch time / logitlens time: above 1 means faster).
#
#   tools/torchbench/compare.sh [MODEL_DIR] [RUNS]
#
# Without MODEL_DIR it writes weights/testmodel's small-shape checkpoint
# (GPT-2 small's shape, random weights) into the output directory with
# tools/testmodel. Needs Go, /usr/bin/python3 with torch and numpy, and jq.
# TOKENS (default 16,64,128) and OUT (default a new temporary directory)
# change the prompt lengths and where results go.
set -eu
cd "$(dirname "$0")/../.."
runs=${2:-7}
tokens=${TOKENS:-16,64,128}
out=${OUT:-$(mktemp -d)}
model=${1:-}
if [ -z "$model" ]; then
	model=$out/small-shape
	go run ./tools/testmodel small-shape "$model"
fi
go build -o "$out/logitlens" .
echo "logitlens:"
"$out/logitlens" bench --model "$model" --tokens "$tokens" --runs "$runs" --format json >"$out/go.json"
echo "torch:"
OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tools/torchbench/torch_lens.py "$model" --tokens "$tokens" --runs "$runs" --threads 2 --json >"$out/torch.json"
echo "results in $out"
jq -r -n --slurpfile g "$out/go.json" --slurpfile t "$out/torch.json" '
  "cpu: \($g[0].cpu), \($g[0].threads) threads; weights \($g[0].weights_mb | round) MB, peak RSS \($g[0].peak_rss_mb | round) MB, load to first lens \($g[0].load_ms | round) ms, memory read \($g[0].mem_read_gbs * 10 | round / 10) GB/s",
  "blas: \($g[0].blas)   torch \($t[0].torch) (\($t[0].blas), \($t[0].threads) threads, OMP_WAIT_POLICY=\($t[0].omp_wait_policy))",
  "tokens  full ms: logitlens  torch  ratio   +1 token ms: logitlens  torch  ratio   stats over GEMM",
  ($g[0].results | to_entries[] | .value as $r | ($t[0].results[.key]) as $q |
    "\($r.tokens)\t\($r.full_ms.median | round)\t\($q.full_ms.median | round)\t\(($q.full_ms.median / $r.full_ms.median * 100 | round) / 100)x\t\($r.incremental_ms.median * 10 | round / 10)\t\($q.incremental_ms.median * 10 | round / 10)\t\(($q.incremental_ms.median / $r.incremental_ms.median * 100 | round) / 100)x\t\($r.stats_overhead * 100 | round)%")'
