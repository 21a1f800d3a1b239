#!/usr/bin/env python3
"""Write the resource bombs of tests/it/bombs.rs as files, for benches/bombs.sh.

    python3 benches/make_bombs.py DIR
"""
import os
import struct
import sys
import zlib
import zipfile

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
GIB = 1 << 30
MIB = 1 << 20


def put(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


SYSTEM = b"\x80\x04\x8c\x05posix\x8c\x06system\x93"

# memo "billion laughs": 40 levels of 10 BINGETs each.
v = SYSTEM + b"\x8c\x03lol\x94"
for i in range(1, 41):
    v += b"(" + bytes([ord("h"), i - 1]) * 10 + b"t\x94"
put("memo_laughs.pkl", v + b"\x85R.")
# DUP laughs: DUP DUP TUPLE3, 200 levels.
put("dup_laughs.pkl", SYSTEM + b"\x8c\x03lol" + b"22\x87" * 200 + b"\x85R.")
put("marks_100k.pkl", b"\x80\x02" + b"(" * 100_000 + b".")
put("tuple1_100k.pkl", SYSTEM + b"N" + b"\x85" * 100_000 + b"\x85R.")
put("long4_huge.pkl", b"\x80\x02\x8b" + struct.pack("<I", 0x7FFFFFFF) + b"xx")
put("binbytes8_huge.pkl", b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62) + b"xx")
put("binunicode8_huge.pkl", b"\x80\x04\x8d" + struct.pack("<Q", (1 << 64) - 1) + b"xx")

# Zip with 100,001 empty members.
with zipfile.ZipFile(os.path.join(out, "zip_100k_members.pt"), "w") as z:
    for i in range(100_001):
        z.writestr(f"archive/m{i}", b"")

HEADER = b"\x80\x04\x8e" + struct.pack("<Q", GIB)


def zeros_stream(compressor, gib=1):
    parts = [compressor.compress(HEADER)]
    z = bytes(MIB)
    for _ in range(gib * 1024):
        parts.append(compressor.compress(z))
    parts.append(compressor.flush())
    return b"".join(parts)


# 1 GiB of zeros as archive/data.pkl, deflated (~1 MB).
deflated = zeros_stream(zlib.compressobj(9, zlib.DEFLATED, -15))
# zipfile cannot store pre-compressed data: the one-member archive is built by hand.
name = b"archive/data.pkl"
crc = 0  # torch writes CRC 0 when asked not to compute it
local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(deflated), GIB + len(HEADER) & 0xFFFFFFFF, len(name), 0) + name
central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(deflated),
                      GIB + len(HEADER) & 0xFFFFFFFF, len(name), 0, 0, 0, 0, 0, 0) + name
end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(deflated), 0)
put("zip_bomb_member.pt", local + deflated + central + end)

# joblib bombs: whole-file gzip and xz of the same 1 GiB.
gz = zlib.compressobj(9, zlib.DEFLATED, 31)
put("joblib_gzip_bomb.joblib", zeros_stream(gz))
# xz of 1 GiB takes a minute to write: the committed fixture of tests/it/bombs.rs is the same bomb.
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "..", "tests", "fixtures", "bombs", "zeros-1g.pkl.xz"), "rb") as f:
    put("joblib_xz_bomb.joblib", f.read())
