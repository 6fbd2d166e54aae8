#!/usr/bin/python3
"""Train the built-in GPT-2 on the output of prep.py; checkpoints and resumes.

Every batch is a pure function of (seed, step): resuming from a checkpoint replays exactly the run that was
interrupted (no dropout, single thread). A batch row is a random 257-token window (input 256 + shifted target)
from WordNet with probability --wordnet-frac, else from the Brown training files.

Files in --work: ckpt.pt (latest: model, optimizer, step, args), best.pt (weights with the lowest validation
loss so far), log.jsonl (one line per eval). Stop with --max-minutes or --stop-at; the schedule is fixed by
--steps. Resuming with a different --steps changes the schedule from that step on (a deliberate warm restart).
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from model import GPT2, config


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="output dir of prep.py")
    ap.add_argument("--work", required=True, help="checkpoint/log dir")
    ap.add_argument("--seed", type=int, default=1964)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--positions", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr", type=float, default=3e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--wordnet-frac", type=float, default=0.2)
    ap.add_argument("--sampled", type=int, default=4096,
                    help="negatives per step for sampled softmax (0 = full softmax throughout)")
    ap.add_argument("--full-from", type=float, default=0.85,
                    help="fraction of --steps after which the loss is the full softmax")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-windows", type=int, default=24)
    ap.add_argument("--ckpt-minutes", type=float, default=4.0)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (after a checkpoint) after this long; 0 = no limit")
    ap.add_argument("--stop-at", type=int, default=0, help="stop (after a checkpoint) at this step; 0 = at --steps")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resume", action="store_true")
    return ap.parse_args()


def lr_at(a, step):
    """Linear warmup, then cosine from --lr down to --min-lr at --steps."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    p = min(1.0, (step - a.warmup) / max(1, a.steps - a.warmup))
    return a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * p))


def batch(a, data, step):
    """[B,T+1] int64 windows for this step, a pure function of (seed, step)."""
    rng = np.random.default_rng([a.seed, step])
    T = a.positions
    rows = []
    for _ in range(a.batch):
        src = data["wordnet"] if "wordnet" in data and rng.random() < a.wordnet_frac else data["brown_train"]
        i = int(rng.integers(0, len(src) - T - 1))
        rows.append(src[i:i + T + 1])
    return torch.from_numpy(np.stack(rows).astype(np.int64))


def sampling_dist(data):
    """q over the vocabulary: 0.9 * unigram^0.75 + 0.1 * uniform, so every id is drawn now and then."""
    counts = np.zeros(50257)
    for name in ("brown_train", "wordnet"):
        if name in data:
            counts += np.bincount(data[name], minlength=50257)
    u = counts ** 0.75
    return 0.9 * u / u.sum() + 0.1 / 50257


def sampled_loss(model, xy, q, k, rng):
    """Sampled softmax (Jean et al. 2015) with shared negatives: K ids drawn from q with replacement; each logit
    is corrected by log(expected count) so the loss's gradient estimates the full softmax's; hits of the target
    among the negatives are masked. Costs K/V of the full head."""
    x = model.hidden(xy[:, :-1]).reshape(-1, model.cfg["n_embd"])  # [N,C] after ln_f
    y = xy[:, 1:].reshape(-1)  # [N]
    neg, cnt = np.unique(rng.choice(len(q), size=k, p=q), return_counts=True)
    neg_t = torch.from_numpy(neg.astype(np.int64))
    logq = torch.from_numpy(np.log(k * q)).float()  # [V]
    w = model.wte.weight
    pos = (x * w[y]).sum(-1) - logq[y]  # [N]
    negl = x @ w[neg_t].t() + torch.from_numpy(np.log(cnt)).float() - logq[neg_t]  # [N,U]
    negl = negl.masked_fill(neg_t[None, :] == y[:, None], float("-inf"))
    logits = torch.cat([pos[:, None], negl], dim=1)  # [N,1+U]
    return F.cross_entropy(logits, torch.zeros(len(y), dtype=torch.long))


def eval_windows(a, val):
    rng = np.random.default_rng([a.seed, 0xE7A1])
    T = a.positions
    starts = rng.integers(0, len(val) - T - 1, size=a.eval_windows)
    return torch.from_numpy(np.stack([val[s:s + T + 1] for s in starts]).astype(np.int64))


@torch.no_grad()
def evaluate(model, windows):
    model.eval()
    losses = []
    for i in range(0, len(windows), 4):
        w = windows[i:i + 4]
        logits = model(w[:, :-1])
        losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="sum"))
    model.train()
    return float(sum(losses)) / windows[:, 1:].numel()


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.work, exist_ok=True)
    data = {}
    for name in ("brown_train", "brown_val", "wordnet"):
        p = os.path.join(a.data, name + ".bin")
        if os.path.exists(p):
            data[name] = np.fromfile(p, dtype=np.uint16)
    cfg = config(a.layers, a.width, a.heads, a.positions)
    model = GPT2(cfg)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    step, best = 0, float("inf")
    ckpt_path, best_path = os.path.join(a.work, "ckpt.pt"), os.path.join(a.work, "best.pt")
    if a.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, best = ck["step"], ck["best"]
        print("resumed at step %d (best val %.4f)" % (step, best), flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print("params %d, config %s" % (n_params, json.dumps(cfg)), flush=True)
    val = eval_windows(a, data["brown_val"])
    q = sampling_dist(data)
    log = open(os.path.join(a.work, "log.jsonl"), "a")
    t0 = last_ckpt = time.time()
    tokens, loss_acc, n_acc = 0, 0.0, 0

    def checkpoint():
        save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "best": best,
                     "cfg": cfg, "args": vars(a)}, ckpt_path)

    end = min(a.steps, a.stop_at) if a.stop_at else a.steps
    while step < end:
        for g in opt.param_groups:
            g["lr"] = lr_at(a, step)
        xy = batch(a, data, step)
        if a.sampled and step < a.full_from * a.steps:
            loss = sampled_loss(model, xy, q, a.sampled, np.random.default_rng([a.seed, step, 1]))
        else:
            logits = model(xy[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), xy[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += xy[:, 1:].numel()
        loss_acc, n_acc = loss_acc + float(loss), n_acc + 1
        if step % 10 == 0:
            el = time.time() - t0
            print("step %d loss %.4f lr %.2e %.0f tok/s %.1f min" % (step, loss_acc / n_acc, lr_at(a, step), tokens / el, el / 60),
                  flush=True)
            loss_acc, n_acc = 0.0, 0
        if step % a.eval_every == 0 or step == a.steps:
            v = evaluate(model, val)
            rec = {"step": step, "val_loss": v, "val_ppl": math.exp(v), "minutes": (time.time() - t0) / 60}
            if v < best:
                best = v
                save_atomic({"model": model.state_dict(), "step": step, "val_loss": v, "cfg": cfg, "args": vars(a)}, best_path)
                rec["best"] = True
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print("eval %s" % json.dumps(rec), flush=True)
        if time.time() - last_ckpt > a.ckpt_minutes * 60 or step == a.steps:
            checkpoint()
            last_ckpt = time.time()
        if step == a.stop_at:
            checkpoint()
            print("stopping at --stop-at %d" % step, flush=True)
        if a.max_minutes and time.time() - t0 > a.max_minutes * 60:
            checkpoint()
            print("stopping after --max-minutes at step %d" % step, flush=True)
            break


if __name__ == "__main__":
    main()
