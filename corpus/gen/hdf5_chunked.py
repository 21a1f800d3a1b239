"""Chunked HDF5 fixtures for extraction: datasets written by h5py with `chunks=`, gzip at several
levels, shuffle, fletcher32, edge chunks (chunk shapes that do not divide the dataset's),
partially written datasets (fill values), resizable datasets (`maxshape=`, with libver earliest:
version 1 B-trees; with libver latest: extensible arrays and version 2 B-trees), single-chunk,
fixed-array (paged and not) and implicit indexes, big-endian types, 1-D to 4-D, f16/f32/f64 and
integers, and an lzf dataset (a filter extraction does not decode). Plus damaged chunks written
with `write_direct_chunk`: a deflate stream that inflates past its chunk's size (a bomb), a cut
deflate stream and a chunk whose fletcher32 checksum is wrong.

Run from the repository root with a venv holding h5py and numpy:
    /tmp/venv/bin/python corpus/gen/hdf5_chunked.py
It rewrites corpus/formats/hdf5-chunked/, corpus/formats/hdf5-chunked-contents.json (for every numeric
dataset: shape, dtype and the SHA-256 of its C-order little-endian bytes as h5py reads them; the
file offsets of a few chunks, for the Rust tests to damage) and
corpus/formats/manifest-hdf5-chunked.json (scan verdicts: every file is benign data).
"""

import hashlib
import json
import os
import shutil
import zlib

import h5py
import numpy as np

import manifest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "formats")
OUT = os.path.join(ROOT, "hdf5-chunked")
MANIFEST = []


def path(name):
    os.makedirs(OUT, exist_ok=True)
    return os.path.join(OUT, name)


def expect(name, note):
    MANIFEST.append({"path": "hdf5-chunked/" + name, "container": "hdf5", "verdict": "clean",
                     "rules": [], "note": note})


