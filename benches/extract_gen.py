#!/usr/bin/env python3
"""Write the extraction benchmark's input: a ~1.5 GB float32 state_dict saved with torch.save.

    python benches/extract_gen.py /tmp/bench/model.pth [--gib 1.5]
"""
import argparse
import collections

import torch

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--gib", type=float, default=1.5)
a = ap.parse_args()
g = torch.Generator().manual_seed(0)
sd = collections.OrderedDict()
total, i = 0, 0
target = int(a.gib * (1 << 30))
while total < target:
    # Transformer-like mix: big square weights, a wider MLP weight, small biases and norms.
    for name, shape in ((f"layers.{i}.attn.weight", (2048, 2048)),
                        (f"layers.{i}.mlp.weight", (4096, 2048)),
                        (f"layers.{i}.mlp.bias", (4096,)),
                        (f"layers.{i}.norm.weight", (2048,))):
        sd[name] = torch.randn(*shape, generator=g)
        total += sd[name].numel() * 4
    i += 1
torch.save(sd, a.out)
print("%s: %d tensors, %.2f GiB of float32" % (a.out, len(sd), total / (1 << 30)))
