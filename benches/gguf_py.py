#!/usr/bin/env python3
"""Time gguf-py quantizing the 2-D tensors of a torch checkpoint (gguf.quants.quantize on numpy
arrays; loading is not timed). Prints `TYPE median_wall_s cpu_s GB/s` per type.

    python benches/gguf_py.py MODEL.pt [runs] [types]
"""
import statistics
import sys
import time

import torch
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

path = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
types = (sys.argv[3] if len(sys.argv) > 3 else "Q8_0,Q4_0").split(",")
sd = torch.load(path, mmap=True, weights_only=True)
arrays = [t.numpy() for t in sd.values() if t.dim() == 2]
gb = sum(a.nbytes for a in arrays) / 1e9
for name in types:
    walls, cpus = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        for a in arrays:
            quantize(a, T[name])
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    w = statistics.median(walls)
    print(f"{name} {w:.3f} {statistics.median(cpus):.3f} {gb / w:.3f}")
