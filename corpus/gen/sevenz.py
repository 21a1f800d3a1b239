"""7z fixtures written by py7zr: torch checkpoints, numpy arrays and pickles packed with each
method py7zr writes (LZMA2, LZMA, BZip2, Deflate, Copy; the x86, ARM, ARM Thumb, PowerPC, SPARC,
IA-64 and Delta filters before LZMA2; PPMd and Zstandard, which are not read), solid and in
several folders, plain and encoded headers, nested 7z, and attacks: a pickle running os.system and
a torch archive whose data.pkl carries the payload (the nullifAI shape) packed in 7z, the payload
ahead of a bomb in one solid folder, encrypted archives and headers, a damaged member, a truncated
archive, a bomb and archives nested past the depth limit. Payloads only run `id`; nothing here is
loaded.

Run from the repository root with a venv holding the pinned libraries:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install py7zr==1.1.4 torch numpy
    /tmp/venv/bin/python corpus/gen/sevenz.py
It rewrites corpus/formats/sevenz/, corpus/formats/manifest-sevenz.json and
corpus/formats/sevenz-contents.json (what py7zr lists and extracts, for the reader's test).
"""

import io
import os
import pickle
import shutil
import tempfile
import zipfile
import zlib

import numpy as np
import py7zr
import torch

import manifest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "formats")
OUT = os.path.join(ROOT, "sevenz")
MANIFEST = []


def path(name):
    os.makedirs(OUT, exist_ok=True)
    return os.path.join(OUT, name)


def expect(name, verdict, rules=(), note=""):
    MANIFEST.append({"path": "sevenz/" + name, "container": "7z", "verdict": verdict,
                     "rules": sorted(rules), "note": note})


