#!/usr/bin/python3
"""Golden unembed hashes printed by numpy (the tuned-lens package's tensor_hash).

  /usr/bin/python3 weights/tunedlens/testdata/hash_cases.py > weights/tunedlens/testdata/hash_cases.json

Each case is a float32 matrix the Go test rebuilds bit for bit:
  w[i, j] = float32(((i*mul + j*add + off) % mod) - mod//2) / float32(div)
(integer arithmetic, then one float32 division), optionally with some
entries set to 0, -0, a tiny or a huge value. The hash is
sha256(numpy.array_str(w, precision=1)), as tuned_lens.utils.tensor_hash.
"""
import hashlib, json, sys
import numpy as np

def build(c):
    i = np.arange(c["rows"], dtype=np.int64)[:, None]
    j = np.arange(c["cols"], dtype=np.int64)[None, :]
    n = ((i * c["mul"] + j * c["add"] + c["off"]) % c["mod"]) - c["mod"] // 2
    w = n.astype(np.float32) / np.float32(c["div"])
    for r, col, v in c.get("set", []):
        w[r, col] = np.float32(v)
    return w

cases = []
shapes = [(3, 4), (7, 5), (10, 100), (5, 300), (300, 4), (40, 30), (1000, 1), (1001, 1), (1, 2000), (50257, 64), (20, 64), (64, 64)]
divs = [7, 100, 1000, 3, 0.01, 100000, 1e-6, 33]
k = 0
for rows, cols in shapes:
    for div in divs:
        k += 1
        c = {"rows": rows, "cols": cols, "mul": 131 + k, "add": 71 + 2 * k, "off": 17 * k, "mod": 2001 + 2 * k, "div": div}
        cases.append(c)
# special values in the printed corners
cases.append({"rows": 50, "cols": 50, "mul": 13, "add": 7, "off": 0, "mod": 101, "div": 20,
              "set": [[0, 0, 0.0], [0, 1, -0.0], [1, 1, 1e-30], [49, 49, 3e8]]})
cases.append({"rows": 8, "cols": 8, "mul": 13, "add": 7, "off": 0, "mod": 101, "div": 20,
              "set": [[0, 0, -0.0], [2, 3, 0.05], [3, 3, -0.95], [4, 4, 0.25]]})
cases.append({"rows": 8, "cols": 8, "mul": 13, "add": 7, "off": 0, "mod": 101, "div": 1e5,
              "set": [[0, 0, 0.0], [1, 1, 9.96e-3], [2, 2, -9.5e-4]]})
for c in cases:
    c["hash"] = hashlib.sha256(str.encode(np.array_str(build(c), precision=1))).hexdigest()
json.dump({"generator": "weights/tunedlens/testdata/hash_cases.py", "numpy": np.__version__, "cases": cases}, sys.stdout, indent=1)
print()
