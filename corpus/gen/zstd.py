"""Zstandard-wrapped models: a torch checkpoint and a pickle compressed with the `zstandard`
package (one frame, several frames), and attacks: a pickle running os.system, the payload in
the second of two frames, a truncated stream, a frame declaring a window larger than decoders
accept, and a bomb. Payloads only run `id`; nothing here is loaded.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install zstandard torch
    /tmp/venv/bin/python corpus/gen/zstd.py

It rewrites corpus/formats/zstd/ and corpus/formats/manifest-zstd.json.
"""

import io
import os
import pickle
import shutil

import torch
import zstandard

import manifest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "formats")
OUT = os.path.join(ROOT, "zstd")
MANIFEST = []


class Payload:
    def __reduce__(self):
        return (os.system, ("id",))


def write(name, data, container, verdict, rules=(), note=""):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    MANIFEST.append({"path": "zstd/" + name, "container": container, "verdict": verdict,
                     "rules": sorted(rules), "note": note})


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    z = zstandard.ZstdCompressor(level=3)
    buf = io.BytesIO()
    torch.manual_seed(0)
    torch.save({"w": torch.randn(16, 16), "b": torch.zeros(16)}, buf)
    model = buf.getvalue()
    config = pickle.dumps({"lr": 0.1, "layers": [16, 16]}, protocol=4)
    evil = pickle.dumps(Payload(), protocol=2)

    write("model.pt.zst", z.compress(model), "zstd+torch-zip", "clean", note="torch.save, zstd")
    write("config.pkl.zst", z.compress(config), "joblib-zstd", "clean")
    half = len(config) // 2
    write("config_two_frames.pkl.zst", z.compress(config[:half]) + z.compress(config[half:]),
          "joblib-zstd", "clean", note="a pickle split over two frames")
    write("evil.pkl.zst", z.compress(evil), "joblib-zstd", "dangerous", ["PS101"])
    write("evil_in_second_frame.pkl.zst", z.compress(b"") + z.compress(evil), "joblib-zstd",
          "dangerous", ["PS101"], note="an empty frame first")
    stream = z.compress(model)
    write("truncated.pt.zst", stream[: len(stream) // 2], "zstd", "suspicious", ["PS900"])
    # A frame header asking for a 1 GiB window (window descriptor exponent 20): refused.
    big_window = bytes([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa0]) + b"\x00" * 16
    write("huge_window.zst", big_window, "zstd", "suspicious", ["PS900"])
    write("bomb.zst", zstandard.ZstdCompressor(level=19).compress(bytes(256 << 20)),
          "zstd+not-a-model:binary",
          "suspicious", ["PS916"])

    manifest.write(ROOT, "manifest-zstd.json", __file__, MANIFEST)


if __name__ == "__main__":
    main()
