#!/usr/bin/python3
"""Validation perplexity and next-token top-1/top-10 accuracy of an exported checkpoint directory.

Reads model.safetensors (F16) by hand, upcasts to float32 and runs model.GPT2 over brown_val.bin in windows of
n_positions tokens with stride n_positions/2: every token after the first window is scored with at least
n_positions/2 tokens of context (the first window scores all of its tokens). Prints one JSON line.
"""
import argparse
import json
import math

import numpy as np
import torch
import torch.nn.functional as F

from model import GPT2


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F16", name
        s, e = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(raw[8 + n + s:8 + n + e], dtype="<f2").astype(np.float32).reshape(info["shape"]))
    return out


@torch.no_grad()
def score(model, ids, T):
    """(sum NLL, top-1 hits, top-10 hits, scored tokens) over ids with sliding windows."""
    stride = T // 2
    nll, top1, top10, n = 0.0, 0, 0, 0
    start = 0
    while True:
        w = torch.from_numpy(ids[start:start + T + 1].astype(np.int64))[None]
        if w.shape[1] < 2:
            break
        logits = model(w[:, :-1])[0]  # [T,V]
        y = w[0, 1:]
        first = 0 if start == 0 else T - stride
        logits, y = logits[first:], y[first:]
        nll += float(F.cross_entropy(logits, y, reduction="sum"))
        top = logits.topk(10, dim=-1).indices
        top1 += int((top[:, 0] == y).sum())
        top10 += int((top == y[:, None]).any(dim=-1).sum())
        n += len(y)
        if start + T + 1 >= len(ids):
            break
        start += stride
    return nll, top1, top10, n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--val", required=True, help="brown_val.bin from prep.py")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.model_dir + "/config.json") as f:
        cfg = json.load(f)
    model = GPT2(cfg)
    model.load_state_dict(read_safetensors(a.model_dir + "/model.safetensors"))
    model.eval()
    ids = np.fromfile(a.val, dtype=np.uint16)
    nll, top1, top10, n = score(model, ids, cfg["n_positions"])
    print(json.dumps({"tokens": n, "loss": nll / n, "perplexity": math.exp(nll / n),
                      "top1": top1 / n, "top10": top10 / n}))


if __name__ == "__main__":
    main()
