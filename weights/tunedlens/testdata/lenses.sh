#!/usr/bin/env bash
# Regenerates the tuned-lens fixtures of weights/tunedlens from the
# independent reference (shared/reference/make_tuned.py, torch): small
# lenses for the tiny-f32 checkpoint in the layouts the reader must accept,
# and tensors.json, each tensor as torch.load reads it (shape and sha256 of
# its float32 little-endian bytes). tools/goldens/regen.sh runs it.
# Usage: bash weights/tunedlens/testdata/lenses.sh TINY_F32_DIR
#   (TINY_F32_DIR: go run ./tools/testmodel tiny-f32 DIR writes one)
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
ref=${LOGITLENS_REFERENCE:-$root/../shared/reference}
model=${1:?usage: lenses.sh TINY_F32_DIR}
out=$root/weights/tunedlens/testdata/lenses
rm -rf "$out" && mkdir -p "$out"
tuned() { # name, make_tuned.py args...
  local name=$1; shift
  /usr/bin/python3 "$ref/make_tuned.py" "$model" --out "$out/$name" "$@" >/dev/null
}
tuned f32 --seed 1 --unembed-hash
tuned f16 --seed 2 --dtype f16
tuned bf16-prefixed --seed 3 --dtype bf16 --prefix layer_translators. --extra-unembed
tuned nobias --seed 4 --no-bias
tuned wronghash --seed 1 --wrong-unembed-hash
# the same tensors as f32, saved in torch's legacy (pre-zip) layout
mkdir -p "$out/legacy-f32"
cp "$out/f32/config.json" "$out/legacy-f32/"
/usr/bin/python3 - "$out" <<'PY'
import hashlib, json, os, sys
import torch
out = sys.argv[1]
st = torch.load(os.path.join(out, "f32", "params.pt"))
torch.save(st, os.path.join(out, "legacy-f32", "params.pt"), _use_new_zipfile_serialization=False)
doc = {"generator": "weights/tunedlens/testdata/lenses.sh (make_tuned.py, torch %s)" % torch.__version__, "lenses": {}}
for name in sorted(os.listdir(out)):
    if not os.path.isdir(os.path.join(out, name)):
        continue
    st = torch.load(os.path.join(out, name, "params.pt"))
    doc["lenses"][name] = {k: {"shape": list(v.shape), "sha256": hashlib.sha256(v.float().numpy().astype("<f4").tobytes()).hexdigest()}
                           for k, v in st.items()}
json.dump(doc, open(os.path.join(out, "tensors.json"), "w"), indent=1, sort_keys=True)
PY
