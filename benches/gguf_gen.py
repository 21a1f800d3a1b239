#!/usr/bin/env python3
"""Write a ~1.5 GB fp32 torch checkpoint for the GGUF benchmark.

    python benches/gguf_gen.py OUT.pt [layers]

24 weight matrices of 4096 x 4096 (64 MiB each, N(0, 0.02) values) plus a 1-D norm per layer,
saved with torch.save (zip format, storages stored uncompressed).
"""
import sys

import torch

out = sys.argv[1]
layers = int(sys.argv[2]) if len(sys.argv) > 2 else 24
g = torch.Generator().manual_seed(0)
sd = {}
for i in range(layers):
    sd[f"blk.{i}.weight"] = torch.randn(4096, 4096, generator=g) * 0.02
    sd[f"blk.{i}.norm"] = torch.ones(4096)
torch.save(sd, out)
