"""Generate the files the remote benchmark serves (run with a Python that has torch).

    python benches/remote_gen.py /tmp/remote-bench

* model.pth: a torch.save'd state dict of about 1.5 GB (122 float32 tensors), the single-file case;
* raw.pkl: pickle.dump (protocol 4) of a dict of 64 float32 numpy arrays, 1 GiB in all;
* model.joblib: joblib.dump (uncompressed) of the same dict: the arrays written inline;
* model.joblib.gz: joblib.dump(compress=("gzip", 1)) of 576 MiB of float32 noise (it barely
  compresses), the compressed case;
* evil.joblib.gz: the same, after an object whose reduction calls os.system (written first,
  so a scan that stops at a dangerous finding stops near the start);
* model.joblib.xz, evil.joblib.xz, evil.joblib.lzma: the same with 64 MiB of noise, joblib's xz
  and lzma at level 3;
* repo/: a hub-like repository of 10 files: 8 torch.save shards of about 150 MB, one
  safetensors file of about 150 MB (written by hand: header + random bytes) and one small pickle.
"""
import json
import os
import pickle
import struct
import sys

import torch

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/remote-bench"
os.makedirs(os.path.join(out, "repo"), exist_ok=True)

big = os.path.join(out, "model.pth")
if not os.path.exists(big):
    sd = {}
    for i in range(120):
        sd[f"layers.{i}.weight"] = torch.zeros(1536, 2048)
        sd[f"layers.{i}.bias"] = torch.zeros(2048)
    sd["embed.weight"] = torch.zeros(32000, 64)
    sd["head.weight"] = torch.zeros(32000, 64)
    torch.save(sd, big)

arrays = None
for name in ("raw.pkl", "model.joblib"):
    p = os.path.join(out, name)
    if os.path.exists(p):
        continue
    if arrays is None:
        import numpy as np
        arrays = {f"layer.{i}": np.full((2048, 2048), i, dtype=np.float32) for i in range(64)}
    if name == "raw.pkl":
        with open(p, "wb") as f:
            pickle.dump(arrays, f, protocol=4)
    else:
        import joblib
        joblib.dump(arrays, p)

class Evil:
    """Pickled as a call of os.system (never called here)."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


# (name, elements of float32 noise, what comes first, joblib's compress argument)
compressed = (
    ("model.joblib.gz", 144 << 20, [], ("gzip", 1)),
    ("evil.joblib.gz", 144 << 20, [Evil()], ("gzip", 1)),
    ("model.joblib.xz", 16 << 20, [], ("xz", 3)),
    ("evil.joblib.xz", 16 << 20, [Evil()], ("xz", 3)),
    ("evil.joblib.lzma", 16 << 20, [Evil()], ("lzma", 3)),
)
for name, n, first, how in compressed:
    p = os.path.join(out, name)
    if os.path.exists(p):
        continue
    import joblib
    import numpy as np
    noise = np.random.default_rng(1).standard_normal(n, dtype=np.float32)
    joblib.dump(first + [{"w": noise}], p, compress=how)
noise = None

for k in range(8):
    p = os.path.join(out, "repo", f"pytorch_model-{k:05d}-of-00008.bin")
    if not os.path.exists(p):
        sd = {f"model.layers.{k}.{j}.weight": torch.zeros(1024, 1200) for j in range(30)}
        torch.save(sd, p)

p = os.path.join(out, "repo", "model.safetensors")
if not os.path.exists(p):
    n = 150 * 1024 * 1024
    header = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        # Random bytes, like real weights (zeros would hold no newline byte, see REMOTE.md).
        for _ in range(n // (1 << 20)):
            f.write(os.urandom(1 << 20))

p = os.path.join(out, "repo", "training_args.bin")
if not os.path.exists(p):
    with open(p, "wb") as f:
        pickle.dump({"lr": 1e-4, "epochs": 3, "names": ["a", "b"]}, f, protocol=4)

for name in sorted(os.listdir(out)) + sorted("repo/" + n for n in os.listdir(os.path.join(out, "repo"))):
    path = os.path.join(out, name)
    if os.path.isfile(path):
        print(f"{os.path.getsize(path):>12}  {path}")
