#!/usr/bin/env bash
# Recomputes the comparison goldens (inference/devicetest/testdata/compare/*.json) with
# the independent reference, lens_ref.py --compare-*, over the checkpoints
# weights/testmodel writes: run A, then run B changed in one thing (the
# prompt, longer and shorter; the checkpoint, its bf16-rounded copy and
# another seed; the lens, logit against tuned both ways). Each golden
# records the sha256 of run A's model.safetensors (and the test checks B's
# through its own pin below).
#
#   bash tools/goldens/compare.sh
#
# Needs Go, /usr/bin/python3 with torch, numpy and regex, and the reference
# (shared/reference beside the repository, or $LOGITLENS_REFERENCE).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ref=${LOGITLENS_REFERENCE:-$root/../shared/reference}
py=/usr/bin/python3
[ -f "$ref/lens_ref.py" ] || { echo "compare.sh: no lens_ref.py in $ref (set LOGITLENS_REFERENCE)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
models=$work/models
(cd "$root" && go build -o "$work/testmodel" ./tools/testmodel)
for name in tiny-f32 tiny-bf16 tiny-seed11; do
  "$work/testmodel" "$name" "$models/$name"
done
export GPT2_BPE_DIR=$models/tiny-f32
lenses=$root/weights/tunedlens/testdata/lenses

out=$root/inference/devicetest/testdata/compare
mkdir -p "$out"
rm -f "$out"/*.json
compare() { # golden model-dir lens_ref.py-args...
  local name=$1 dir=$2
  shift 2
  # from the lenses' folder, so that a golden names a tuned lens by its
  # folder's name rather than by this machine's path
  (cd "$lenses" && "$py" "$ref/lens_ref.py" "$dir" --dtypes f64 --topk 10 --out "$out/$name.json" "$@")
}
eiffel="The Eiffel Tower is in the city of"
compare prompt-longer "$models/tiny-f32" --prompt "$eiffel" \
  --compare-prompt "Rome's Colosseum, not the Eiffel Tower, is in the city of"
compare prompt-shorter "$models/tiny-f32" --prompt "$eiffel" --compare-prompt " in the city of"
compare prompt-bos "$models/tiny-f32" --prompt "$eiffel" --compare-prompt "Rome is the city of" --prepend-bos
compare prompt-same "$models/tiny-f32" --prompt "$eiffel" --compare-prompt "$eiffel"
compare model-bf16 "$models/tiny-f32" --prompt "$eiffel" --compare-model "$models/tiny-bf16"
compare model-seed11 "$models/tiny-f32" --prompt "Hello world, hello lens" --compare-model "$models/tiny-seed11"
compare lens-tuned "$models/tiny-f32" --prompt "$eiffel" --compare-tuned f32
compare lens-logit "$models/tiny-f32" --prompt "The quick brown fox jumps over the lazy dog" --tuned f32 --compare-tuned logit

# B's checkpoints, pinned like A's: name and sha256 of model.safetensors.
for name in tiny-bf16 tiny-seed11; do
  printf '%s %s\n' "$name" "$(sha256sum "$models/$name/model.safetensors" | cut -d' ' -f1)"
done >"$out/pins.txt"
ls -l "$out"
