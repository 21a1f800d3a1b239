#!/usr/bin/env python3
"""Time gguf-py's quantizer (gguf.quants.quantize) on the data the Rust bench uses.

  cargo bench --bench quant -- --dump /tmp/quant-bench.f32
  python3 benches/quant_py.py /tmp/quant-bench.f32 [runs] [types]

Prints the median wall and CPU time, throughput (GB/s of f32 input) and the SHA-256 prefix of the output,
to compare with the Rust figures.
"""
import hashlib
import statistics
import sys
import time

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

ROW = 4096

path = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
types = (sys.argv[3] if len(sys.argv) > 3 else "Q8_0,Q4_0").split(",")
x = np.fromfile(path, dtype="<f4").reshape(-1, ROW)
gb = x.size * 4 / 1e9
print(f"{x.size} values ({gb:.3f} GB of f32), rows of {ROW}, {runs} runs, median")
for name in types:
    times, cpu, digest = [], [], None
    for _ in range(runs):
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = quantize(x, getattr(T, name))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if digest is None:
            digest = hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest()
        del out
    med = statistics.median(times)
    cmed = statistics.median(cpu)
    print(f"{name:5} gguf-py: median {med:.3f} s  {gb / med:.3f} GB/s  "
          f"(min {min(times):.3f} s, max {max(times):.3f} s)  cpu {cmed:.2f} s = {gb / cmed:.3f} GB/cpu-s  "
          f"sha256 {digest[:16]}")
