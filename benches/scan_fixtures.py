#!/usr/bin/env python3
"""Write the container scan benchmark inputs (large; never committed).

    python benches/scan_fixtures.py OUTDIR [big|many|raw|all]

big:  OUTDIR/big.pt       ~1.5 GB torch.save state_dict (200 fp32 tensors)
many: OUTDIR/many/        2,000 small model files: 500 each of .pt, .joblib, .pkl, .npy
raw:  OUTDIR/raw.pkl      ~1 GiB protocol-4 pickle of numpy arrays
"""
import os
import pickle
import sys

import numpy as np


def big(out):
    import torch
    sd = {}
    per = 1_500_000_000 // 200 // 4
    for i in range(200):
        sd["layers.%d.weight" % i] = torch.full((per,), float(i), dtype=torch.float32)
    torch.save(sd, os.path.join(out, "big.pt"))


def many(out):
    import joblib
    import torch
    d = os.path.join(out, "many")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(500):
        sd = {"w": torch.from_numpy(rng.standard_normal((16, 16), dtype=np.float32)),
              "b": torch.zeros(16)}
        torch.save(sd, os.path.join(d, "m%03d.pt" % i))
        joblib.dump({"coef": rng.standard_normal((8, 8)), "n": i}, os.path.join(d, "m%03d.joblib" % i))
        with open(os.path.join(d, "m%03d.pkl" % i), "wb") as f:
            pickle.dump({"vocab": {"a%d" % k: k for k in range(50)}, "arr": np.arange(32)}, f, protocol=4)
        np.save(os.path.join(d, "m%03d.npy" % i), rng.standard_normal((32, 32)))


def raw(out):
    arrays = [np.full((1 << 24,), k, dtype=np.uint8) for k in range(64)]  # 64 x 16 MiB
    with open(os.path.join(out, "raw.pkl"), "wb") as f:
        pickle.dump(arrays, f, protocol=4)


if __name__ == "__main__":
    out = sys.argv[1]
    what = sys.argv[2] if len(sys.argv) > 2 else "all"
    os.makedirs(out, exist_ok=True)
    for name, fn in (("big", big), ("many", many), ("raw", raw)):
        if what in (name, "all"):
            fn(out)
