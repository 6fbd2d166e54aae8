#!/usr/bin/python3
"""Golden optimiser steps from torch, for inference/tune's optimisers.

  /usr/bin/python3 inference/tune/testdata/optim.py > inference/tune/testdata/optim.json

As the tuned-lens package trains (tuned_lens/scripts/train_loop.py and
ingredients.py): each step clips the gradients to a global norm of 1
(clip_grad_norm_), steps the optimiser, then the linear schedule
(get_linear_schedule_with_warmup with the given warm-up and total).
SGD: lr = 1·(1 − 0.9), momentum 0.9, nesterov, weight_decay 1e-3.
Adam: lr = 1e-3, betas (0.9, 0.999), amsgrad, weight_decay 1e-3.
"""
import json, sys
import torch
from torch.optim.lr_scheduler import LambdaLR

def schedule(warmup, total):
    def f(k):
        if k < warmup:
            return k / max(1, warmup)
        return max(0.0, (total - k) / max(1, total - warmup))
    return f

torch.manual_seed(0)
cases = []
for name, steps, warmup in (("sgd", 6, 0), ("adam", 6, 2)):
    p0 = [torch.randn(3, 3, dtype=torch.float32), torch.randn(3, dtype=torch.float32)]
    grads = [[torch.randn(3, 3) * s, torch.randn(3) * s] for s in (0.1, 3.0, 0.5, 0.01, 2.0, 0.2)]
    params = [torch.nn.Parameter(p.clone()) for p in p0]
    if name == "sgd":
        opt = torch.optim.SGD(params, lr=1 - 0.9, momentum=0.9, nesterov=True, weight_decay=1e-3)
    else:
        opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), amsgrad=True, weight_decay=1e-3)
    sched = LambdaLR(opt, schedule(warmup, steps))
    after = []
    for g in grads[:steps]:
        for p, gi in zip(params, g):
            p.grad = gi.clone()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        after.append([p.detach().numpy().ravel().tolist() for p in params])
    cases.append({"optimizer": name, "steps": steps, "warmup": warmup,
                  "params": [p.numpy().ravel().tolist() for p in p0],
                  "grads": [[gi.numpy().ravel().tolist() for gi in g] for g in grads[:steps]],
                  "after": after})
json.dump({"generator": "inference/tune/testdata/optim.py (torch %s)" % torch.__version__, "cases": cases}, sys.stdout, indent=1)
print()
