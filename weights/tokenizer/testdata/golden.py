#!/usr/bin/python3
"""Writes corpus.golden: GPT-2 token ids of each test unit, from the reference.

stdin: one JSON string per line (the units, built by tokCorpusUnits in
weights/tokenizer/tokenizer_test.go). argv[1]: the directory of the
reference gpt2_bpe.py. $GPT2_BPE_DIR: GPT-2's vocab.json + merges.txt (the
test writes the built-in model's copy there).

The reference reads a literal <|endoftext|> as text; Hugging Face (which the
Go tokenizer follows) reads it as the special token 50256. So each unit is
split around the literal, the pieces are encoded by the reference, and 50256
is written between them.

Run through: go test ./weights/tokenizer -run TestTokenizerGolden -tokupdate
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, sys.argv[1])
import gpt2_bpe  # noqa: E402

EOT, EOT_ID = "<|endoftext|>", 50256


def main():
    data = sys.stdin.buffer.read()
    units = [json.loads(line) for line in data.decode("utf-8").split("\n") if line]
    tok = gpt2_bpe.GPT2BPE()  # checks the sha256 of both vocabulary files
    ref = os.path.join(sys.argv[1], "gpt2_bpe.py")
    out = sys.stdout
    out.write("# corpus.golden: GPT-2 ids of each unit of the tokenizer test corpus, one line per unit.\n")
    out.write("# generator: weights/tokenizer/testdata/golden.py + reference gpt2_bpe.py sha256 %s\n"
              % gpt2_bpe.sha256_file(ref))
    out.write("# command: go test ./weights/tokenizer -run TestTokenizerGolden -tokupdate "
              "(runs GPT2_BPE_DIR=<built-in vocab.json + merges.txt> /usr/bin/python3 golden.py REFDIR < units.jsonl)\n")
    out.write("# vocab: encoder.json sha256 %s, vocab.bpe sha256 %s\n"
              % (gpt2_bpe.ENCODER_JSON_SHA256, gpt2_bpe.VOCAB_BPE_SHA256))
    out.write("# special: each unit is split around the literal %s, which is written as %d\n" % (EOT, EOT_ID))
    out.write("# input-sha256: %s\n" % hashlib.sha256(data).hexdigest())
    out.write("# units: %d\n" % len(units))
    for u in units:
        ids = []
        for k, part in enumerate(u.split(EOT)):
            if k:
                ids.append(EOT_ID)
            ids += tok.encode(part)
        out.write(" ".join(map(str, ids)) + "\n")


if __name__ == "__main__":
    main()
