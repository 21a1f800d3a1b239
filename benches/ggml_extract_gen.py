"""A GGJT v3 file of 620 MB for benches/ggml_extract.sh: 22 layers of Q4_0 matrices
(2048 × 5632 and 2048 × 2048) and Q6_K output, as random blocks whose f16 scales are small
finite numbers, in llama.cpp's legacy layout (see corpus/gen/formats.py)."""

import struct
import sys

import numpy as np


def blocks(rng, n_blocks, size, scales):
    b = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for at in scales:
        d = rng.uniform(0.001, 0.05, size=n_blocks).astype(np.float16)
        b[:, at:at + 2] = d.view(np.uint8).reshape(n_blocks, 2)
    return b.tobytes()


def main(out):
    rng = np.random.default_rng(0)
    n_vocab, n_embd, n_ff, n_layer = 32000, 2048, 5632, 22
    q4_0, q6_k = (2, 32, 18, [0]), (14, 256, 210, [208])
    tensors = [("tok_embeddings.weight", q4_0, [n_embd, n_vocab])]
    for i in range(n_layer):
        for name, dims in [("attention.wq", [n_embd, n_embd]), ("attention.wo", [n_embd, n_embd]),
                           ("feed_forward.w1", [n_embd, n_ff]), ("feed_forward.w3", [n_embd, n_ff]),
                           ("feed_forward.w2", [n_ff, n_embd])]:
            tensors.append((f"layers.{i}.{name}.weight", q4_0, dims))
    tensors.append(("output.weight", q6_k, [n_embd, n_vocab]))
    with open(out, "wb") as f:
        f.write(b"tjgg" + struct.pack("<I", 3))
        f.write(struct.pack("<7I", n_vocab, n_embd, 256, 32, n_layer, 64, 2))
        for i in range(n_vocab):
            tok = f"t{i}".encode()
            f.write(struct.pack("<I", len(tok)) + tok + struct.pack("<f", 0.0))
        for name, (ty, bs, size, scales), dims in tensors:
            f.write(struct.pack("<3I", len(dims), len(name), ty) + struct.pack("<2I", *dims))
            f.write(name.encode())
            f.write(b"\0" * ((32 - f.tell() % 32) % 32))
            n = dims[0] * dims[1] // bs
            for start in range(0, n, 1 << 20):
                f.write(blocks(rng, min(1 << 20, n - start), size, scales))


if __name__ == "__main__":
    main(sys.argv[1])
