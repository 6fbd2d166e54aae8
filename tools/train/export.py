#!/usr/bin/python3
"""Export a training checkpoint (best.pt or ckpt.pt) as a Hugging Face GPT-2 checkpoint directory.

Writes, into --out:
  config.json          GPT2LMHeadModel config (tie_word_embeddings: the LM head is wte)
  model.safetensors    written by hand: u64 little-endian header length, JSON header, F16 data; keys without a prefix
  vocab.json           GPT-2's encoder.json, byte for byte
  merges.txt           GPT-2's vocab.bpe, byte for byte

With --embed DIR (weights/builtin/model), also writes the Go package's payload there: the text files
gzip-compressed (level 9, mtime 0, no name: reproducible bytes) as <name>.gz, model.safetensors as is (F16 weights
gain ~8% from gzip, not worth the decompression time), and SHA256SUMS of the files as extracted.
"""
import argparse
import gzip
import hashlib
import json
import os
import shutil

import numpy as np
import torch


def write_safetensors(path, tensors):
    """tensors: ordered {name: np.float16 array}. Data offsets are 8-byte aligned by header padding only."""
    header, offset, blobs = {}, 0, []
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f2").tobytes()
        header[name] = {"dtype": "F16", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def write_embed(src_dir, names, embed_dir):
    os.makedirs(embed_dir, exist_ok=True)
    for f in os.listdir(embed_dir):
        if f.endswith(".gz") or f in names or f == "SHA256SUMS":
            os.remove(os.path.join(embed_dir, f))
    lines = []
    for name in sorted(names):
        with open(os.path.join(src_dir, name), "rb") as f:
            data = f.read()
        lines.append("%s  %s\n" % (hashlib.sha256(data).hexdigest(), name))
        if name.endswith(".safetensors"):
            shutil.copyfile(os.path.join(src_dir, name), os.path.join(embed_dir, name))
            continue
        with open(os.path.join(embed_dir, name + ".gz"), "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as z:
                z.write(data)
    with open(os.path.join(embed_dir, "SHA256SUMS"), "w") as f:
        f.writelines(lines)
    total = sum(os.path.getsize(os.path.join(embed_dir, n)) for n in os.listdir(embed_dir))
    print("embedded payload in %s: %d bytes" % (embed_dir, total))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="best.pt or ckpt.pt from train.py")
    ap.add_argument("--vocab-dir", required=True, help="dir with GPT-2's encoder.json and vocab.bpe")
    ap.add_argument("--out", required=True)
    ap.add_argument("--embed", help="also write the gzip payload of weights/builtin here")
    a = ap.parse_args()

    ck = torch.load(a.checkpoint)
    cfg = dict(ck["cfg"])
    state = ck["model"]
    tensors = {}
    for name in sorted(state):
        t = state[name].detach().float().numpy()
        if not np.isfinite(t).all() or np.abs(t).max() > 65504:
            raise SystemExit("export: %s: not representable in F16" % name)
        tensors[name] = t.astype(np.float16)
    os.makedirs(a.out, exist_ok=True)
    write_safetensors(os.path.join(a.out, "model.safetensors"), tensors)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    shutil.copyfile(os.path.join(a.vocab_dir, "encoder.json"), os.path.join(a.out, "vocab.json"))
    shutil.copyfile(os.path.join(a.vocab_dir, "vocab.bpe"), os.path.join(a.out, "merges.txt"))
    if a.embed:
        write_embed(a.out, ["config.json", "model.safetensors", "vocab.json", "merges.txt"], a.embed)
    print("exported step %s (val loss %s) to %s" % (ck.get("step"), ck.get("val_loss"), a.out))


if __name__ == "__main__":
    main()
