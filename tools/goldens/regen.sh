#!/usr/bin/env bash
# Recomputes every committed numeric golden with the independent references,
# over the checkpoints the Go generator writes (weights/testmodel):
#
#   inference/devicetest/testdata/golden/    lens_ref.py (torch, float64)
#   inference/testdata/golden/tuned-*.json   lens_ref.py --tuned
#   inference/devicetest/testdata/lenses/    make_tuned.py
#   weights/testdata/golden/*.json           weights/testdata/safetensors_stats.py (numpy)
#   weights/tokenizer/testdata/corpus.golden gpt2_bpe.py, through the test's -tokupdate
#   weights/tunedlens/testdata/lenses/       make_tuned.py, through lenses.sh
#   inference/testdata/compare/              lens_ref.py --compare-*, through compare.sh
#
# Each golden records the sha256 of the model.safetensors it was computed on;
# tests compare it with the checkpoint testmodel generates now and fail with a
# hint to run this script when they differ. Run it after changing the
# generator, from anywhere:
#
#   bash tools/goldens/regen.sh
#
# Needs Go, /usr/bin/python3 with torch, numpy and regex, and the reference
# (shared/reference beside the repository, or $LOGITLENS_REFERENCE).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ref=${LOGITLENS_REFERENCE:-$root/../shared/reference}
py=/usr/bin/python3
[ -f "$ref/lens_ref.py" ] || { echo "regen.sh: no lens_ref.py in $ref (set LOGITLENS_REFERENCE)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
models=$work/models
(cd "$root" && go build -o "$work/testmodel" ./tools/testmodel)
for name in tiny-f32 tiny-seed11 tiny-f16 tiny-bf16 tiny-mixed tiny-prefix tiny-lmhead small-shape xl-1layer; do
  "$work/testmodel" "$name" "$models/$name"
done
# GPT-2's vocab.json and merges.txt (the built-in model's copy), which the
# reference tokenizer checks by sha256.
export GPT2_BPE_DIR=$models/tiny-f32

echo "== weights/testdata/golden"
for name in tiny-f32 tiny-f16 tiny-bf16 tiny-mixed tiny-prefix tiny-lmhead small-shape; do
  "$py" "$root/weights/testdata/safetensors_stats.py" "$models/$name" >"$root/weights/testdata/golden/$name.json"
done

echo "== weights/tokenizer/testdata/corpus.golden"
(cd "$root" && LOGITLENS_REFERENCE=$ref go test -count=1 ./weights/tokenizer -run TestTokenizerGolden -tokupdate)

echo "== weights/tunedlens/testdata/lenses"
LOGITLENS_REFERENCE=$ref bash "$root/weights/tunedlens/testdata/lenses.sh" "$models/tiny-f32"

echo "== inference/devicetest/testdata/lenses"
# The conformance suite embeds its own two tuned lenses (the translators of
# f32 and nobias above; f32 without the unembed hash).
dl=$root/inference/devicetest/testdata/lenses
"$py" "$ref/make_tuned.py" "$models/tiny-f32" --out "$dl/f32" --seed 1 >/dev/null
"$py" "$ref/make_tuned.py" "$models/tiny-f32" --out "$dl/nobias" --seed 4 --no-bias >/dev/null

echo "== inference/devicetest/testdata/golden, inference/testdata/golden"
out=$root/inference/devicetest/testdata/golden
tuned=$root/inference/testdata/golden
rm -f "$out"/*.json "$tuned"/tuned-*.json
lens() { # golden-file model-dir lens_ref.py-args...
  local file=$1 dir=$2
  shift 2
  "$py" "$ref/lens_ref.py" "$dir" --dtypes f64 --topk 10 --out "$file" "$@"
}
lens "$out/eiffel.json" "$models/tiny-f32" --prompt "The Eiffel Tower is in the city of"
lens "$out/eiffel-bos.json" "$models/tiny-f32" --prompt "The Eiffel Tower is in the city of" --prepend-bos
lens "$out/unicode.json" "$models/tiny-f32" --prompt $'Caf\u00e9 na\u00efve \u2014 \U0001F600 emoji,\n\ttabs  and  spaces; \u6771\u4eac \u00fcber'
lens "$out/long-seed11.json" "$models/tiny-seed11" --prompt "It was a bright cold day in April, and the clocks were striking thirteen. Winston Smith, his chin nuzzled into his breast in an effort to escape the vile wind, slipped quickly through the glass doors of Victory Mansions, though not quickly enough to prevent a swirl of gritty dust from entering along with him."
lens "$out/mixed.json" "$models/tiny-mixed" --prompt "The quick brown fox jumps over the lazy dog" --prepend-bos
lens "$out/lmhead.json" "$models/tiny-lmhead" --prompt "Hello world, hello lens"
lens "$out/small-shape.json" "$models/small-shape" --prompt "The Eiffel Tower is in the city of"

# Tuned lenses (weights/tunedlens/testdata/lenses, rewritten above for this
# tiny-f32): lens_ref.py --tuned applies translator l to h[l], l < n_layer.
lenses=$root/weights/tunedlens/testdata/lenses
lens "$tuned/tuned-f32.json" "$models/tiny-f32" --prompt "The Eiffel Tower is in the city of" --tuned "$lenses/f32"
lens "$tuned/tuned-bf16.json" "$models/tiny-f32" --prompt "Hello world, hello lens" --prepend-bos --tuned "$lenses/bf16-prefixed"
lens "$tuned/tuned-nobias.json" "$models/tiny-f32" --prompt $'Caf\u00e9 na\u00efve \u2014 tabs\tand spaces' --tuned "$lenses/nobias"
lens "$tuned/tuned-legacy.json" "$models/tiny-f32" --prompt "The quick brown fox jumps over the lazy dog" --tuned "$lenses/legacy-f32"
lens "$out/tuned-f32.json" "$models/tiny-f32" --prompt "The Eiffel Tower is in the city of" --tuned "$dl/f32"
lens "$out/tuned-nobias.json" "$models/tiny-f32" --prompt "Hello world, hello lens" --prepend-bos --tuned "$dl/nobias"

# resid_mid rows have no reference row of their own. Zeroing block i's MLP
# output projection (weight and bias) makes the reference's h[i] equal the
# real model's resid_mid of block i, so its row i is the lens of resid_mid.
for i in 0 1; do
  d=$work/eiffel-mid$((i + 1))
  mkdir -p "$d"
  cp "$models/tiny-f32"/*.json "$models/tiny-f32"/*.txt "$d"/
  "$py" - "$ref" "$models/tiny-f32/model.safetensors" "$d/model.safetensors" "$i" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import make_model, lens_ref
W, _ = lens_ref.read_safetensors(sys.argv[2])
for k in ("h.%s.mlp.c_proj.weight" % sys.argv[4], "h.%s.mlp.c_proj.bias" % sys.argv[4]):
    W[k] = W[k] * 0
make_model.write_safetensors(sys.argv[3], [(k, "F32", v.shape, v.astype("<f4").tobytes()) for k, v in W.items()])
PY
  lens "$out/eiffel-mid$((i + 1)).json" "$d" --prompt "The Eiffel Tower is in the city of"
done

# GPT-2 xl's geometry at every position: <|endoftext|> then 1023 ids drawn
# from the narrow vocabulary. The reference's probe ids include GPT-2's
# 1748 and 50256, outside this vocabulary: probe ids that exist here instead
# (the last one <|endoftext|>, as in GPT-2's list).
vocab=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$models/xl-1layer/config.json")
ids=$("$py" -c 'import random, sys; v = int(sys.argv[1]); r = random.Random(1600); print(",".join(map(str, [v - 1] + [r.randrange(v - 1) for _ in range(1023)])))' "$vocab")
"$py" - "$ref" "$models/xl-1layer" "$ids" "$out/xl-1layer.json" "$vocab" <<'PY'
import sys
ref, model, ids, out, vocab = sys.argv[1:]
sys.path.insert(0, ref)
import lens_ref
lens_ref.PROBE_IDS = [0, 13, 198, 262, 464, int(vocab) - 1]
sys.argv = ["lens_ref.py", model, "--ids", ids, "--dtypes", "f64", "--topk", "5", "--out", out]
lens_ref.main()
PY

echo "== inference/testdata/compare"
LOGITLENS_REFERENCE=$ref bash "$root/tools/goldens/compare.sh"

ls -l "$out" "$tuned" "$root/weights/testdata/golden"
echo "regen.sh: done; review with git diff --stat"
