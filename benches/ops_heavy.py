"""Write an op-heavy pickle: ~1M small tuples, dicts and strings (about 20 MB at protocol 4).

Usage: python benches/ops_heavy.py OUT.pkl
"""
import pickle
import random
import sys

random.seed(7)
rows = []
for i in range(330_000):
    rows.append((i, f"name-{i}", random.random()))
    rows.append({"id": i, "tag": "t%d" % (i % 97), "ok": bool(i & 1)})
    rows.append("s%06d" % i)
with open(sys.argv[1], "wb") as f:
    pickle.dump(rows, f, protocol=4)
