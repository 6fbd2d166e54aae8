#!/usr/bin/python3
"""Times the logit lens in PyTorch, for comparison with `logitlens bench`.

  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tools/torchbench/torch_lens.py MODEL_DIR \
      [--tokens 16,64,128] [--runs 7] [--threads 2] [--json]

The same work as logitlens's bench, in float32: a GPT-2 forward (written
from scratch, as shared/reference/lens_ref.py), ln_f and the unembedding of
every block row (embedding + n_layer) at every position, then each row's
softmax entropy, KL(P_final || P_row), the rank and probability of the final
top-1 and of a target, and the top-10. "incremental" appends one token to a
KV cache of T-1 positions and computes the lens of its column. Prompts are
fixed pseudo-random ids. This is a comparison, not a dependency: it needs
only torch and numpy.
"""
import argparse
import json
import os
import statistics
import struct
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP
import numpy as np  # noqa: E402
import torch  # noqa: E402


def load(model_dir):
    """Reads config.json and model.safetensors (F32) into torch tensors."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    path = os.path.join(model_dir, "model.safetensors")
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    w = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", "float32 checkpoints only"
        a, b = t["data_offsets"]
        arr = np.frombuffer(raw[a:b], dtype=np.float32).reshape(t["shape"])
        w[name.removeprefix("transformer.")] = torch.from_numpy(arr.copy())
    return cfg, w


class GPT2:
    def __init__(self, cfg, w):
        self.cfg, self.w = cfg, w
        self.L, self.H = cfg["n_layer"], cfg["n_head"]
        self.eps = cfg.get("layer_norm_epsilon", 1e-5)
        self.wte = w["wte.weight"]
        self.head = w.get("lm_head.weight", self.wte)

    def ln(self, x, p):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], self.w[p + ".weight"], self.w[p + ".bias"], self.eps)

    def forward(self, ids, cache):
        """Runs ids at positions len(cache[0].k)...; returns the L+1 residual rows [L+1, T, C]."""
        w, C = self.w, self.wte.shape[1]
        p0 = cache[0][0].shape[0] if cache and cache[0] else 0
        T = len(ids)
        x = self.wte[ids] + w["wpe.weight"][p0:p0 + T]
        rows = [x]
        D = C // self.H
        mask = torch.full((T, p0 + T), float("-inf")).triu(p0 + 1)
        for i in range(self.L):
            p = f"h.{i}."
            a = self.ln(x, p + "ln_1")
            qkv = torch.addmm(w[p + "attn.c_attn.bias"], a, w[p + "attn.c_attn.weight"])
            q, k, v = qkv.split(C, dim=1)
            if cache[i]:
                k, v = torch.cat([cache[i][0], k]), torch.cat([cache[i][1], v])
            cache[i] = (k, v)
            qh = q.view(T, self.H, D).transpose(0, 1)
            kh = k.view(-1, self.H, D).transpose(0, 1)
            vh = v.view(-1, self.H, D).transpose(0, 1)
            att = (qh @ kh.transpose(1, 2)) / D ** 0.5 + mask
            y = (att.softmax(-1) @ vh).transpose(0, 1).reshape(T, C)
            x = x + torch.addmm(w[p + "attn.c_proj.bias"], y, w[p + "attn.c_proj.weight"])
            a = self.ln(x, p + "ln_2")
            f = torch.nn.functional.gelu(torch.addmm(w[p + "mlp.c_fc.bias"], a, w[p + "mlp.c_fc.weight"]), approximate="tanh")
            x = x + torch.addmm(w[p + "mlp.c_proj.bias"], f, w[p + "mlp.c_proj.weight"])
            rows.append(x)
        return torch.stack(rows)

    def lens(self, rows, target, k=10):
        """Every statistic of the lens of rows [R, T, C]."""
        z = self.ln(rows, "ln_f") @ self.head.T  # [R, T, V]
        logp = z.log_softmax(-1)
        p = logp.exp()
        entropy = -(p * logp).sum(-1)
        kl = (p[-1] * (logp[-1] - logp)).sum(-1)
        top1 = z[-1].argmax(-1)  # [T]
        z1 = z.gather(-1, top1.view(1, -1, 1).expand(z.shape[0], -1, 1))
        rank1 = (z > z1).sum(-1)
        prob1 = p.gather(-1, top1.view(1, -1, 1).expand(z.shape[0], -1, 1))
        zt = z[..., target:target + 1]
        rankt, probt = (z > zt).sum(-1), p[..., target]
        top = z.topk(k, dim=-1)
        return entropy, kl, rank1, prob1, rankt, probt, top


def timed(runs, f, setup=None):
    t = []
    for i in range(runs + 1):
        if setup:
            setup()
        s = time.perf_counter()
        f()
        if i:
            t.append((time.perf_counter() - s) * 1e3)
    return {"median": statistics.median(t), "min": min(t), "max": max(t)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--tokens", default="16,64,128")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    cfg, w = load(a.model)
    m = GPT2(cfg, w)
    V = m.wte.shape[0]
    rng = np.random.default_rng(1)
    Ts = [int(t) for t in a.tokens.split(",")]
    ids_all = torch.tensor(rng.integers(0, min(V, 50257), max(Ts)))
    out = {"torch": torch.__version__, "threads": a.threads, "blas": torch.__config__.show().split("BLAS_INFO=")[-1].split(",")[0],
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "device": "cpu", "results": []}
    for T in Ts:
        ids = ids_all[:T]
        target = int(ids[-1])

        def full():
            cache = [None] * m.L
            m.lens(m.forward(ids, cache), target)

        state = {}

        def prefix():
            cache = [None] * m.L
            m.forward(ids[:-1], cache)
            state["cache"] = cache

        def append():
            m.lens(m.forward(ids[-1:], state["cache"]), target)

        r = {"tokens": T, "full_ms": timed(a.runs, full), "incremental_ms": timed(a.runs, append, prefix)}
        out["results"].append(r)
        if not a.json:
            print(f"T={T:4d}  full {r['full_ms']['median']:8.1f} ms [{r['full_ms']['min']:.1f}-{r['full_ms']['max']:.1f}]"
                  f"   +1 token {r['incremental_ms']['median']:7.1f} ms [{r['incremental_ms']['min']:.1f}-{r['incremental_ms']['max']:.1f}]",
                  flush=True)
    if a.json:
        json.dump(out, sys.stdout, indent=2)
        print()


if __name__ == "__main__":
    main()