def torch_bytes(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def npy_bytes(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


class Payload:
    def __reduce__(self):
        return (os.system, ("id",))


def nullifai_torch():
    """A torch zip whose data.pkl runs os.system before the state dict (written byte by byte
    from a real torch.save, the pickle replaced)."""
    src = torch_bytes({"w": torch.ones(2)})
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(src)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("data.pkl"):
                data = pickle.dumps([Payload(), {"w": 0}], protocol=2)
            zout.writestr(item, data)
    return out.getvalue()


def write(name, members, filters=None, encoded_header=True, **kw):
    with py7zr.SevenZipFile(path(name), "w", filters=filters, **kw) as z:
        z.set_encoded_header_mode(encoded_header)
        for member, data in members.items():
            z.writef(io.BytesIO(data), member)


def append(name, members):
    """Members added to an existing archive: py7zr packs them in a folder of their own."""
    with py7zr.SevenZipFile(path(name), "a") as z:
        for member, data in members.items():
            z.writef(io.BytesIO(data), member)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    torch.manual_seed(0)
    model = torch_bytes({"layer.weight": torch.randn(8, 8), "layer.bias": torch.zeros(8)})
    arrays = npy_bytes(np.arange(100, dtype=np.float32))
    plain = pickle.dumps({"lr": 0.1, "epochs": 3}, protocol=4)
    benign = {"model.pt": model, "weights.npy": arrays, "config.pkl": plain}

    for name, filters in [
        ("lzma2", None),
        ("lzma", [{"id": py7zr.FILTER_LZMA}]),
        ("bzip2", [{"id": py7zr.FILTER_BZIP2}]),
        ("deflate", [{"id": py7zr.FILTER_DEFLATE}]),
        ("copy", [{"id": py7zr.FILTER_COPY}]),
    ]:
        write(f"benign_{name}.7z", benign, filters)
        expect(f"benign_{name}.7z", "clean", note=f"py7zr {py7zr.__version__}, {name}")
    write("benign_single_model.7z", {"pytorch_model.bin": model})
    expect("benign_single_model.7z", "clean")
    for name, fid in [
        ("x86", py7zr.FILTER_X86),
        ("arm", py7zr.FILTER_ARM),
        ("armthumb", py7zr.FILTER_ARMTHUMB),
        ("powerpc", py7zr.FILTER_POWERPC),
        ("sparc", py7zr.FILTER_SPARC),
        ("ia64", py7zr.FILTER_IA64),
    ]:
        write(f"benign_bcj_{name}.7z", benign, [{"id": fid}, {"id": py7zr.FILTER_LZMA2}])
        expect(f"benign_bcj_{name}.7z", "clean", note=f"{name} branch filter, then LZMA2")
    write("benign_delta.7z", benign, [{"id": py7zr.FILTER_DELTA, "dist": 4},
                                      {"id": py7zr.FILTER_LZMA2}])
    expect("benign_delta.7z", "clean", note="Delta (distance 4), then LZMA2")
    write("benign_plain_header.7z", benign, encoded_header=False)
    expect("benign_plain_header.7z", "clean", note="header not packed")
    # A solid folder of many members, empty files among them, then a second folder appended.
    many = {f"shard_{i:02}.npy": npy_bytes(np.full(50, i, dtype=np.int16)) for i in range(20)}
    many["empty.txt"] = b""
    many["config.pkl"] = plain
    write("benign_solid_many.7z", many)
    append("benign_solid_many.7z", {"extra/model.pt": model, "extra/empty.bin": b""})
    expect("benign_solid_many.7z", "clean", note="22 members in one solid folder, 2 appended in another")
    write("payload_in_second_folder.7z", {"weights.npy": arrays})
    append("payload_in_second_folder.7z", {"model.pkl": pickle.dumps(Payload(), protocol=2)})
    expect("payload_in_second_folder.7z", "dangerous", ["PS101"], "the payload in an appended folder")
    write("ppmd.7z", benign, [{"id": py7zr.FILTER_PPMD}])
    expect("ppmd.7z", "suspicious", ["PS911"], "PPMd is not decoded")
    write("zstd.7z", benign, [{"id": py7zr.FILTER_ZSTD}])
    expect("zstd.7z", "suspicious", ["PS911"], "Zstandard is not decoded")
    write("empty.7z", {})
    expect("empty.7z", "clean")

    malicious = pickle.dumps(Payload(), protocol=2)
    write("pickle_os_system.7z", {"model.pkl": malicious, "weights.npy": arrays})
    expect("pickle_os_system.7z", "dangerous", ["PS101"])
    write("nullifai_torch_payload.7z", {"model.pt": nullifai_torch()})
    expect("nullifai_torch_payload.7z", "dangerous", ["PS101"], "nullifAI: torch in 7z")
    write("nullifai_torch_payload_copy.7z", {"model.pt": nullifai_torch()},
          [{"id": py7zr.FILTER_COPY}])
    expect("nullifai_torch_payload_copy.7z", "dangerous", ["PS101"])
    inner = open(path("pickle_os_system.7z"), "rb").read()
    write("nested_7z_payload.7z", {"inner.7z": inner, "readme.txt": b"weights inside"})
    expect("nested_7z_payload.7z", "dangerous", ["PS101"], "a 7z inside a 7z")

    write("encrypted.7z", {"model.pkl": malicious}, password="secret")
    expect("encrypted.7z", "suspicious", ["PS911"], "AES-encrypted: nothing can be read")
    write("encrypted_header.7z", {"model.pkl": malicious}, password="secret",
          header_encryption=True)
    expect("encrypted_header.7z", "suspicious", ["PS911"], "header encrypted too: not even names")

    # The payload first, then 256 MiB of zeros in the same solid folder: the folder stops at the
    # budget, and the payload, whole before that, is still found.
    write("payload_before_bomb.7z", {"model.pkl": malicious, "zeros.bin": bytes(256 << 20)})
    expect("payload_before_bomb.7z", "dangerous", ["PS101", "PS916"])

    # Nested past the container depth limit (8): the innermost payload is out of reach.
    deep = malicious
    for level in range(10):
        write("deep.tmp", {f"level{level}.7z" if level else "model.pkl": deep})
        deep = open(path("deep.tmp"), "rb").read()
    os.remove(path("deep.tmp"))
    with open(path("nested_too_deep.7z"), "wb") as f:
        f.write(deep)
    expect("nested_too_deep.7z", "suspicious", ["PS915"], "7z in 7z, ten levels")

    # A member's bytes altered after packing (stored, so the payload is in the clear).
    data = bytearray(open(path("benign_copy.7z"), "rb").read())
    at = data.find(b"epochs")
    data[at:at + 6] = b"EPOCHS"
    with open(path("damaged_member_crc.7z"), "wb") as f:
        f.write(bytes(data))
    expect("damaged_member_crc.7z", "suspicious", ["PS910"])

    full = open(path("benign_lzma2.7z"), "rb").read()
    with open(path("truncated.7z"), "wb") as f:
        f.write(full[: len(full) // 2])
    expect("truncated.7z", "suspicious", ["PS910"])

    # A bomb: 256 MiB of zeros packs into a few kilobytes, far past the ratio cap.
    write("bomb_zeros.7z", {"zeros.bin": bytes(256 << 20)})
    expect("bomb_zeros.7z", "suspicious", ["PS916"])

    # What py7zr lists and extracts from every fixture it can open (names, sizes, CRC-32 of the
    # extracted bytes), for the reader's test.
    listing = {}
    for entry in MANIFEST:
        name = entry["path"].split("/", 1)[1]
        with tempfile.TemporaryDirectory() as tmp:
            try:
                with py7zr.SevenZipFile(path(name)) as z:
                    infos = z.list()
                    z.extractall(path=tmp)
            except Exception:  # encrypted, damaged, a bomb, …
                continue
            listing[name] = [
                {"name": i.filename, "size": i.uncompressed, "dir": i.is_directory,
                 "crc32": None if i.is_directory else
                 zlib.crc32(open(os.path.join(tmp, i.filename), "rb").read())}
                for i in infos
            ]
    with open(os.path.join(ROOT, "sevenz-contents.json"), "w") as f:
        json.dump(listing, f, indent=1, sort_keys=True)
        f.write("\n")

    manifest.write(ROOT, "manifest-sevenz.json", __file__, MANIFEST)


if __name__ == "__main__":
    main()
