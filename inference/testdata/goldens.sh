#!/usr/bin/env bash
# Regenerates the lens goldens from the independent reference
# (shared/reference/lens_ref.py, torch float64). Run testdata/fixtures.sh first.
# Usage: bash inference/testdata/goldens.sh   (from the repo root)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ref=${LOGITLENS_REFERENCE:-$root/../shared/reference}
models=$root/testdata/models
out=$root/inference/testdata/golden
export GPT2_BPE_DIR=$root/testdata/gpt2-vocab/package
mkdir -p "$out"
lens() { # name model args...
  local name=$1 model=$2; shift 2
  /usr/bin/python3 "$ref/lens_ref.py" "$models/$model" --dtypes f64 --topk 10 --out "$out/$name.json" "$@"
}
lens eiffel tiny-f32 --prompt "The Eiffel Tower is in the city of"
lens eiffel-bos tiny-f32 --prompt "The Eiffel Tower is in the city of" --prepend-bos
lens unicode tiny-f32 --prompt $'Caf\u00e9 na\u00efve \u2014 \U0001F600 emoji,\n\ttabs  and  spaces; \u6771\u4eac \u00fcber'
lens long-seed11 tiny-seed11 --prompt "It was a bright cold day in April, and the clocks were striking thirteen. Winston Smith, his chin nuzzled into his breast in an effort to escape the vile wind, slipped quickly through the glass doors of Victory Mansions, though not quickly enough to prevent a swirl of gritty dust from entering along with him."
lens mixed tiny-mixed --prompt "The quick brown fox jumps over the lazy dog" --prepend-bos
lens lmhead tiny-lmhead --prompt "Hello world, hello lens"
lens small-shape small-shape --prompt "The Eiffel Tower is in the city of"

# resid_mid rows have no reference row of their own. Zeroing block i's MLP
# output projection (weight and bias) makes the reference's h[i] equal the
# real model's resid_mid of block i, so its row i is the lens of resid_mid.
for i in 0 1; do
  d=$(mktemp -d)
  cp "$models/tiny-f32"/*.json "$models/tiny-f32"/*.txt "$d"/
  /usr/bin/python3 - "$ref" "$models/tiny-f32/model.safetensors" "$d/model.safetensors" "$i" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import make_model, lens_ref
W, _ = lens_ref.read_safetensors(sys.argv[2])
for k in ("h.%s.mlp.c_proj.weight" % sys.argv[4], "h.%s.mlp.c_proj.bias" % sys.argv[4]):
    W[k] = W[k] * 0
make_model.write_safetensors(sys.argv[3], [(k, "F32", v.shape, v.astype("<f4").tobytes()) for k, v in W.items()])
PY
  /usr/bin/python3 "$ref/lens_ref.py" "$d" --dtypes f64 --topk 10 --prompt "The Eiffel Tower is in the city of" --out "$out/eiffel-mid$((i+1)).json"
  rm -rf "$d"
done

# Tuned lenses (weights/tunedlens/testdata/lenses, written by make_tuned.py for
# tiny-f32): lens_ref.py --tuned applies translator l to h[l], l < n_layer.
lenses=$root/weights/tunedlens/testdata/lenses
lens tuned-f32 tiny-f32 --prompt "The Eiffel Tower is in the city of" --tuned "$lenses/f32"
lens tuned-bf16 tiny-f32 --prompt "Hello world, hello lens" --prepend-bos --tuned "$lenses/bf16-prefixed"
lens tuned-nobias tiny-f32 --prompt $'Caf\u00e9 na\u00efve \u2014 tabs\tand spaces' --tuned "$lenses/nobias"
lens tuned-legacy tiny-f32 --prompt "The quick brown fox jumps over the lazy dog" --tuned "$lenses/legacy-f32"
