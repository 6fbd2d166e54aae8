#!/usr/bin/python3
"""Independent per-tensor statistics of a model.safetensors, for weights' goldens.

  /usr/bin/python3 weights/testdata/safetensors_stats.py CHECKPOINT_DIR > weights/testdata/golden/NAME.json

run by tools/goldens/regen.sh over the checkpoints of weights/testmodel.

Reads the file with json + numpy only (no code shared with the Go reader or
with make_model.py). For each tensor as stored: dtype, shape, sum, sum of
squares and sum of |x| of its values as float32 (F16 via numpy's float16,
BF16 as bits << 16), computed exactly rounded with math.fsum in float64, and
the values at a few flat indices (first, last, middle and 5 drawn with
random.Random(n)). The header records the file's sha256.
"""
import hashlib
import json
import math
import os
import random
import struct
import sys

import numpy as np

d = sys.argv[1]
path = os.path.join(d, "model.safetensors")
raw = open(path, "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
base = 8 + n
out = {
    "generator": "weights/testdata/safetensors_stats.py",
    "command": "bash tools/goldens/regen.sh",
    "numpy": np.__version__,
    "fixture": os.path.basename(d.rstrip("/")),
    "model.safetensors_sha256": hashlib.sha256(raw).hexdigest(),
    "tensors": [],
}
for name, e in header.items():
    if name == "__metadata__":
        continue
    b, end = e["data_offsets"]
    buf = raw[base + b:base + end]
    if e["dtype"] == "F32":
        x = np.frombuffer(buf, dtype="<f4")
    elif e["dtype"] == "F16":
        x = np.frombuffer(buf, dtype="<f2").astype(np.float32)
    elif e["dtype"] == "BF16":
        x = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        raise SystemExit("unexpected dtype %s" % e["dtype"])
    x64 = x.astype(np.float64)
    sq, ab = (x64 * x64).tolist(), np.abs(x64).tolist()
    k = x.size
    rng = random.Random(k)
    idx = sorted(set([0, k - 1, k // 2] + [rng.randrange(k) for _ in range(5)]))
    out["tensors"].append({
        "name": name, "dtype": e["dtype"], "shape": e["shape"],
        "sum": math.fsum(x64.tolist()), "sumsq": math.fsum(sq), "sumabs": math.fsum(ab),
        "samples": [[i, float(x[i])] for i in idx],
    })
json.dump(out, sys.stdout, indent=1)
sys.stdout.write("\n")