def data(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return (rng.standard_normal(shape) * 100).astype(dtype)
    native = dtype.newbyteorder("=")
    info = np.iinfo(native)
    return rng.integers(info.min, info.max, size=shape, dtype=native, endpoint=True).astype(dtype)


def gzip_levels(rng):
    name = "gzip_levels.h5"
    with h5py.File(path(name), "w", libver="earliest") as f:
        for level in (1, 4, 9):
            f.create_dataset(f"gzip{level}", data=data(rng, (100, 37), "f4"), chunks=(16, 8),
                             compression="gzip", compression_opts=level)
        # Smooth data compresses far: still read within the chunk's size.
        f.create_dataset("ramp", data=np.arange(5000, dtype="i8").reshape(50, 100),
                         chunks=(10, 100), compression="gzip", compression_opts=9)
        f.create_dataset("single", data=data(rng, (20, 30), "f8"), chunks=(20, 30),
                         compression="gzip")
    expect(name, "libver earliest: version 1 B-tree chunk indexes")


def shuffle_fletcher(rng):
    name = "shuffle_fletcher.h5"
    with h5py.File(path(name), "w", libver="earliest") as f:
        f.create_dataset("shuffle_gzip_f8", data=data(rng, (12, 10, 9), "f8"), chunks=(5, 4, 4),
                         shuffle=True, compression="gzip")
        f.create_dataset("fletcher_i4", data=data(rng, (33, 17), "i4"), chunks=(8, 8),
                         fletcher32=True)
        f.create_dataset("all_f2", data=data(rng, (3, 5, 7, 11), "f2"), chunks=(2, 2, 3, 4),
                         shuffle=True, compression="gzip", fletcher32=True)
        f.create_dataset("shuffle_only_u2", data=data(rng, (64,), "u2"), chunks=(10,),
                         shuffle=True)
    expect(name, "shuffle, gzip and fletcher32 in every combination h5py writes")


def dtypes_and_ranks(rng):
    name = "dtypes_ranks.h5"
    shapes = [(37,), (13, 11), (5, 6, 7), (3, 4, 5, 6)]
    chunks = [(8,), (4, 3), (2, 4, 3), (2, 3, 2, 4)]
    types = ["f2", "f4", "f8", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8",
             ">f4", ">f8", ">i2", ">u4", ">i8", ">f2"]
    with h5py.File(path(name), "w", libver="earliest") as f:
        for i, t in enumerate(types):
            shape, chunk = shapes[i % 4], chunks[i % 4]
            label = t.replace(">", "be_")
            f.create_dataset(f"{label}_{len(shape)}d", data=data(rng, shape, t), chunks=chunk,
                             compression="gzip" if i % 2 else None)
    expect(name, "every numeric type, big-endian ones included, 1-D to 4-D, edge chunks")


def partial(rng):
    for libver in ("earliest", "latest"):
        name = f"partial_{libver}.h5"
        with h5py.File(path(name), "w", libver=libver) as f:
            d = f.create_dataset("zero_fill", shape=(40, 30), dtype="f4", chunks=(8, 8),
                                 compression="gzip")
            d[3:11, 5:17] = data(rng, (8, 12), "f4")
            d = f.create_dataset("fill_7_5", shape=(20, 20), dtype="f8", chunks=(6, 6),
                                 fillvalue=7.5)
            d[0:6, 0:6] = data(rng, (6, 6), "f8")
            d = f.create_dataset("fill_minus_1_be", shape=(50,), dtype=">i4", chunks=(7,),
                                 fillvalue=-1, compression="gzip")
            d[10:20] = np.arange(10, dtype=">i4")
            f.create_dataset("never_written", shape=(9, 9), dtype="i2", chunks=(4, 4))
        expect(name, f"libver {libver}: chunks never written read as the fill value")


def resizable(rng):
    for libver in ("earliest", "latest"):
        name = f"resizable_{libver}.h5"
        with h5py.File(path(name), "w", libver=libver) as f:
            d = f.create_dataset("grow_rows", shape=(10, 8), maxshape=(None, 8), dtype="f4",
                                 chunks=(4, 8), compression="gzip")
            d[:] = data(rng, (10, 8), "f4")
            d.resize((23, 8))
            d[10:] = data(rng, (13, 8), "f4")
            d = f.create_dataset("grow_both", shape=(5, 5), maxshape=(None, None), dtype="i8",
                                 chunks=(3, 2))
            d[:] = data(rng, (5, 5), "i8")
            d.resize((9, 7))
            d[5:, 5:] = data(rng, (4, 2), "i8")
            d = f.create_dataset("many_chunks", shape=(300,), maxshape=(None,), dtype="f4",
                                 chunks=(1,), shuffle=True, compression="gzip")
            d[:] = data(rng, (300,), "f4")
            d = f.create_dataset("limited", shape=(6, 6), maxshape=(12, 12), dtype="u2",
                                 chunks=(4, 4))
            d[:] = data(rng, (6, 6), "u2")
            # Chunks far along one unlimited dimension: with libver latest, in extensible array
            # data blocks large enough to be paged (more than 1024 chunks each).
            d = f.create_dataset("far", shape=(140_000,), maxshape=(None,), dtype="i1",
                                 chunks=(1,))
            d[139_990:] = np.arange(10, dtype="i1")
            d[131_075] = 7
        kind = ("version 1 B-trees" if libver == "earliest" else
                "extensible arrays (one unlimited dimension), version 2 B-trees (two)")
        expect(name, f"libver {libver}: maxshape, resized after writing: {kind}")


def latest_fixed(rng):
    name = "latest_fixed.h5"
    with h5py.File(path(name), "w", libver="latest") as f:
        f.create_dataset("farray_gzip", data=data(rng, (30, 20), "f4"), chunks=(7, 6),
                         compression="gzip")
        f.create_dataset("farray_plain", data=data(rng, (30, 20), "i2"), chunks=(7, 6))
        f.create_dataset("single_plain", data=data(rng, (9, 5), "f8"), chunks=(9, 5))
        f.create_dataset("single_gzip", data=data(rng, (9, 5), "f8"), chunks=(9, 5),
                         compression="gzip", shuffle=True)
        f.create_dataset("paged", data=data(rng, (1100,), "f4"), chunks=(1,))
        d = f.create_dataset("paged_partial", shape=(3000,), dtype="i4", chunks=(1,),
                             compression="gzip")
        d[5:12] = np.arange(7, dtype="i4")
        d[2100:2103] = 9
        # Implicit index: fixed dimensions, no filters, space allocated when created.
        space = h5py.h5s.create_simple((25, 10))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((10, 4))
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        dcpl.set_obj_track_times(False)  # as h5py's own datasets: the same bytes every run
        did = h5py.h5d.create(f.id, b"implicit", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
        h5py.Dataset(did)[:] = data(rng, (25, 10), "f4")
    expect(name, "libver latest, fixed dimensions: fixed arrays (paged too), single chunk, "
           "implicit")


def lzf(rng):
    name = "lzf.h5"
    with h5py.File(path(name), "w") as f:
        f.create_dataset("lzf", data=data(rng, (20, 20), "f4"), chunks=(5, 5),
                         compression="lzf")
        f.create_dataset("gzip", data=data(rng, (20, 20), "f4"), chunks=(5, 5),
                         compression="gzip")
    expect(name, "an lzf dataset (not extracted) beside a gzip one")


def damaged(rng):
    """Chunks written as raw bytes: what the filters are given is not what they wrote."""
    name = "damaged_chunks.h5"
    with h5py.File(path(name), "w", libver="earliest") as f:
        d = f.create_dataset("bomb", shape=(4, 4), dtype="f4", chunks=(4, 4),
                             compression="gzip")
        d.id.write_direct_chunk((0, 0), zlib.compress(bytes(1 << 20)))
        d = f.create_dataset("cut", shape=(4, 4), dtype="f4", chunks=(4, 4),
                             compression="gzip")
        d.id.write_direct_chunk((0, 0), zlib.compress(data(rng, (4, 4), "f4").tobytes())[:20])
        d = f.create_dataset("short", shape=(4, 4), dtype="f4", chunks=(4, 4),
                             compression="gzip")
        d.id.write_direct_chunk((0, 0), zlib.compress(bytes(60)))
        d = f.create_dataset("bad_checksum", shape=(4, 4), dtype="f4", chunks=(4, 4),
                             fletcher32=True)
        d.id.write_direct_chunk((0, 0), bytes(64) + b"\x01\x02\x03\x04")
        f.create_dataset("good", data=data(rng, (4, 4), "f4"), chunks=(2, 2),
                         compression="gzip")
    expect(name, "damaged chunks: extraction fails on them, the scan does not read chunks")


def tiny(rng):
    """Small enough (under 4 KiB) for a fuzzer's length cap to keep whole."""
    name = "tiny_latest.h5"
    with h5py.File(path(name), "w", libver="latest") as f:
        f.create_dataset("fixed", data=data(rng, (6, 5), "f4"), chunks=(4, 4),
                         compression="gzip", shuffle=True, fletcher32=True)
        d = f.create_dataset("grow", shape=(3,), maxshape=(None,), dtype="i2", chunks=(2,))
        d[:] = [1, 2, 3]
    expect(name, "libver latest: a filtered fixed array and an extensible array in under 4 KiB")


def le_bytes(a):
    a = np.ascontiguousarray(a)
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def record(name, out):
    files = {}
    with h5py.File(path(name), "r") as f:
        def visit(n, obj):
            if not isinstance(obj, h5py.Dataset) or obj.dtype.kind not in "fiu":
                return
            entry = {"shape": list(obj.shape), "dtype": obj.dtype.newbyteorder("<").str}
            try:
                entry["sha256"] = hashlib.sha256(le_bytes(obj[()])).hexdigest()
            except OSError as e:  # a filter h5py cannot run, or a damaged chunk
                entry["error"] = str(e).split("(")[0].strip()
            if obj.chunks and obj.id.get_num_chunks() and obj.compression != "lzf":
                info = obj.id.get_chunk_info(0)
                entry["first_chunk"] = {"offset": info.byte_offset, "size": info.size}
            files[n] = entry
        f.visititems(visit)
    out[name] = files


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    rng = np.random.default_rng(7)
    for make in (gzip_levels, shuffle_fletcher, dtypes_and_ranks, partial, resizable,
                 latest_fixed, lzf, damaged, tiny):
        make(rng)
    MANIFEST.sort(key=lambda e: e["path"])
    expected = {}
    for e in MANIFEST:
        record(e["path"].split("/", 1)[1], expected)
    with open(os.path.join(ROOT, "hdf5-chunked-contents.json"), "w") as f:
        json.dump({"generator": "corpus/gen/hdf5_chunked.py",
                   "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
                   "files": expected}, f, indent=1, sort_keys=True)
        f.write("\n")
    manifest.write(ROOT, "manifest-hdf5-chunked.json", __file__, MANIFEST)


if __name__ == "__main__":
    main()
