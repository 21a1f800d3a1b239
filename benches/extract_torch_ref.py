#!/usr/bin/env python3
"""Reference conversion the benchmark compares against: torch.load(weights_only=True, mmap=True)
then safetensors.torch.save_file.

    python benches/extract_torch_ref.py IN.pth OUT.safetensors
"""
import sys

import torch
from safetensors.torch import save_file

sd = torch.load(sys.argv[1], weights_only=True, mmap=True, map_location="cpu")
save_file(sd, sys.argv[2], metadata={"format": "pt"})
