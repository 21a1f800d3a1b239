"""Legacy GGML files holding quantized tensors, and what extracting them must give.

GGJT v3 files hold ggml's blocks as ggml lays them out today: every block type a legacy file
can hold (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 quantized by gguf-py from random weights; Q2_K … Q6_K as
random blocks with finite scales). Older files hold layouts that changed (GGJT v2 changed the
bit order, GGJT v3 the Q4/Q8 scales): a GGJT v2 file whose Q5_0 blocks are today's and whose
Q4_0 blocks are not, and a GGJT v1 file with Q4_0 blocks. No library writes these files any
more: they are written at byte level in llama.cpp's layout (see formats.py), and the GGJT v3 one
is read back with llama.cpp's own reader when LLAMA_CPP_SRC points at a llama.cpp source tree
(that reader assumes today's block sizes, so it cannot walk the older files).

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install gguf numpy jinja2
    /tmp/venv/bin/python corpus/gen/ggml_quant.py

It rewrites corpus/formats/ggml-quant/, corpus/formats/manifest-ggml-quant.json (scan verdicts)
and corpus/formats/ggml-quant-contents.json: for each file, each tensor's shape (C order), its
block type, and either the SHA-256 of what extraction to safetensors writes (F16 as it is, the
rest as the float32 values gguf-py's `dequantize` decodes the blocks to) and of the blocks
themselves (what extraction to GGUF copies), or that it is not extracted.
"""

import hashlib
import json
import os
import shutil
import struct

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize

import manifest
from formats import check_with_llama_cpp, ggml_bytes

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "formats")
OUT = os.path.join(ROOT, "ggml-quant")
MANIFEST = []
EXPECTED = {}

# Offsets of the f16 scales in each K-quant block (ggml-common.h `block_q*_K`).
K_SCALES = {Q.Q2_K: (84, [80, 82]), Q.Q3_K: (110, [108]), Q.Q4_K: (144, [0, 2]),
            Q.Q5_K: (176, [0, 2]), Q.Q6_K: (210, [208])}


def k_blocks(rng, qtype, n_blocks):
    """Random K-quant blocks whose f16 scales are small finite numbers."""
    size, scales = K_SCALES[qtype]
    b = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for at in scales:
        d = rng.uniform(0.001, 0.05, size=n_blocks).astype(np.float16)
        b[:, at:at + 2] = d.view(np.uint8).reshape(n_blocks, 2)
    return b.tobytes()


def tensor(name, qtype, dims, data, extracted=True):
    """A tensor entry for ggml_bytes (dims: ne0 first) and its expectation."""
    shape = list(reversed(dims))
    entry = {"name": name, "type": qtype.name, "shape": shape, "extracted": extracted}
    if extracted:
        raw = np.frombuffer(data, dtype=np.uint8).reshape(shape[:-1] + [-1])
        values = dequantize(raw, qtype).astype("<f4")
        assert list(values.shape) == shape
        # safetensors holds F16 as it is, everything else as the float32 values decoded.
        st = data if qtype == Q.F16 else values.tobytes()
        entry["safetensors"] = {"dtype": "F16" if qtype == Q.F16 else "F32",
                                "sha256": hashlib.sha256(st).hexdigest()}
        entry["gguf_sha256"] = hashlib.sha256(data).hexdigest()
    return (name, int(qtype), dims, data), entry


def write(name, magic, version, tensors, verdict="clean"):
    os.makedirs(OUT, exist_ok=True)
    p = os.path.join(OUT, name)
    with open(p, "wb") as f:
        f.write(ggml_bytes(magic, version, [t for t, _ in tensors], aligned=magic == b"tjgg"))
    if version == 3:  # llama.cpp's reader assumes today's block sizes
        check_with_llama_cpp(p)
    MANIFEST.append({"path": "ggml-quant/" + name, "container": "ggjt", "verdict": verdict,
                     "rules": [], "note": "legacy GGML with quantized tensors"})
    EXPECTED[name] = [e for _, e in tensors]


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    rng = np.random.default_rng(7)

    def weights(rows, cols):
        return rng.standard_normal((rows, cols), dtype=np.float32)

    def quantized(qtype, rows, cols):
        return quantize(weights(rows, cols), qtype).tobytes()

    v3 = [
        tensor("tok_embeddings.weight", Q.F16, [64, 8], weights(8, 64).astype("<f2").tobytes()),
        tensor("norm.weight", Q.F32, [64], weights(1, 64).astype("<f4").tobytes()),
    ]
    for i, qtype in enumerate([Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]):
        v3.append(tensor(f"layers.{i}.attention.wq.weight", qtype, [64, 6],
                         quantized(qtype, 6, 64)))
    for i, qtype in enumerate(K_SCALES):
        v3.append(tensor(f"layers.{i}.feed_forward.w1.weight", qtype, [512, 3],
                         k_blocks(rng, qtype, 6)))
    write("ggjt_v3_every_block_type.bin", b"tjgg", 3, v3)

    # GGJT v2: Q4_0 blocks had an f32 scale (20 bytes); Q5_0 blocks were already today's.
    old_q4 = rng.integers(0, 256, size=(4, 20), dtype=np.uint8)
    old_q4[:, :4] = np.full(4, 0.01, dtype="<f4").view(np.uint8).reshape(4, 4)
    v2 = [
        tensor("norm.weight", Q.F32, [64], weights(1, 64).astype("<f4").tobytes()),
        tensor("layers.0.attention.wq.weight", Q.Q4_0, [64, 2], old_q4.tobytes(), extracted=False),
        tensor("layers.0.attention.wk.weight", Q.Q5_0, [64, 2], quantized(Q.Q5_0, 2, 64)),
    ]
    write("ggjt_v2_q4_0_and_q5_0.bin", b"tjgg", 2, v2)

    # GGJT v1: the bit order of every quantized type changed in v2.
    v1 = [
        tensor("norm.weight", Q.F32, [64], weights(1, 64).astype("<f4").tobytes()),
        tensor("layers.0.attention.wq.weight", Q.Q4_0, [64, 2], old_q4.tobytes(), extracted=False),
    ]
    write("ggjt_v1_q4_0.bin", b"tjgg", 1, v1)

    manifest.write(ROOT, "manifest-ggml-quant.json", __file__, MANIFEST)
    with open(os.path.join(ROOT, "ggml-quant-contents.json"), "w") as f:
        json.dump(EXPECTED, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
