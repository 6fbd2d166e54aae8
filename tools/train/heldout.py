#!/usr/bin/python3
"""The held-out test passage of the built-in model, and its accuracy as the reference lens sees it.

  heldout.py select --val-text work/data/brown_val.txt --bpe gpt2_bpe.py --vocab-dir DIR --out heldout.txt
      writes whole sentences of one validation file (cn07, adventure fiction) up to --max-tokens GPT-2 tokens.
  heldout.py score lens.json
      reads the JSON of lens_ref.py run on that passage and prints next-token top-1/top-10 accuracy of the final
      row: position t predicts token t+1, so a passage of N tokens scores N-1 predictions.
"""
import argparse
import importlib.util
import json
import os
import re
import sys

DOC = 21  # index of cn07 among the 25 validation files (prep.py's val_files order)


def select(a):
    spec = importlib.util.spec_from_file_location("gpt2_bpe", a.bpe)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    tok = mod.GPT2BPE(os.path.join(a.vocab_dir, "encoder.json"), os.path.join(a.vocab_dir, "vocab.bpe"))
    with open(a.val_text, encoding="utf-8") as f:
        doc = f.read().split("\n\n")[DOC]
    sentences = re.split(r'(?<=[.?!"]) (?=["A-Z])', doc)
    text = ""
    for s in sentences:
        cand = (text + " " + s) if text else s
        if len(tok.encode(cand)) > a.max_tokens:
            break
        text = cand
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print("%d tokens -> %s" % (len(tok.encode(text)), a.out))


def score(a):
    with open(a.lens_json, encoding="utf-8") as f:
        d = json.load(f)
    ids = d["ids"]
    top = d["results"]["float64"]["top_ids"][-1]  # [T][k] of the final row
    n = len(ids) - 1
    top1 = sum(top[t][0] == ids[t + 1] for t in range(n))
    top10 = sum(ids[t + 1] in top[t][:10] for t in range(n))
    print(json.dumps({"predictions": n, "top1": top1 / n, "top10": top10 / n, "top1_hits": top1, "top10_hits": top10}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("select")
    s.add_argument("--val-text", required=True)
    s.add_argument("--bpe", required=True)
    s.add_argument("--vocab-dir", required=True)
    s.add_argument("--max-tokens", type=int, default=250)
    s.add_argument("--out", required=True)
    c = sub.add_parser("score")
    c.add_argument("lens_json")
    a = ap.parse_args()
    select(a) if a.cmd == "select" else score(a)


if __name__ == "__main__":
    sys.exit(main())
