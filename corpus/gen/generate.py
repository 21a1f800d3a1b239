#!/usr/bin/env python3
"""Generate the picklescan-rs test corpus.

Usage:
    python corpus/gen/generate.py            # write every fixture, corpus/manifest.json, corpus/expected/*
    python corpus/gen/generate.py --check    # run picklescan over the corpus and print its exit codes

Benign fixtures are written by the real libraries (pickle, torch, numpy, joblib, scikit-learn,
safetensors, gguf).  Attack fixtures are hand-assembled opcode by opcode with the small assembler
below, so every technique is exact.  Every payload is harmless (`true`, `echo ...`, a path that does
not exist, a closed local port).

Nothing in this script ever unpickles an attack fixture.  The only loads are:
  * torch.load / joblib.load / numpy.load of the BENIGN files we just wrote with those libraries, to
    compute the expected tensor values for extraction tests;
  * pickle loads of hand-assembled BENIGN data pickles through an unpickler whose find_class
    refuses every global, to prove they are valid.
"""

import argparse
import collections
import io
import json
import lzma
import os
import pickle
import pickletools
import struct
import subprocess
import sys
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent
EXPECTED = CORPUS / "expected"
DIRS = ("benign", "malicious", "evasion", "malformed", "containers")
MAX_FIXTURE = 100 * 1024
SIZE_EXCEPTIONS = set()

PAYLOAD = "echo pwned"          # the command every attack would run
PAYLOAD_LIST = ["echo", "pwned"]
PY_PAYLOAD = "__import__('os').system('echo pwned')"   # Python source payloads (eval/exec/runcode)

warnings.filterwarnings("ignore")

# ---------------------------------------------------------------------------------------------
# Opcode-level pickle assembler
# ---------------------------------------------------------------------------------------------


def _enc_unicode_nl(text):
    # Exactly what pickle.py does for protocol-0 UNICODE: escape the characters that would end
    # the line or confuse raw-unicode-escape, then encode.
    text = (text.replace("\\", "\\u005c").replace("\0", "\\u0000").replace("\n", "\\u000a")
            .replace("\r", "\\u000d").replace("\x1a", "\\u001a"))
    return text.encode("raw-unicode-escape") + b"\n"


def _line(arg):
    if isinstance(arg, bytes):
        return arg + b"\n"
    return str(arg).encode("ascii") + b"\n"


def _enc(kind, arg):
    if kind is None:
        return b""
    if kind == "u1":
        return struct.pack("<B", arg)
    if kind == "u2":
        return struct.pack("<H", arg)
    if kind == "i4":
        return struct.pack("<i", arg)
    if kind == "u4":
        return struct.pack("<I", arg)
    if kind == "u8":
        return struct.pack("<Q", arg)
    if kind == "float8":
        return struct.pack(">d", arg)
    if kind == "decimalnl":          # INT, GET, PUT; bytes are written verbatim
        return _line(arg)
    if kind == "longnl":             # LONG: digits + 'L'
        return arg + b"\n" if isinstance(arg, bytes) else str(arg).encode() + b"L\n"
    if kind == "floatnl":
        return arg + b"\n" if isinstance(arg, bytes) else repr(float(arg)).encode() + b"\n"
    if kind == "stringnl":           # STRING: a quoted, escaped literal
        return arg + b"\n" if isinstance(arg, bytes) else repr(arg).encode("ascii") + b"\n"
    if kind == "unicodenl":
        return arg + b"\n" if isinstance(arg, bytes) else _enc_unicode_nl(arg)
    if kind == "pair":               # GLOBAL / INST: "module\nname\n"
        mod, name = arg
        return _line(mod) + _line(name)
    if kind == "line":               # PERSID
        return _line(arg)
    if kind in ("string1", "bytes1"):
        b = arg.encode("latin-1") if isinstance(arg, str) else arg
        return struct.pack("<B", len(b)) + b
    if kind == "string4":
        b = arg.encode("latin-1") if isinstance(arg, str) else arg
        return struct.pack("<i", len(b)) + b
    if kind == "bytes4":
        return struct.pack("<I", len(arg)) + arg
    if kind == "bytes8":
        return struct.pack("<Q", len(arg)) + arg
    if kind == "ustr1":
        b = arg.encode("utf-8", "surrogatepass")
        return struct.pack("<B", len(b)) + b
    if kind == "ustr4":
        b = arg.encode("utf-8", "surrogatepass")
        return struct.pack("<I", len(b)) + b
    if kind == "ustr8":
        b = arg.encode("utf-8", "surrogatepass")
        return struct.pack("<Q", len(b)) + b
    if kind == "long1":
        b = pickle.encode_long(arg)
        return struct.pack("<B", len(b)) + b
    if kind == "long4":
        b = pickle.encode_long(arg)
        return struct.pack("<i", len(b)) + b
    raise ValueError(kind)


# name -> (opcode byte, argument encoding); cpython Lib/pickletools.py is the reference list.
OPS = {
    "INT": (b"I", "decimalnl"), "BININT": (b"J", "i4"), "BININT1": (b"K", "u1"),
    "BININT2": (b"M", "u2"), "LONG": (b"L", "longnl"), "LONG1": (b"\x8a", "long1"),
    "LONG4": (b"\x8b", "long4"), "STRING": (b"S", "stringnl"), "BINSTRING": (b"T", "string4"),
    "SHORT_BINSTRING": (b"U", "string1"), "BINBYTES": (b"B", "bytes4"),
    "SHORT_BINBYTES": (b"C", "bytes1"), "BINBYTES8": (b"\x8e", "bytes8"),
    "BYTEARRAY8": (b"\x96", "bytes8"), "NEXT_BUFFER": (b"\x97", None),
    "READONLY_BUFFER": (b"\x98", None), "NONE": (b"N", None), "NEWTRUE": (b"\x88", None),
    "NEWFALSE": (b"\x89", None), "UNICODE": (b"V", "unicodenl"),
    "SHORT_BINUNICODE": (b"\x8c", "ustr1"), "BINUNICODE": (b"X", "ustr4"),
    "BINUNICODE8": (b"\x8d", "ustr8"), "FLOAT": (b"F", "floatnl"), "BINFLOAT": (b"G", "float8"),
    "EMPTY_LIST": (b"]", None), "APPEND": (b"a", None), "APPENDS": (b"e", None),
    "LIST": (b"l", None), "EMPTY_TUPLE": (b")", None), "TUPLE": (b"t", None),
    "TUPLE1": (b"\x85", None), "TUPLE2": (b"\x86", None), "TUPLE3": (b"\x87", None),
    "EMPTY_DICT": (b"}", None), "DICT": (b"d", None), "SETITEM": (b"s", None),
    "SETITEMS": (b"u", None), "EMPTY_SET": (b"\x8f", None), "ADDITEMS": (b"\x90", None),
    "FROZENSET": (b"\x91", None), "POP": (b"0", None), "DUP": (b"2", None),
    "MARK": (b"(", None), "POP_MARK": (b"1", None), "GET": (b"g", "decimalnl"),
    "BINGET": (b"h", "u1"), "LONG_BINGET": (b"j", "u4"), "PUT": (b"p", "decimalnl"),
    "BINPUT": (b"q", "u1"), "LONG_BINPUT": (b"r", "u4"), "MEMOIZE": (b"\x94", None),
    "EXT1": (b"\x82", "u1"), "EXT2": (b"\x83", "u2"), "EXT4": (b"\x84", "i4"),
    "GLOBAL": (b"c", "pair"), "STACK_GLOBAL": (b"\x93", None), "REDUCE": (b"R", None),
    "BUILD": (b"b", None), "INST": (b"i", "pair"), "OBJ": (b"o", None),
    "NEWOBJ": (b"\x81", None), "NEWOBJ_EX": (b"\x92", None), "PROTO": (b"\x80", "u1"),
    "STOP": (b".", None), "FRAME": (b"\x95", "u8"), "PERSID": (b"P", "line"),
    "BINPERSID": (b"Q", None),
}


class Asm:
    """Emit pickle opcodes by name: Asm().PROTO(2).GLOBAL(('posix', 'system'))...STOP().bytes()"""

    def __init__(self):
        self.buf = bytearray()

    def op(self, name, arg=None):
        code, kind = OPS[name]
        self.buf += code + _enc(kind, arg)
        return self

    def raw(self, data):
        self.buf += data
        return self

    def __getattr__(self, name):
        if name in OPS:
            return lambda arg=None: self.op(name, arg)
        raise AttributeError(name)

    # shorthands -----------------------------------------------------------------------------
    def ustr(self, text, memo=False):
        """Push a str the way protocol 4+ pickles do (SHORT_BINUNICODE or BINUNICODE)."""
        if len(text.encode("utf-8")) < 256:
            self.SHORT_BINUNICODE(text)
        else:
            self.BINUNICODE(text)
        if memo:
            self.MEMOIZE()
        return self

    def sglobal(self, module, name, memo=True):
        """Protocol 4 STACK_GLOBAL with both operands pushed right before it."""
        self.ustr(module, memo).ustr(name, memo).STACK_GLOBAL()
        if memo:
            self.MEMOIZE()
        return self

    def bytes(self):
        return bytes(self.buf)


def framed(proto, body):
    """PROTO n + one FRAME covering body (which must end with STOP)."""
    return b"\x80" + bytes([proto]) + b"\x95" + struct.pack("<Q", len(body)) + body


def call_proto2(module, name, *args):
    """Protocol-2 `module.name(*args)` with string arguments, as a complete pickle."""
    a = Asm().PROTO(2).GLOBAL((module, name))
    for x in args:
        a.BINUNICODE(x)
    a.op({1: "TUPLE1", 2: "TUPLE2", 3: "TUPLE3"}[len(args)]).REDUCE().STOP()
    return a.bytes()


def call_proto0(module, name, *args):
    a = Asm().GLOBAL((module, name)).MARK()
    for x in args:
        a.STRING(x)
    return a.TUPLE().REDUCE().STOP().bytes()


def call_proto4(module, name, *args):
    a = Asm().sglobal(module, name)
    for x in args:
        a.ustr(x, True)
    a.op({1: "TUPLE1", 2: "TUPLE2", 3: "TUPLE3"}[len(args)]).MEMOIZE().REDUCE().MEMOIZE().STOP()
    return framed(4, a.bytes())


def check_parses(data, name):
    """Make sure a hand-assembled stream is well formed (pickletools only parses; nothing runs)."""
    f = io.BytesIO(data)
    while f.tell() < len(data):
        for _ in pickletools.genops(f):
            pass
    return data


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError("global %s.%s refused" % (module, name))


def safe_loads(data):
    """Load a hand-assembled benign pickle that must not reference any global."""
    return _NoGlobals(io.BytesIO(data)).load()


# ---------------------------------------------------------------------------------------------
# ZIP writer (byte-exact control over flags, CRCs, names, order, prefixes)
# ---------------------------------------------------------------------------------------------

DOS_TIME = 0
DOS_DATE = (0 << 9) | (1 << 5) | 1      # 1980-01-01


def build_zip(entries, prefix=b"", align=0):
    """entries: dicts with name (str), data (bytes) and optional keys
    method (0 stored / 8 deflate), flags, local_flags, crc, local_crc, compressed (raw bytes
    to store instead of compressing data), descriptor (bool: write a data descriptor like torch).
    align: pad each record's data to this alignment with a torch-style 'FB' extra field."""
    out = bytearray(prefix)
    central = bytearray()
    for e in entries:
        name = e["name"].encode("utf-8")
        data = e["data"]
        method = e.get("method", 0)
        if "compressed" in e:
            comp = e["compressed"]
        elif method == 8:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            comp = c.compress(data) + c.flush()
        else:
            comp = data
        crc = e.get("crc", zlib.crc32(data) & 0xFFFFFFFF)
        local_crc = e.get("local_crc", crc)
        flags = e.get("flags", 0x0800)
        local_flags = e.get("local_flags", flags)
        offset = len(out)
        extra = b""
        if align:
            base = offset + 30 + len(name) + 4
            pad = (-base) % align
            extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        descriptor = e.get("descriptor", False)
        if descriptor:
            local_flags |= 0x08
            flags |= 0x08
            lcrc, lcs, lus = 0, 0, 0
        else:
            lcrc, lcs, lus = local_crc, len(comp), len(data)
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, local_flags, method, DOS_TIME,
                           DOS_DATE, lcrc, lcs, lus, len(name), len(extra)) + name + extra + comp
        if descriptor:
            out += struct.pack("<4sIII", b"PK\x07\x08", local_crc, len(comp), len(data))
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags, method,
                               DOS_TIME, DOS_DATE, crc, len(comp), len(data), len(name), 0, 0, 0,
                               0, 0, offset) + name
    cd_off = len(out)
    out += central
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                       len(central), cd_off, 0)
    return bytes(out)


def zip_members(data):
    """(name, bytes) of every member of a zip we wrote ourselves with a real library."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def patch_zip_times(data):
    """Overwrite DOS time/date of every local and central header (zipfile stamps 'now')."""
    buf = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        pos = z.start_dir
        infos = z.infolist()
    for info in infos:
        assert buf[pos:pos + 4] == b"PK\x01\x02"
        struct.pack_into("<HH", buf, pos + 12, DOS_TIME, DOS_DATE)
        n, m, k = struct.unpack_from("<HHH", buf, pos + 28)
        lh = info.header_offset
        assert buf[lh:lh + 4] == b"PK\x03\x04"
        struct.pack_into("<HH", buf, lh + 10, DOS_TIME, DOS_DATE)
        pos += 46 + n + m + k
    return bytes(buf)


def deterministic_npz(arrays):
    """An .npz (stored) with fixed timestamps: used for corpus/expected/*.npz."""
    bio = io.BytesIO()
    import numpy as np
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_STORED) as z:
        for k in sorted(arrays):
            a = io.BytesIO()
            np.lib.format.write_array(a, np.array(arrays[k], order="C"), allow_pickle=False)
            zi = zipfile.ZipInfo(k + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            z.writestr(zi, a.getvalue())
    return bio.getvalue()


# ---------------------------------------------------------------------------------------------
# Manifest bookkeeping
# ---------------------------------------------------------------------------------------------

MANIFEST = []
GENERATORS = []


def generator(fn):
    GENERATORS.append(fn)
    return fn


def _current_generator():
    f = sys._getframe(2)
    while f is not None:
        if f.f_code.co_name in {g.__name__ for g in GENERATORS}:
            return f.f_code.co_name
        f = f.f_back
    raise RuntimeError("emit() outside a generator")


def emit(path, data, verdict, container, technique, globals_=(), calls=(), advisories=()):
    assert verdict in ("clean", "suspicious", "dangerous"), verdict
    assert path.split("/")[0] in DIRS, path
    if len(data) >= MAX_FIXTURE and path not in SIZE_EXCEPTIONS:
        raise ValueError("%s is %d bytes" % (path, len(data)))
    p = CORPUS / path
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    entry = {"path": path, "verdict": verdict, "globals": list(globals_)}
    if calls:
        entry["calls"] = list(calls)
    entry["container"] = container
    entry["technique"] = technique
    entry["advisories"] = list(advisories)
    entry["generator"] = _current_generator()
    MANIFEST.append(entry)
    return p


def stem(path):
    return Path(path).name.split(".")[0]


def tmp_path(name):
    d = CORPUS / ".tmp"
    d.mkdir(exist_ok=True)
    return d / name


def read_and_drop(p):
    data = Path(p).read_bytes()
    Path(p).unlink()
    return data


# ---------------------------------------------------------------------------------------------
# Expected tensors (for extraction tests)
# ---------------------------------------------------------------------------------------------


def flatten(obj, prefix=""):
    """Tensors/arrays of a loaded object, by dotted path (dicts by key, lists/tuples by index)."""
    import numpy as np
    import torch
    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, np.ndarray):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, "%s.%s" % (prefix, k) if prefix else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flatten(v, "%s.%d" % (prefix, i) if prefix else str(i)))
    return out


_DT = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64",
       "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "uint16": "U16",
       "uint32": "U32", "uint64": "U64", "bool": "BOOL", "complex64": "C64",
       "complex128": "C128"}


def write_expected(fixture_path, tensors):
    """corpus/expected/<stem>.npz (+ .json with dtype/shape); bf16 stored as its uint16 bits."""
    import numpy as np
    import torch
    arrays, meta = {}, {}
    for name, t in sorted(tensors.items()):
        if isinstance(t, torch.Tensor):
            t = t.detach().contiguous()
            dt = str(t.dtype).replace("torch.", "")
            if t.dtype == torch.bfloat16:
                a = t.view(torch.int16).numpy().view(np.uint16)
            else:
                a = t.numpy()
        else:
            a = t
            dt = a.dtype.name
            if a.dtype.byteorder == ">":
                a = a.astype(a.dtype.newbyteorder("<"))
        arrays[name] = np.array(a, order="C")
        meta[name] = {"dtype": _DT[dt], "shape": list(a.shape)}
    s = stem(fixture_path)
    EXPECTED.mkdir(exist_ok=True)
    out = EXPECTED / (s + ".npz")
    assert not out.exists(), "two fixtures share the stem %s" % s
    out.write_bytes(deterministic_npz(arrays))
    lines = ["  %s: %s" % (json.dumps(k), json.dumps(meta[k])) for k in sorted(meta)]
    (EXPECTED / (s + ".json")).write_text("{\n" + ",\n".join(lines) + "\n}\n")


# ---------------------------------------------------------------------------------------------
# benign/: made by the real libraries
# ---------------------------------------------------------------------------------------------


def plain_data():
    shared = [1, 2, 3]
    return {
        "int_small": 7, "int_neg": -123456, "int_i4_edge": 2 ** 31 - 1, "int_i4_over": 2 ** 31,
        "int_big": 2 ** 100 + 12345, "int_bigneg": -(2 ** 70) - 1,
        "float": 1.5, "float_neg_tiny": -5e-324, "nan": float("nan"), "inf": float("inf"),
        "ninf": float("-inf"),
        "str": "plain", "empty_str": "",
        "unicode": "caf\xe9 \u20ac \U0001f600 line\nbreak tab\t back\\slash quote' dq\" nul\x00 cr\r sub\x1a",
        "bytes": b"\x00\x01\xff raw\n", "empty_bytes": b"", "bytearray": bytearray(b"ba\x00"),
        "list": [1, [2, [3, []]]], "tuple": (1, "two", 3.0), "empty_tuple": (),
        "tuple1": ("one",), "set": {1, 2, 3}, "empty_set": set(), "frozenset": frozenset({42}),
        "none": None, "true": True, "false": False,
        "nested": {"k": {"k2": [None, (True,)]}, 7: "int key", (1, 2): "tuple key"},
        "shared_a": shared, "shared_b": shared,
    }


@generator
def benign_plain_data_all_protocols():
    for proto in range(6):
        data = pickle.dumps(plain_data(), protocol=proto)
        emit("benign/plain_data_proto%d.pkl" % proto, data, "clean", "pickle",
             "plain builtins data pickled by CPython pickle.dumps at protocol %d (bytes/bytearray/"
             "set/frozenset reduce to _codecs.encode / builtins.* at low protocols)" % proto)


@generator
def benign_text_opcodes_proto0():
    """Protocol-0 text opcodes with quoting/escaping corner cases, assembled by hand."""
    a = Asm().MARK()
    a.STRING("k_str").STRING("single ' quote \\ backslash \n newline \t tab \x7f")
    a.STRING("k_dq").STRING(b'"double quoted \'x\' \\x41\\101"')
    a.STRING("k_uni").UNICODE("caf\xe9 \u20ac \U0001f600 \\ \n \r \x00 \x1a")
    a.STRING("k_int").INT(b"-42")
    a.STRING("k_int_plus").INT(b"+17")
    a.STRING("k_true").INT(b"01")
    a.STRING("k_false").INT(b"00")
    a.STRING("k_long").LONG(b"123456789012345678901234567890L")
    a.STRING("k_long_nosuffix").LONG(b"-99")
    a.STRING("k_float").FLOAT(b"1.5e300")
    a.STRING("k_nan").FLOAT(b"nan")
    a.STRING("k_ninf").FLOAT(b"-inf")
    a.STRING("k_none").NONE()
    a.STRING("k_list").MARK().INT(1).INT(2).LIST().PUT(5)
    a.STRING("k_again").GET(5)
    a.STRING("k_tuple").MARK().STRING("a").UNICODE("b").TUPLE()
    a.STRING("k_dict").MARK().STRING("x").INT(1).DICT()
    a.DICT().STOP()
    data = check_parses(a.bytes(), "text")
    v = safe_loads(data)
    assert v["k_true"] is True and v["k_false"] is False and v["k_again"] is v["k_list"]
    assert v["k_dq"] == "double quoted 'x' AA", v["k_dq"]
    emit("benign/text_opcodes_proto0.pkl", data, "clean", "pickle",
         "hand-assembled protocol 0: STRING with both quote styles and escapes, UNICODE raw-unicode-"
         "escape, INT 00/01 booleans and signs, LONG with and without L, FLOAT nan/-inf, PUT/GET")


@generator
def benign_ordereddict():
    od = collections.OrderedDict([("b", 2), ("a", [1, 2]), ("c", collections.OrderedDict())])
    for proto in (2, 4):
        emit("benign/ordereddict_proto%d.pkl" % proto, pickle.dumps(od, protocol=proto), "clean",
             "pickle", "collections.OrderedDict (nested) at protocol %d" % proto)


def numpy_arrays():
    import numpy as np
    rng = np.random.default_rng(1234)
    return {
        "f32": rng.standard_normal((2, 3)).astype(np.float32),
        "f64": rng.standard_normal(4),
        "f16": rng.standard_normal(3).astype(np.float16),
        "i8": np.arange(-3, 3, dtype=np.int8),
        "u8": np.arange(250, 256, dtype=np.uint8),
        "i64": np.array([-(2 ** 40), 0, 2 ** 40], dtype=np.int64),
        "bool": np.array([True, False, True]),
        "c64": np.array([1 + 2j, -0.5j], dtype=np.complex64),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        "zero_d": np.array(3.25),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


@generator
def benign_numpy_pickles():
    import numpy as np
    for proto in (2, 4, 5):
        obj = dict(numpy_arrays())
        obj["scalar_f64"] = np.float64(1.5)
        obj["scalar_i32"] = np.int32(-7)
        obj["scalar_bool"] = np.bool_(True)
        path = "benign/numpy_arrays_proto%d.pkl" % proto
        emit(path, pickle.dumps(obj, protocol=proto), "clean", "pickle",
             "numpy arrays (f32/f64/f16/i8/u8/i64/bool/c64, Fortran order, 0-d, empty) and numpy "
             "scalars pickled at protocol %d" % proto)
        write_expected(path, flatten(numpy_arrays()))


def torch_state_dict():
    import torch
    g = torch.Generator().manual_seed(0)
    base = torch.randn(3, 4, generator=g)
    ten = torch.arange(10, dtype=torch.float32)
    sd = collections.OrderedDict()
    sd["fp32"] = torch.randn(2, 3, generator=g)
    sd["fp16"] = torch.randn(4, generator=g).half()
    sd["bf16"] = torch.randn(2, 2, generator=g).bfloat16()
    sd["int64"] = torch.arange(-2, 3, dtype=torch.int64)
    sd["bool"] = torch.tensor([True, False, True])
    sd["shared_full"] = base                 # storage shared by three tensors
    sd["shared_rows"] = base[1:]             # same storage, storage_offset 4
    sd["transposed"] = base.t()              # same storage, non-contiguous strides (1, 4)
    sd["offset_slice"] = ten[3:7]            # storage of 10 elements, offset 3
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.empty(0, 3)
    return sd


@generator
def benign_torch_zip():
    import torch
    sd = torch_state_dict()
    p = tmp_path("torch_state_dict.pt")
    torch.save(sd, p)
    data = read_and_drop(p)
    path = "benign/torch_state_dict.pt"
    emit(path, data, "clean", "torch-zip",
         "torch.save zip of a state_dict: fp32, fp16, bf16, int64, bool, one storage shared by a "
         "full view, a row view (storage offset) and a transposed non-contiguous view, a sliced "
         "view with offset, a 0-d scalar and an empty tensor")
    loaded = torch.load(io.BytesIO(data), weights_only=True)
    assert all(torch.equal(loaded[k], sd[k]) for k in sd)
    write_expected(path, flatten(loaded))
    pkl = dict(zip_members(data))["torch_state_dict/data.pkl"]
    emit("benign/torch_state_dict_data.pkl", pkl, "clean", "pickle",
         "the raw data.pkl pickle of benign/torch_state_dict.pt (protocol 2 with BINPERSID "
         "storage ids), outside its zip")


LEGACY_ELEM_SIZE = {"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
                    "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1,
                    "ByteStorage": 1, "BoolStorage": 1}


def fix_legacy_keys(data):
    """Legacy torch files name storages by str(storage._cdata), a pointer, and write the raw
    storages in the sorted order of those names: renumber the keys in order of first appearance
    (same length, so the pickles keep their layout) and reorder the raw records to match, so the
    file is deterministic.  Returns (new bytes, end offsets of the five pickles)."""
    f = io.BytesIO(data)
    ends = []
    for _ in range(5):
        for _ in pickletools.genops(f):
            pass
        ends.append(f.tell())
    main = data[ends[2]:ends[3]]
    order, size = [], {}
    memo, events, last = {}, [], None
    for op, arg, pos in pickletools.genops(io.BytesIO(main)):
        if op.name in ("GLOBAL", "BINUNICODE", "SHORT_BINUNICODE"):
            last = (op.name == "GLOBAL", arg)
            events.append(last)
        elif op.name in ("BINGET", "LONG_BINGET"):
            last = memo.get(arg)
            events.append(last)
        elif op.name in ("BINPUT", "LONG_BINPUT"):
            memo[arg] = last
    for i in range(len(events) - 2):
        if events[i] == (False, "storage") and events[i + 1] and events[i + 1][0]:
            key = events[i + 2][1]
            if key not in size:
                order.append(key)
                size[key] = LEGACY_ELEM_SIZE[events[i + 1][1].split()[1]]
    old_sorted = [arg for op, arg, pos in pickletools.genops(io.BytesIO(data[ends[3]:ends[4]]))
                  if op.name in ("BINUNICODE", "SHORT_BINUNICODE", "UNICODE")]
    assert sorted(order) == old_sorted and len({len(k) for k in order}) == 1, (order, old_sorted)
    new_name = {k: "1" + str(i).zfill(len(k) - 1) for i, k in enumerate(order)}
    records, pos = {}, ends[4]
    for k in old_sorted:
        n = struct.unpack_from("<Q", data, pos)[0]
        ln = 8 + n * size[k]
        records[k] = data[pos:pos + ln]
        pos += ln
    assert pos == len(data)
    for k in order:
        main = main.replace(k.encode(), new_name[k].encode())
    keys = pickle.dumps(sorted(new_name.values()), protocol=2)
    assert len(keys) == ends[4] - ends[3]
    out = data[:ends[2]] + main + keys + b"".join(records[k] for k in order)
    return out, ends


@generator
def benign_torch_legacy():
    import torch
    sd = torch_state_dict()
    p = tmp_path("torch_state_dict_legacy.pt")
    torch.save(sd, p, _use_new_zipfile_serialization=False)
    data, _ = fix_legacy_keys(read_and_drop(p))
    path = "benign/torch_state_dict_legacy.pt"
    emit(path, data, "clean", "torch-legacy",
         "torch.save(..., _use_new_zipfile_serialization=False) of the same state_dict: five "
         "stacked pickles then raw little-endian storages (storage keys renumbered for "
         "determinism)")
    loaded = torch.load(io.BytesIO(data), weights_only=True)
    assert all(torch.equal(loaded[k], sd[k]) for k in sd)
    assert loaded["shared_rows"].storage_offset() == 4 and loaded["transposed"].stride() == (1, 4)
    write_expected(path, flatten(loaded))


@generator
def benign_torch_lightning_ckpt():
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loss = model(torch.ones(4, 3)).sum()
    loss.backward()
    opt.step()
    ckpt = {
        "epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.4.0",
        "state_dict": model.state_dict(), "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [], "callbacks": {}, "hyper_parameters": {"lr": 0.01, "hidden": 2},
        "loops": None,
    }
    p = tmp_path("lightning_checkpoint.ckpt")
    torch.save(ckpt, p)
    data = read_and_drop(p)
    path = "benign/lightning_checkpoint.ckpt"
    emit(path, data, "clean", "torch-zip",
         "Lightning-style checkpoint dict: epoch, global_step, state_dict, optimizer_states "
         "(Adam state with 0-d step tensors and param_groups), lr_schedulers, hyper_parameters")
    write_expected(path, flatten(torch.load(io.BytesIO(data), weights_only=True)))


@generator
def benign_torch_ckpt_namespace():
    import numpy as np
    import torch
    torch.manual_seed(1)
    lin = torch.nn.Linear(2, 2)
    ckpt = {"model": lin.state_dict(),
            "args": argparse.Namespace(lr=0.001, layers=[2, 3], name="tiny", dropout=None),
            "best_score": np.float64(0.93), "epoch": 5}
    p = tmp_path("checkpoint_namespace.pth")
    torch.save(ckpt, p)
    data = read_and_drop(p)
    path = "benign/checkpoint_namespace.pth"
    emit(path, data, "clean", "torch-zip",
         "checkpoint with extras torch weights_only rejects but that are inert: argparse.Namespace "
         "hyper-parameters (NEWOBJ + BUILD of a plain dict) and a numpy float64 scalar "
         "(numpy._core.multiarray.scalar + _codecs.encode)")
    write_expected(path, flatten({"model": lin.state_dict()}))


@generator
def benign_torch_full_module():
    import torch
    torch.manual_seed(2)
    lin = torch.nn.Linear(3, 2)
    p = tmp_path("full_module_linear.pt")
    torch.save(lin, p)
    data = read_and_drop(p)
    emit("benign/full_module_linear.pt", data, "clean", "torch-zip",
         "torch.save of a whole nn.Linear module (not a state_dict): the module class is pickled "
         "by reference, instantiated and given state, as the generated torch allowlist allows", [])


@generator
def benign_torchscript():
    import torch
    torch.manual_seed(3)
    m = torch.jit.script(torch.nn.Linear(3, 2))
    p = tmp_path("torchscript_linear.pt")
    torch.jit.save(m, p)
    # torch's miniz deflate output for code/ members varies from run to run: re-pack the same
    # members, in the same order and with the same methods, with Python's zlib.
    data = build_zip(real_entries(read_and_drop(p)), align=64)
    assert torch.jit.load(io.BytesIO(data)).weight.shape == (2, 3)
    emit("benign/torchscript_linear.pt", data, "clean", "torchscript",
         "torch.jit.save of a scripted nn.Linear (members re-packed deterministically): a "
         "TorchScript archive whose code/ calls nothing outside the model (no file operator, no "
         "native library's operator); its __torch__ classes are compiled from that code")


@generator
def benign_torch_tar():
    """The oldest torch format (<= 0.1.10): a tar with 'storages', 'tensors' and 'pickle'."""
    members = [
        ("storages", pickle.dumps(0, protocol=2) + pickle.dumps([], protocol=2)),
        ("tensors", pickle.dumps(0, protocol=2)),
        ("pickle", pickle.dumps({"epoch": 1, "note": "no tensors"}, protocol=2)),
    ]
    emit("benign/torch_legacy_tar.tar", make_tar(members), "clean", "torch-tar",
         "minimal legacy torch tar (no storages, no tensors, a plain dict as the main pickle)")


def make_tar(members):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 0
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


def joblib_arrays():
    import numpy as np
    rng = np.random.default_rng(7)
    return {
        "w": rng.standard_normal((2, 3)).astype(np.float32),
        "b": rng.standard_normal(3),
        "idx": np.arange(5, dtype=np.int64),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(3, 2)),
        "mask": np.array([True, False]),
        "zero_d": np.array(2.5),
        "meta": {"name": "arrays", "version": 1},
    }


JOBLIB_COMPRESSIONS = [(None, "joblib"), ("zlib", "joblib-zlib"), ("gzip", "joblib-gzip"),
                       ("bz2", "joblib-bz2"), ("xz", "joblib-xz"), ("lzma", "joblib-lzma"),
                       ("lz4", "joblib-lz4")]


def joblib_dump_bytes(obj, name, method):
    import joblib
    p = tmp_path(name)
    joblib.dump(obj, p, compress=(method, 3) if method else 0)
    return read_and_drop(p)


@generator
def benign_joblib_arrays():
    import joblib
    for method, container in JOBLIB_COMPRESSIONS:
        suffix = "_" + method if method else ""
        name = "joblib_arrays%s.joblib" % suffix
        data = joblib_dump_bytes(joblib_arrays(), name, method)
        path = "benign/" + name
        emit(path, data, "clean", container,
             "joblib.dump of a dict of numpy arrays (C and Fortran order, 0-d, bool) %s: "
             "NumpyArrayWrapper + raw array bytes between opcodes" %
             ("with %s compression" % method if method else "uncompressed"))
        write_expected(path, flatten(joblib.load(io.BytesIO(data))))


class _NoTell(io.RawIOBase):
    """A write-only stream that cannot tell() its position, like a pipe or a socket."""

    def __init__(self):
        super().__init__()
        self.data = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.data += bytes(b)
        return len(b)


@generator
def benign_joblib_unseekable():
    import joblib
    out = _NoTell()
    joblib.dump(joblib_arrays(), out)
    data = bytes(out.data)
    path = "benign/joblib_arrays_unseekable.joblib"
    emit(path, data, "clean", "joblib",
         "joblib.dump of a dict of numpy arrays to a stream that cannot tell(): each "
         "NumpyArrayWrapper has numpy_array_alignment_bytes None, and its bytes follow the BUILD "
         "without the padding-length byte")
    write_expected(path, flatten(joblib.load(io.BytesIO(data))))


def sklearn_model():
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    X = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.2], [0.2, 0.9, 0.4], [0.9, 0.1, 0.1],
                  [0.1, 0.8, 0.9], [0.8, 0.3, 0.0], [0.3, 0.7, 0.6], [0.7, 0.2, 0.3]])
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    return LogisticRegression(random_state=0).fit(X, y)


@generator
def benign_joblib_sklearn():
    import joblib
    for method, container in JOBLIB_COMPRESSIONS:
        suffix = "_" + method if method else ""
        name = "sklearn_logreg%s.joblib" % suffix
        data = joblib_dump_bytes(sklearn_model(), name, method)
        path = "benign/" + name
        emit(path, data, "clean", container,
             "joblib.dump of a fitted sklearn LogisticRegression %s; the estimator is "
             "instantiated and given state, as the generated scikit-learn allowlist allows" %
             ("with %s compression" % method if method else "uncompressed"),
             [])
        m = joblib.load(io.BytesIO(data))
        write_expected(path, {k: getattr(m, k) for k in ("coef_", "intercept_", "classes_",
                                                          "n_iter_")})


def npy_bytes(arr, allow_pickle=False):
    import numpy as np
    bio = io.BytesIO()
    np.save(bio, arr, allow_pickle=allow_pickle)
    return bio.getvalue()


@generator
def benign_numpy_files():
    import numpy as np
    arrs = numpy_arrays()
    cases = [
        ("array_f32.npy", arrs["f32"], "float32 (2, 3)"),
        ("array_fortran_i16.npy", np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
         "int16 Fortran-order (fortran_order: True)"),
        ("array_bigendian_f64.npy", np.arange(4, dtype=">f8"), "big-endian float64 ('>f8')"),
        ("array_0d_bool.npy", np.array(True), "0-d bool"),
    ]
    for name, arr, what in cases:
        path = "benign/" + name
        emit(path, npy_bytes(arr), "clean", "npy", "numpy.save of a %s array" % what)
        write_expected(path, {"array": np.load(CORPUS / path)})
    obj = np.empty(4, dtype=object)
    obj[:] = [1, "two", [3.0, None], {"k": (True, b"x")}]
    emit("benign/array_object_plain.npy", npy_bytes(obj, allow_pickle=True), "clean", "npy",
         "numpy.save of an object-dtype array of plain data: the payload is a protocol-3/4 "
         "pickle with only numpy and builtins globals")
    for fn, name, container in ((np.savez, "arrays.npz", "npz"),
                                (np.savez_compressed, "arrays_compressed.npz", "npz")):
        bio = io.BytesIO()
        fn(bio, weights=arrs["f32"], fortran=arrs["fortran"], i8=arrs["i8"], zero_d=arrs["zero_d"])
        data = patch_zip_times(bio.getvalue())
        path = "benign/" + name
        emit(path, data, "clean", container,
             "numpy.%s of four arrays (zip timestamps fixed after writing)" % fn.__name__)
        with np.load(io.BytesIO(data)) as z:
            write_expected(path, {k: z[k] for k in z.files})


@generator
def benign_safetensors():
    import numpy as np
    from safetensors.numpy import save_file
    rng = np.random.default_rng(5)
    tensors = {"embed.weight": rng.standard_normal((4, 3)).astype(np.float32),
               "norm.bias": rng.standard_normal(3).astype(np.float16),
               "step": np.array([7], dtype=np.int64)}
    p = tmp_path("valid.safetensors")
    save_file(tensors, str(p), metadata={"format": "np"})
    emit("benign/valid.safetensors", read_and_drop(p), "clean", "safetensors",
         "safetensors.numpy.save_file of three tensors with __metadata__")


def gguf_bytes():
    import gguf
    import numpy as np
    rng = np.random.default_rng(6)
    p = tmp_path("valid.gguf")
    w = gguf.GGUFWriter(str(p), "llama")
    w.add_name("tiny-test")
    w.add_uint32("tiny.block_count", 1)
    w.add_string("tokenizer.chat_template", "{% for m in messages %}{{ m['content'] }}{% endfor %}")
    w.add_tensor("token_embd.weight", rng.standard_normal((4, 8)).astype(np.float32))
    w.add_tensor("output_norm.weight", np.ones(8, dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return read_and_drop(p)


@generator
def benign_gguf():
    emit("benign/valid.gguf", gguf_bytes(), "clean", "gguf",
         "gguf.GGUFWriter: arch llama, name, a uint32 key, a plain chat template, an F32 and an "
         "F16 tensor")


# ---------------------------------------------------------------------------------------------
# benign but unknown: a user class
# ---------------------------------------------------------------------------------------------


@generator
def benign_unknown_user_class():
    a = Asm().sglobal("mylib.model", "MyModel").EMPTY_TUPLE().NEWOBJ().MEMOIZE()
    a.EMPTY_DICT().MEMOIZE().MARK()
    a.ustr("hidden", True).BININT1(16).ustr("weights", True).MARK().BINFLOAT(0.5).BINFLOAT(-1.25)
    a.LIST().MEMOIZE().SETITEMS().BUILD().STOP()
    emit("benign/unknown_user_class.pkl", check_parses(framed(4, a.bytes()), ""), "suspicious",
         "pickle", "instance of a user class mylib.model.MyModel (NEWOBJ + BUILD with a plain "
         "dict), as written by pickle protocol 4: unknown import", ["mylib.model.MyModel"],
         advisories=["mmaitre314/picklescan#66"])


# ---------------------------------------------------------------------------------------------
# malicious/: one fixture per technique, hand-assembled
# ---------------------------------------------------------------------------------------------

def rep(fn, *args):
    return "%s(%s)" % (fn, ", ".join(repr(a) for a in args))


@generator
def reduce_os_system():
    emit("malicious/reduce_os_system_proto0.pkl",
         check_parses(call_proto0("os", "system", PAYLOAD), ""), "dangerous", "pickle",
         "protocol 0: GLOBAL 'os system', MARK, STRING, TUPLE, REDUCE", ["os.system"],
         [rep("os.system", PAYLOAD)])
    emit("malicious/reduce_posix_system_proto0.pkl",
         check_parses(call_proto0("posix", "system", PAYLOAD), ""), "dangerous", "pickle",
         "protocol 0: GLOBAL 'posix system' (what os.system pickles as on Linux) + REDUCE",
         ["posix.system"], [rep("posix.system", PAYLOAD)])
    emit("malicious/reduce_nt_system_proto0.pkl",
         check_parses(call_proto0("nt", "system", PAYLOAD), ""), "dangerous", "pickle",
         "protocol 0: GLOBAL 'nt system' (os.system as pickled on Windows) + REDUCE",
         ["nt.system"], [rep("nt.system", PAYLOAD)])
    a = Asm().GLOBAL(("posix", "system")).BINPUT(0).MARK().BINUNICODE(PAYLOAD).BINPUT(1)
    a.TUPLE().BINPUT(2).REDUCE().BINPUT(3).STOP()
    emit("malicious/reduce_posix_system_proto1.pkl", check_parses(a.bytes(), ""), "dangerous",
         "pickle", "protocol 1 (binary opcodes, no PROTO): GLOBAL + BINUNICODE + TUPLE + REDUCE",
         ["posix.system"], [rep("posix.system", PAYLOAD)])
    emit("malicious/reduce_posix_system_proto2.pkl",
         check_parses(call_proto2("posix", "system", PAYLOAD), ""), "dangerous", "pickle",
         "protocol 2: PROTO 2, GLOBAL, BINUNICODE, TUPLE1, REDUCE (what __reduce__ -> os.system "
         "gives at protocol 2)", ["posix.system"], [rep("posix.system", PAYLOAD)])
    emit("malicious/reduce_posix_system_proto4.pkl",
         check_parses(call_proto4("posix", "system", PAYLOAD), ""), "dangerous", "pickle",
         "protocol 4: FRAME, SHORT_BINUNICODE operands + MEMOIZE, STACK_GLOBAL, TUPLE1, REDUCE",
         ["posix.system"], [rep("posix.system", PAYLOAD)])
    body = call_proto4("os", "system", PAYLOAD)[2:]
    emit("malicious/reduce_os_system_proto5.pkl", check_parses(b"\x80\x05" + body, ""),
         "dangerous", "pickle", "protocol 5: same as protocol 4 with PROTO 5 and module 'os'",
         ["os.system"], [rep("os.system", PAYLOAD)])


@generator
def builtins_eval_exec():
    a = Asm().GLOBAL(("__builtin__", "eval")).PUT(0).MARK().UNICODE(PY_PAYLOAD).PUT(1)
    a.TUPLE().PUT(2).REDUCE().PUT(3).STOP()
    emit("malicious/builtins_eval_proto0.pkl", check_parses(a.bytes(), ""), "dangerous", "pickle",
         "protocol 0: GLOBAL '__builtin__ eval' (Python 2 name, mapped to builtins by "
         "fix_imports) + REDUCE with Python source", ["builtins.eval"],
         [rep("builtins.eval", PY_PAYLOAD)])
    src = "import os\nos.system('echo pwned')"
    emit("malicious/builtins_exec_proto2.pkl",
         check_parses(call_proto2("__builtin__", "exec", src), ""), "dangerous", "pickle",
         "protocol 2: GLOBAL '__builtin__ exec' + REDUCE", ["builtins.exec"],
         [rep("builtins.exec", src)])
    emit("malicious/builtins_eval_proto4.pkl",
         check_parses(call_proto4("builtins", "eval", PY_PAYLOAD), ""), "dangerous", "pickle",
         "protocol 4: STACK_GLOBAL builtins.eval + REDUCE", ["builtins.eval"],
         [rep("builtins.eval", PY_PAYLOAD)])


@generator
def subprocess_calls():
    a = Asm().PROTO(2).GLOBAL(("subprocess", "Popen")).BINPUT(0)
    a.MARK().BINUNICODE("echo").BINUNICODE("pwned").LIST().TUPLE1().REDUCE().STOP()
    emit("malicious/subprocess_popen_list_proto2.pkl", check_parses(a.bytes(), ""), "dangerous",
         "pickle", "subprocess.Popen(['echo', 'pwned']) with an argument list (LIST of "
         "BINUNICODE), protocol 2", ["subprocess.Popen"], [rep("subprocess.Popen", PAYLOAD_LIST)])
    a = Asm().sglobal("subprocess", "check_output").EMPTY_LIST().MEMOIZE().MARK()
    a.ustr("true", True).APPENDS().TUPLE1().MEMOIZE().REDUCE().MEMOIZE().STOP()
    emit("malicious/subprocess_check_output_proto4.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle", "subprocess.check_output(['true']) with EMPTY_LIST + APPENDS, "
         "protocol 4", ["subprocess.check_output"], [rep("subprocess.check_output", ["true"])])


@generator
def inst_obj_newobj():
    a = Asm().MARK().STRING(PAYLOAD).INST(("os", "system")).STOP()
    emit("malicious/inst_os_system_proto0.pkl", check_parses(a.bytes(), ""), "dangerous", "pickle",
         "INST opcode: MARK, args, INST 'os system' calls os.system(*args) (no REDUCE at all)",
         ["os.system"], [rep("os.system", PAYLOAD)])
    a = Asm().MARK().GLOBAL(("posix", "system")).BINUNICODE(PAYLOAD).OBJ().STOP()
    emit("malicious/obj_posix_system_proto1.pkl", check_parses(a.bytes(), ""), "dangerous", "pickle",
         "OBJ opcode: MARK, callable, args, OBJ calls callable(*args) (no REDUCE)",
         ["posix.system"], [rep("posix.system", PAYLOAD)])
    a = Asm().PROTO(2).GLOBAL(("functools", "partial")).GLOBAL(("posix", "system"))
    a.BINUNICODE(PAYLOAD).TUPLE2().NEWOBJ().EMPTY_TUPLE().REDUCE().STOP()
    emit("malicious/newobj_partial_system_proto2.pkl", check_parses(a.bytes(), ""), "dangerous",
         "pickle", "NEWOBJ: functools.partial.__new__(partial, posix.system, 'echo pwned') builds "
         "the bound call in __new__, then REDUCE with () runs it",
         ["posix.system"], [rep("posix.system", PAYLOAD)])
    a = Asm().sglobal("functools", "partial").sglobal("posix", "system").ustr(PAYLOAD, True)
    a.TUPLE2().MEMOIZE().EMPTY_DICT().MEMOIZE().NEWOBJ_EX().MEMOIZE().EMPTY_TUPLE().REDUCE()
    a.MEMOIZE().STOP()
    emit("malicious/newobj_ex_partial_system_proto4.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle", "NEWOBJ_EX(functools.partial, (posix.system, 'echo pwned'), {}) "
         "then REDUCE with ()", ["posix.system"],
         [rep("posix.system", PAYLOAD)])
    a = Asm().sglobal("subprocess", "Popen").EMPTY_TUPLE().EMPTY_DICT().MEMOIZE()
    a.ustr("args", True).EMPTY_LIST().MEMOIZE().MARK().ustr("echo", True).ustr("pwned", True)
    a.APPENDS().SETITEM().NEWOBJ_EX().MEMOIZE().STOP()
    emit("malicious/newobj_ex_popen_kwargs_proto4.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle", "NEWOBJ_EX(subprocess.Popen, (), {'args': [...]}) - keyword "
         "arguments through NEWOBJ_EX", ["subprocess.Popen"])


@generator
def build_setstate():
    a = Asm().sglobal("argparse", "Namespace").EMPTY_TUPLE().REDUCE().MEMOIZE()
    a.EMPTY_DICT().MEMOIZE().ustr("__setstate__", True).sglobal("posix", "system").SETITEM()
    a.BUILD().ustr(PAYLOAD, True).BUILD().STOP()
    emit("malicious/build_setstate_injection.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle",
         "BUILD #1 puts '__setstate__': posix.system into the __dict__ of an (allowlisted) "
         "argparse.Namespace; BUILD #2 then calls inst.__setstate__('echo pwned')",
         ["posix.system"], advisories=[])
    a = Asm().PROTO(2).GLOBAL(("mylib.evil", "Payload")).EMPTY_TUPLE().NEWOBJ()
    a.EMPTY_DICT().BINUNICODE("cmd").BINUNICODE(PAYLOAD).SETITEM().BUILD().STOP()
    emit("malicious/build_unknown_class_setstate.pkl", check_parses(a.bytes(), ""), "suspicious",
         "pickle", "NEWOBJ + BUILD on an unknown class mylib.evil.Payload: its __setstate__ would "
         "run with the state; unknown import", ["mylib.evil.Payload"])


@generator
def stack_global_operand_tricks():
    # operands memoized long before, retrieved with BINGET, decoys in between
    a = Asm().ustr("posix").MEMOIZE().POP().ustr("system").MEMOIZE().POP()
    a.ustr("collections").ustr("OrderedDict").POP().POP()
    a.BINGET(0).BINGET(1).STACK_GLOBAL().ustr(PAYLOAD).TUPLE1().REDUCE().STOP()
    emit("evasion/stack_global_memo_binget.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle", "STACK_GLOBAL operands come from MEMOIZE/BINGET; popped decoy "
         "strings 'collections' 'OrderedDict' sit right before it", ["posix.system"],
         [rep("posix.system", PAYLOAD)])
    # DUP: the opcodes before STACK_GLOBAL are DUP/POP, not strings
    a = Asm().ustr("posix").ustr("system").DUP().POP().STACK_GLOBAL()
    a.ustr(PAYLOAD).TUPLE1().REDUCE().STOP()
    emit("evasion/stack_global_dup.pkl", check_parses(framed(4, a.bytes()), ""), "dangerous",
         "pickle", "STACK_GLOBAL preceded by DUP + POP instead of the operand strings",
         ["posix.system"], [rep("posix.system", PAYLOAD)])
    # text memo PUT/GET inside a protocol 4 stream
    a = Asm().ustr("posix").PUT(b"10").POP().ustr("system").PUT(b"20").POP()
    a.GET(b"10").GET(b"20").STACK_GLOBAL().ustr(PAYLOAD).TUPLE1().REDUCE().STOP()
    emit("evasion/stack_global_text_put_get.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle", "STACK_GLOBAL operands through protocol-0 text PUT/GET memo "
         "opcodes inside a protocol 4 stream", ["posix.system"], [rep("posix.system", PAYLOAD)])
    # LONG_BINPUT overwrite: the memo slot first holds a harmless name, then is overwritten
    a = Asm().ustr("collections").LONG_BINPUT(7).POP().ustr("OrderedDict").LONG_BINPUT(8).POP()
    a.ustr("posix").LONG_BINPUT(7).POP().ustr("system").LONG_BINPUT(8).POP()
    a.LONG_BINGET(7).LONG_BINGET(8).STACK_GLOBAL().ustr(PAYLOAD).TUPLE1().REDUCE().STOP()
    emit("evasion/memo_overwrite.pkl", check_parses(framed(4, a.bytes()), ""), "dangerous",
         "pickle", "memo slots 7/8 first store 'collections'/'OrderedDict', then are overwritten "
         "with 'posix'/'system' before LONG_BINGET + STACK_GLOBAL", ["posix.system"],
         [rep("posix.system", PAYLOAD)])
    # SHORT_BINSTRING operands (py2 str, decoded to str by the unpickler)
    a = Asm().SHORT_BINSTRING("posix").SHORT_BINSTRING("system").STACK_GLOBAL()
    a.ustr(PAYLOAD).TUPLE1().REDUCE().STOP()
    emit("evasion/stack_global_binstring_operands.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle", "STACK_GLOBAL operands pushed with SHORT_BINSTRING (decoded "
         "to str with the default ASCII encoding)", ["posix.system"],
         [rep("posix.system", PAYLOAD)])


@generator
def dotted_names():
    for mod, name, adv in (("torch.serialization", "os.system", []),
                           ("sysconfig", "os.system", [])):
        a = Asm().sglobal(mod, name).ustr(PAYLOAD, True).TUPLE1().REDUCE().STOP()
        fname = "evasion/dotted_%s_os_system.pkl" % mod.replace(".", "_")
        emit(fname, check_parses(framed(4, a.bytes()), ""), "dangerous", "pickle",
             "protocol 4 dotted STACK_GLOBAL(%r, %r): the name walks attributes to os.system" %
             (mod, name), ["%s.%s" % (mod, name)], [rep("%s.%s" % (mod, name), PAYLOAD)],
             adv)
    a = Asm().EMPTY_DICT().MEMOIZE().ustr("mods", True).sglobal("collections", "_sys.modules")
    a.SETITEM().STOP()
    emit("evasion/dotted_collections_sys_modules.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle", "STACK_GLOBAL('collections', '_sys.modules') reaches sys.modules "
         "through collections' private import of sys (reference only)",
         ["collections._sys.modules"])
    a = Asm().PROTO(4).GLOBAL(("sysconfig", "os.system")).BINUNICODE(PAYLOAD).TUPLE1()
    a.REDUCE().STOP()
    emit("evasion/dotted_global_opcode_proto4.pkl", check_parses(a.bytes(), ""), "dangerous",
         "pickle", "text GLOBAL 'sysconfig os.system' after PROTO 4: find_class splits dotted "
         "names for any opcode once protocol >= 4", ["sysconfig.os.system"],
         [rep("sysconfig.os.system", PAYLOAD)])
    a = Asm().PROTO(2).EMPTY_DICT().BINUNICODE("k").BINUNICODE("v").SETITEM().POP().PROTO(4)
    a.sglobal("sysconfig", "os.system").ustr(PAYLOAD).TUPLE1().REDUCE().STOP()
    emit("evasion/proto_switch_dotted.pkl", check_parses(a.bytes(), ""), "dangerous", "pickle",
         "starts as protocol 2, a second PROTO 4 mid-stream enables dotted names for the "
         "STACK_GLOBAL that follows", ["sysconfig.os.system"],
         [rep("sysconfig.os.system", PAYLOAD)])
    # modelscan #330 family: numpy.__builtins__ is the builtins dict
    a = Asm().sglobal("builtins", "dict.get").sglobal("numpy", "__builtins__").ustr("eval", True)
    a.TUPLE2().REDUCE().MEMOIZE().ustr(PY_PAYLOAD, True).TUPLE1().REDUCE().STOP()
    emit("evasion/numpy_builtins_dict_get_eval.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle", "STACK_GLOBAL('numpy', '__builtins__') is the builtins dict; "
         "dict.get(it, 'eval') returns eval, then REDUCE runs it; no dangerous name is written",
         ["numpy.__builtins__"], advisories=["protectai/modelscan#330"])
    a = Asm().sglobal("numpy", "__builtins__.get").ustr("eval", True).TUPLE1().REDUCE().MEMOIZE()
    a.POP().sglobal("argparse", "Namespace").EMPTY_TUPLE().REDUCE().MEMOIZE()
    a.EMPTY_DICT().ustr("__setstate__").BINGET(4).SETITEM().BUILD()
    a.ustr(PY_PAYLOAD).BUILD().STOP()
    emit("evasion/numpy_builtins_build_reduce.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle", "STACK_GLOBAL('numpy', '__builtins__.get') + REDUCE fetches "
         "eval; BUILD installs it as __setstate__ of a Namespace; a second BUILD calls it",
         ["numpy.__builtins__.get"], advisories=["protectai/modelscan#330"])


@generator
def indirect_calls():
    # getattr(__import__('os'), 'system')('echo pwned')
    a = Asm().PROTO(2).GLOBAL(("__builtin__", "getattr")).GLOBAL(("__builtin__", "__import__"))
    a.BINUNICODE("os").TUPLE1().REDUCE().BINUNICODE("system").TUPLE2().REDUCE()
    a.BINUNICODE(PAYLOAD).TUPLE1().REDUCE().STOP()
    emit("malicious/getattr_import_chain.pkl", check_parses(a.bytes(), ""), "dangerous", "pickle",
         "builtins.getattr(builtins.__import__('os'), 'system')('echo pwned') with the protocol 2 "
         "'__builtin__' names", ["builtins.__import__.system", "builtins.__import__"],
         ["builtins.__import__('os')"])
    a = Asm().sglobal("builtins", "getattr").sglobal("importlib", "import_module")
    a.ustr("os", True).TUPLE1().REDUCE().ustr("system", True).TUPLE2().REDUCE()
    a.ustr(PAYLOAD, True).TUPLE1().REDUCE().STOP()
    emit("malicious/importlib_import_module.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle", "getattr(importlib.import_module('os'), 'system')('echo pwned')",
         ["importlib.import_module.system", "importlib.import_module"], ["importlib.import_module('os')"],
         ["mmaitre314/picklescan#66"])
    a = Asm().sglobal("operator", "attrgetter").ustr("system", True).TUPLE1().REDUCE()
    a.sglobal("importlib", "import_module").ustr("os", True).TUPLE1().REDUCE().TUPLE1().REDUCE()
    a.ustr(PAYLOAD, True).TUPLE1().REDUCE().STOP()
    emit("malicious/operator_attrgetter.pkl", check_parses(framed(4, a.bytes()), ""), "dangerous",
         "pickle", "operator.attrgetter('system')(importlib.import_module('os'))('echo pwned')",
         ["operator.attrgetter", "importlib.import_module"], ["operator.attrgetter('system')"],
         ["mmaitre314/picklescan#66"])
    a = Asm().sglobal("_operator", "methodcaller").ustr("system", True).ustr(PAYLOAD, True)
    a.TUPLE2().REDUCE().sglobal("importlib", "import_module").ustr("os", True).TUPLE1().REDUCE()
    a.TUPLE1().REDUCE().STOP()
    emit("malicious/operator_methodcaller.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle",
         "_operator.methodcaller('system', 'echo pwned')(importlib.import_module('os'))",
         ["importlib.import_module.system", "importlib.import_module"],
         [rep("_operator.methodcaller", "system", PAYLOAD)])
    a = Asm().GLOBAL(("functools", "partial")).MARK().GLOBAL(("os", "system")).STRING(PAYLOAD)
    a.TUPLE().REDUCE().MARK().TUPLE().REDUCE().STOP()
    emit("malicious/functools_partial_proto0.pkl", check_parses(a.bytes(), ""), "dangerous",
         "pickle", "functools.partial(os.system, 'echo pwned') via REDUCE, then REDUCE with ()",
         ["os.system"], ["functools.partial(os.system, 'echo pwned')"])


@generator
def nested_loaders():
    inner = call_proto0("posix", "system", PAYLOAD)
    a = Asm().PROTO(2).GLOBAL(("pickle", "loads")).BINBYTES(inner).TUPLE1().REDUCE().STOP()
    emit("malicious/nested_pickle_loads.pkl", check_parses(a.bytes(), ""), "dangerous", "pickle",
         "pickle.loads(b'...') of an embedded protocol 0 pickle that calls posix.system",
         ["pickle.loads"], ["pickle.loads("], ["protectai/modelscan#267"])
    inner4 = call_proto4("posix", "system", PAYLOAD)
    a = Asm().sglobal("_pickle", "loads").raw(b"C" + bytes([len(inner4)]) + inner4).MEMOIZE()
    a.TUPLE1().REDUCE().STOP()
    emit("malicious/nested__pickle_loads.pkl", check_parses(framed(4, a.bytes()), ""), "dangerous",
         "pickle", "_pickle.loads(SHORT_BINBYTES) of an embedded protocol 4 pickle",
         ["_pickle.loads"], ["_pickle.loads("])
    emit("malicious/torch_serialization_load_path.pkl",
         check_parses(call_proto2("torch.serialization", "load", "/nonexistent/evil.pt"), ""),
         "dangerous", "pickle", "torch.serialization.load('/nonexistent/evil.pt'): a nested "
         "torch.load of another file", ["torch.serialization.load"],
         [rep("torch.serialization.load", "/nonexistent/evil.pt")])
    evil_zip = torch_like_zip("archive", call_proto2("posix", "system", PAYLOAD), {})
    a = Asm().sglobal("functools", "partial").sglobal("torch", "load").TUPLE1().MEMOIZE()
    a.EMPTY_DICT().MEMOIZE().ustr("weights_only", True).NEWFALSE().SETITEM().NEWOBJ_EX()
    a.MEMOIZE().sglobal("io", "BytesIO").BINBYTES(evil_zip).MEMOIZE().TUPLE1().REDUCE().MEMOIZE()
    a.TUPLE1().REDUCE().STOP()
    emit("malicious/torch_load_nested_zip.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle", "partial(torch.load, weights_only=False)(io.BytesIO(<embedded "
         "torch zip whose data.pkl calls posix.system>)) built with NEWOBJ_EX",
         ["torch.load", "io.BytesIO"])


@generator
def stdlib_gadgets():
    src = "import os; os.system('echo pwned')"
    cases = [
        ("runpy_run_code", "runpy", "_run_code", (src, {}), "runpy._run_code(source, {})", []),
        ("numpy_testing_runstring", "numpy.testing._private.utils", "runstring", (src, {}),
         "numpy.testing._private.utils.runstring(source, {})", []),
        ("timeit_timeit", "timeit", "timeit", (src,), "timeit.timeit(source)",
         ["GHSA-v7x6-rv5q-mhwc"]),
        ("pdb_run", "pdb", "run", (src,), "pdb.run(source)", []),
        ("webbrowser_open", "webbrowser", "open", ("http://127.0.0.1:9/",),
         "webbrowser.open(url) (network/process launch)", []),
        ("shutil_rmtree", "shutil", "rmtree", ("/nonexistent/picklescan-corpus",),
         "shutil.rmtree(path) (file-system damage; the path does not exist)", []),
        ("os_popen", "os", "popen", (PAYLOAD,), "os.popen(cmd)", []),
    ]
    for fname, mod, name, args, what, adv in cases:
        a = Asm().sglobal(mod, name)
        for x in args:
            if isinstance(x, dict):
                a.EMPTY_DICT().MEMOIZE()
            else:
                a.ustr(x, True)
        a.op({1: "TUPLE1", 2: "TUPLE2"}[len(args)]).MEMOIZE().REDUCE().MEMOIZE().STOP()
        shown = rep(mod + "." + name, *[x for x in args if not isinstance(x, dict)])
        calls = [shown[:-1] if any(isinstance(x, dict) for x in args) else shown]
        emit("malicious/%s.pkl" % fname, check_parses(framed(4, a.bytes()), ""), "dangerous",
             "pickle", what, [mod + "." + name], calls, adv)
    a = Asm().sglobal("socket", "create_connection").ustr("127.0.0.1", True).BININT2(9).TUPLE2()
    a.TUPLE1().REDUCE().STOP()
    emit("malicious/socket_create_connection.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle", "socket.create_connection(('127.0.0.1', 9)) (network)",
         ["socket.create_connection"], [rep("socket.create_connection", ("127.0.0.1", 9))])
    a = Asm().sglobal("code", "InteractiveInterpreter.runcode").sglobal("code", "InteractiveInterpreter")
    a.EMPTY_TUPLE().REDUCE().MEMOIZE().ustr(src, True).TUPLE2().REDUCE().STOP()
    emit("malicious/code_interactive_runcode.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle", "code.InteractiveInterpreter.runcode(InteractiveInterpreter(), "
         "source) through a dotted STACK_GLOBAL",
         ["code.InteractiveInterpreter.runcode", "code.InteractiveInterpreter"])


@generator
def reference_without_call():
    a = Asm().PROTO(2).EMPTY_DICT().BINUNICODE("fn").GLOBAL(("posix", "system")).SETITEM().STOP()
    emit("malicious/ref_only_posix_system.pkl", check_parses(a.bytes(), ""), "dangerous", "pickle",
         "{'fn': os.system}: a dangerous global that is imported and returned but never called "
         "(the import alone runs module code; the caller may call it)", ["posix.system"])


@generator
def broken_after_payload():
    good = call_proto2("posix", "system", PAYLOAD)[:-1]      # without STOP
    emit("malicious/payload_then_bad_opcode.pkl", good + b"\xff\xfe" + b".", "dangerous",
         "pickle", "posix.system call (REDUCE) followed by an invalid opcode byte 0xff: the call "
         "has already run when the unpickler fails", ["posix.system"],
         [rep("posix.system", PAYLOAD)])
    emit("malicious/payload_then_truncated.pkl", good + b"X\x10\x00\x00\x00trunc", "dangerous",
         "pickle", "posix.system call followed by a BINUNICODE whose data is cut short, no STOP",
         ["posix.system"], [rep("posix.system", PAYLOAD)])


@generator
def ext_opcodes():
    for op, code in (("EXT1", 0x2A), ("EXT2", 0x1234), ("EXT4", 0x12345678)):
        a = Asm().PROTO(2).op(op, code).BINUNICODE(PAYLOAD).TUPLE1().REDUCE().STOP()
        emit("malicious/%s_registry_call.pkl" % op.lower(), check_parses(a.bytes(), ""),
             "dangerous", "pickle", "%s %d: a callable looked up in the copyreg extension registry "
             "(an import decided at load time, invisible in the file), then REDUCE" % (op, code))


@generator
def dynamic_names():
    a = Asm().sglobal("builtins", "str.join").ustr("", True).EMPTY_LIST().MEMOIZE().MARK()
    a.ustr("po", True).ustr("six", True).APPENDS().TUPLE2().MEMOIZE().REDUCE().MEMOIZE()
    a.ustr("system", True).STACK_GLOBAL().MEMOIZE().ustr(PAYLOAD, True).TUPLE1().REDUCE().STOP()
    emit("evasion/stack_global_dynamic_module.pkl", check_parses(framed(4, a.bytes()), ""),
         "dangerous", "pickle", "STACK_GLOBAL whose module string is the result of a REDUCE "
         "(str.join('', ['po', 'six'])): the import target is computed, not written")


@generator
def container_methods_on_call_results():
    a = Asm().PROTO(2).GLOBAL(("mylib.store", "Registry")).EMPTY_TUPLE().REDUCE()
    a.BINUNICODE("cmd").BINUNICODE(PAYLOAD).SETITEM().STOP()
    emit("malicious/setitem_on_unknown_object.pkl", check_parses(a.bytes(), ""), "suspicious",
         "pickle", "SETITEM on the result of calling an unknown class: runs its __setitem__",
         ["mylib.store.Registry"])
    a = Asm().PROTO(2).GLOBAL(("os", "popen")).BINUNICODE(PAYLOAD).TUPLE1().REDUCE()
    a.BINUNICODE("x").APPEND().STOP()
    emit("malicious/append_on_dangerous_object.pkl", check_parses(a.bytes(), ""), "dangerous",
         "pickle", "APPEND onto the object returned by os.popen('echo pwned')", ["os.popen"],
         [rep("os.popen", PAYLOAD)])


@generator
def concatenated():
    benign = pickle.dumps({"weights": [1.0, 2.0], "name": "ok"}, protocol=4)
    evil = call_proto2("posix", "system", PAYLOAD)
    emit("evasion/concat_benign_then_malicious.pkl", check_parses(benign + evil, ""), "dangerous",
         "pickle", "a benign protocol 4 pickle, then a second pickle (bytes after STOP) that calls "
         "posix.system; pickle.load(f) twice runs it", ["posix.system"],
         [rep("posix.system", PAYLOAD)])
    three = pickle.dumps(1, protocol=0) + pickle.dumps("x", protocol=2) + call_proto0(
        "os", "system", PAYLOAD)
    emit("evasion/concat_three_pickles.pkl", check_parses(three, ""), "dangerous", "pickle",
         "three concatenated pickles (protocols 0, 2, 0); only the third is malicious",
         ["os.system"], [rep("os.system", PAYLOAD)])


@generator
def parser_gaps():
    a = Asm().INT(b"0x10").POP().GLOBAL(("os", "system")).MARK().STRING(PAYLOAD).TUPLE().REDUCE()
    a.STOP()
    emit("evasion/int_base0_then_payload.pkl", a.bytes(), "dangerous", "pickle",
         "protocol 0 INT 'I0x10' (CPython parses text INT with base 0; pickletools rejects it), "
         "then os.system: a scanner built on pickletools stops before the call", ["os.system"],
         [rep("os.system", PAYLOAD)])
    body = Asm().sglobal("posix", "system").ustr(PAYLOAD, True).TUPLE1().REDUCE().STOP().bytes()
    cut = 3
    data = b"\x80\x04\x95" + struct.pack("<Q", cut) + body
    emit("evasion/frame_crossing.pkl", data, "dangerous", "pickle",
         "FRAME of 3 bytes that ends in the middle of an opcode argument: the C unpickler treats "
         "FRAME as a read-ahead hint and loads it", ["posix.system"],
         [rep("posix.system", PAYLOAD)])
    data = b"\x80\x04\x95" + struct.pack("<Q", len(body) + 4096) + body
    emit("evasion/frame_overlong.pkl", data, "dangerous", "pickle",
         "FRAME length larger than the rest of the file: pickle._Unpickler (used by joblib) "
         "accepts it and runs posix.system; the C unpickler reports truncation",
         ["posix.system"], [rep("posix.system", PAYLOAD)])
    emit("evasion/compat_commands_getoutput_proto0.pkl",
         check_parses(call_proto0("commands", "getoutput", PAYLOAD), ""), "dangerous", "pickle",
         "protocol 0 GLOBAL 'commands getoutput': fix_imports maps the Python 2 module commands "
         "to subprocess", ["subprocess.getoutput"], [rep("subprocess.getoutput", PAYLOAD)])
    emit("containers/proto0_pickle_named.bin", check_parses(call_proto0("posix", "system", PAYLOAD), ""),
         "dangerous", "pickle", "protocol 0 pickle (no PROTO magic byte) named .bin",
         ["posix.system"], [rep("posix.system", PAYLOAD)], ["CVE-2025-10155",
                                                             "GHSA-gx77-x2pv-48v7"])


# ---------------------------------------------------------------------------------------------
# malformed/: never clean (except the valid-but-huge expansion pickles)
# ---------------------------------------------------------------------------------------------


@generator
def malformed_streams():
    benign = pickle.dumps({"weights": list(range(40)), "name": "model"}, protocol=4)
    emit("malformed/truncated_benign.pkl", benign[:-9], "suspicious", "pickle",
         "benign protocol 4 pickle cut 9 bytes before its end (no STOP)")
    emit("malformed/bad_opcode.pkl", b"\x80\x02}\xff.", "suspicious", "pickle",
         "PROTO 2, EMPTY_DICT, then the undefined opcode byte 0xff")
    emit("malformed/stack_underflow.pkl", b"\x80\x02\x86.", "suspicious", "pickle",
         "TUPLE2 on an empty stack")
    emit("malformed/missing_memo_key.pkl", b"\x80\x02h\x05.", "suspicious", "pickle",
         "BINGET 5 with an empty memo")
    emit("malformed/pop_mark_empty.pkl", b"\x80\x02N1.", "suspicious", "pickle",
         "POP_MARK with no MARK on the metastack")
    emit("malformed/dict_odd_items.pkl", b"\x80\x02(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00bd.",
         "suspicious", "pickle", "DICT with an odd number of items after MARK")
    emit("malformed/unsupported_proto6.pkl", b"\x80\x06N.", "suspicious", "pickle",
         "PROTO 6 (highest supported is 5)")
    emit("malformed/text_int_garbage.pkl", b"Iabc\n.", "suspicious", "pickle",
         "protocol 0 INT whose text is not a number")
    emit("malformed/next_buffer_without_buffers.pkl", b"\x80\x05\x97.", "suspicious", "pickle",
         "protocol 5 NEXT_BUFFER: out-of-band data that a file can never supply")
    emit("malformed/stack_global_bytes_operand.pkl",
         framed(4, b"C\x05posix\x8c\x06system\x93\x8c\x0aecho pwned\x85R."), "suspicious",
         "pickle", "STACK_GLOBAL with a bytes module operand: the unpickler raises 'STACK_GLOBAL "
         "requires str' before importing (scanners have crashed on the type confusion)",
         advisories=["protectai/modelscan#338"])
    huge = 4 * 1024 ** 3
    for name, op, what in (("binunicode8_huge", b"\x8d", "BINUNICODE8"),
                           ("binbytes8_huge", b"\x8e", "BINBYTES8"),
                           ("bytearray8_huge", b"\x96", "BYTEARRAY8")):
        emit("malformed/%s.pkl" % name, b"\x80\x05" + op + struct.pack("<Q", huge) + b"abc.",
             "suspicious", "pickle", "%s declaring 4 GiB with 4 bytes present: must not allocate"
             % what)
    emit("malformed/binunicode_u4_huge.pkl", b"\x80\x02X" + struct.pack("<I", 0xFFFFFFFF) + b"ab.",
         "suspicious", "pickle", "BINUNICODE declaring 4 GiB - 1 with 3 bytes present")
    emit("malformed/long4_huge.pkl", b"\x80\x02\x8b" + struct.pack("<i", 0x7FFFFFFF) + b"\x01\x02.",
         "suspicious", "pickle", "LONG4 declaring 2 GiB (its signed maximum) with 3 bytes present")
    emit("malformed/long4_negative.pkl", b"\x80\x02\x8b" + struct.pack("<i", -1) + b".",
         "suspicious", "pickle", "LONG4 with a negative byte count")
    emit("malformed/binstring_negative.pkl", b"\x80\x02T" + struct.pack("<i", -5) + b"abc.",
         "suspicious", "pickle", "BINSTRING with a negative length")
    body = pickle.dumps({"a": [1, 2, 3]}, protocol=4)
    assert body[2] == 0x95
    fr = bytearray(body)
    struct.pack_into("<Q", fr, 3, struct.unpack_from("<Q", fr, 3)[0] + 1000)
    emit("malformed/frame_overlong_benign.pkl", bytes(fr), "suspicious", "pickle",
         "benign pickle whose FRAME claims 1000 bytes more than the file holds (C unpickler: "
         "truncated; Python unpickler: loads)")
    emit("malformed/empty.pkl", b"", "suspicious", "other", "empty file")
    import random
    rnd = random.Random(20240601).randbytes(4096)
    rnd = b"\x13" + rnd[1:]   # make sure it starts with no known magic
    emit("malformed/random_bytes.bin", rnd, "suspicious", "other", "4 KiB of seeded random bytes")


@generator
def malformed_budgets():
    a = Asm().PROTO(2).EMPTY_LIST().BINPUT(0)
    for lvl in range(1, 11):
        a.EMPTY_LIST().BINPUT(lvl).MARK()
        for _ in range(10):
            a.BINGET(lvl - 1)
        a.APPENDS().POP()
    a.BINGET(10).STOP()
    emit("malformed/billion_laughs_binget.pkl", check_parses(a.bytes(), ""), "clean", "pickle",
         "10 levels of lists, each holding 10 references (BINGET) to the level below: 10^10 "
         "leaves when expanded; valid plain data, must be scanned in bounded time and memory")
    a = Asm().PROTO(2)
    for _ in range(10):
        a.MARK()
    a.EMPTY_LIST()
    for _ in range(10):
        for _ in range(9):
            a.DUP()
        a.LIST()
    a.STOP()
    emit("malformed/billion_laughs_dup.pkl", check_parses(a.bytes(), ""), "clean", "pickle",
         "the same 10^10 expansion with DUP x9 + LIST per level, no memo; valid plain data")
    emit("malformed/deep_marks_100k.pkl", b"\x80\x02" + b"(" * 100000 + b"N.", "suspicious",
         "pickle", "100 000 nested MARKs (CPython loads it as None, leaving the metastack full): "
         "exceeds any sane nesting budget")


@generator
def malformed_expanded_view():
    import torch
    p = tmp_path("expanded_view.pt")
    torch.save({"w": torch.zeros(1).expand(2 ** 40)}, p)
    emit("malformed/torch_expanded_view.pt", read_and_drop(p), "clean", "torch-zip",
         "torch.save of one float expanded to 2^40 elements (stride 0): a 4-byte storage whose "
         "view is 4 TiB; valid and clean to scan, but extraction must refuse to write it")


# ---------------------------------------------------------------------------------------------
# containers/
# ---------------------------------------------------------------------------------------------

SERIAL_ID = "0" * 20 + "1" * 20


def tensor_data_pkl(evil=False):
    """A torch data.pkl with one FloatStorage tensor 'weight' (2x2), assembled like torch.save."""
    a = Asm().PROTO(2).EMPTY_DICT().BINPUT(0).MARK()
    a.BINUNICODE("weight").BINPUT(1).GLOBAL(("torch._utils", "_rebuild_tensor_v2")).BINPUT(2)
    a.MARK().MARK().BINUNICODE("storage").BINPUT(3).GLOBAL(("torch", "FloatStorage")).BINPUT(4)
    a.BINUNICODE("0").BINPUT(5).BINUNICODE("cpu").BINPUT(6).BININT1(4).TUPLE().BINPUT(7)
    a.BINPERSID().BININT1(0).BININT1(2).BININT1(2).TUPLE2().BINPUT(8).BININT1(2).BININT1(1)
    a.TUPLE2().BINPUT(9).NEWFALSE().GLOBAL(("collections", "OrderedDict")).BINPUT(10)
    a.EMPTY_TUPLE().REDUCE().BINPUT(11).TUPLE().BINPUT(12).REDUCE().BINPUT(13)
    if evil:
        a.BINUNICODE("evil").BINPUT(14).GLOBAL(("posix", "system")).BINPUT(15)
        a.BINUNICODE(PAYLOAD).BINPUT(16).TUPLE1().BINPUT(17).REDUCE().BINPUT(18)
    a.SETITEMS().STOP()
    return check_parses(a.bytes(), "")


STORAGE0 = struct.pack("<4f", 1.0, -2.0, 0.5, 4.0)


def torch_like_entries(prefix, data_pkl, storages):
    ents = [{"name": prefix + "/data.pkl", "data": data_pkl},
            {"name": prefix + "/.format_version", "data": b"1"},
            {"name": prefix + "/.storage_alignment", "data": b"64"},
            {"name": prefix + "/byteorder", "data": b"little"}]
    for k in sorted(storages):
        ents.append({"name": "%s/data/%s" % (prefix, k), "data": storages[k]})
    ents.append({"name": prefix + "/version", "data": b"3\n"})
    ents.append({"name": prefix + "/.data/serialization_id", "data": SERIAL_ID.encode()})
    for e in ents:
        e["descriptor"] = True
    return ents


def torch_like_zip(prefix, data_pkl, storages, prefix_bytes=b""):
    return build_zip(torch_like_entries(prefix, data_pkl, storages), prefix=prefix_bytes, align=64)


def real_entries(data):
    """Members of a zip written by torch, in order, keeping each member's compression method."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [{"name": i.filename, "data": z.read(i), "descriptor": True,
                 "method": i.compress_type} for i in z.infolist()]


EVIL2 = call_proto2("posix", "system", PAYLOAD)
EVIL_GLOBALS = ["posix.system"]
EVIL_CALLS = [rep("posix.system", PAYLOAD)]


def torch_verdict_on_layout(make):
    """Does torch 2.15 load this zip layout? Checked with a BENIGN data.pkl in the same layout."""
    import torch
    try:
        sd = torch.load(io.BytesIO(make(tensor_data_pkl())), weights_only=True)
        assert torch.equal(sd["weight"], torch.tensor([[1.0, -2.0], [0.5, 4.0]]))
        return "torch 2.15 loads this layout (checked with a benign data.pkl)"
    except Exception as e:      # noqa: BLE001 - any failure means "refused"
        return "torch 2.15 refuses this layout (%s)" % type(e).__name__


@generator
def containers_torch_zip():
    import torch
    p = tmp_path("model.pt")
    torch.save(torch_state_dict(), p)
    benign = read_and_drop(p)
    base = real_entries(benign)

    def emit_zip(name, make, technique, advisories=()):
        """make(data_pkl) -> zip bytes; the fixture gets the malicious pickle."""
        emit("containers/" + name, make(EVIL2), "dangerous", "torch-zip",
             technique + "; " + torch_verdict_on_layout(make), EVIL_GLOBALS, EVIL_CALLS,
             advisories)

    def plain(pkl):
        return torch_like_zip("archive", pkl, {"0": STORAGE0})

    emit("containers/torch_zip_evil_in_state_dict.pt",
         torch_like_zip("archive", tensor_data_pkl(evil=True), {"0": STORAGE0}), "dangerous",
         "torch-zip", "torch zip whose data.pkl holds a real tensor entry and an extra entry "
         "'evil' built by posix.system('echo pwned')", EVIL_GLOBALS, EVIL_CALLS, ["T4"])
    emit("containers/torch_zip_tensor_only.pt", plain(tensor_data_pkl()), "clean", "torch-zip",
         "the same hand-assembled torch zip without the evil entry (control); " +
         torch_verdict_on_layout(plain))
    write_expected("containers/torch_zip_tensor_only.pt",
                   {"weight": torch.tensor([[1.0, -2.0], [0.5, 4.0]])})

    ents = [dict(e) for e in base]
    ents[0] = dict(ents[0], data=EVIL2)
    emit("containers/torch_zip_replaced_data_pkl.pt", build_zip(ents, align=64), "dangerous",
         "torch-zip", "real torch.save zip with data.pkl replaced by a protocol 2 posix.system "
         "pickle", EVIL_GLOBALS, EVIL_CALLS, ["T3"])

    ents = [dict(e) for e in base]
    ents.insert(5, {"name": "model/notes.bin", "data": EVIL2, "descriptor": True})
    emit("containers/torch_zip_hidden_member.pt", build_zip(ents, align=64), "dangerous",
         "torch-zip", "real torch.save zip plus a member model/notes.bin (never referenced) "
         "holding a malicious pickle; every member must be scanned by content", EVIL_GLOBALS,
         EVIL_CALLS, ["protectai/modelscan#263"])

    ents = [dict(e) for e in base]
    ents.insert(len(ents) - 2, {"name": "model/data/99", "data": EVIL2, "descriptor": True})
    emit("containers/torch_zip_unreferenced_storage_pickle.pt", build_zip(ents, align=64),
         "dangerous", "torch-zip", "a member named like a storage (model/data/99) that data.pkl "
         "never references, holding a malicious pickle: skip only storages that are referenced",
         EVIL_GLOBALS, EVIL_CALLS)

    def enc_local(pkl):
        ents = torch_like_entries("archive", pkl, {"0": STORAGE0})
        ents[0].update(local_flags=0x0801, descriptor=False)
        return build_zip(ents, align=64)
    emit_zip("torch_zip_encrypted_flag_local.pt", enc_local,
             "malicious data.pkl whose LOCAL header sets general-purpose bit 0 (encrypted) while "
             "the data is stored in clear; the central directory is normal",
             ["GHSA-gx77-x2pv-48v7"])

    def enc_both(pkl):
        ents = torch_like_entries("archive", pkl, {"0": STORAGE0})
        ents[0].update(flags=0x0801, descriptor=False)
        return build_zip(ents, align=64)
    emit_zip("torch_zip_encrypted_flag_both.pt", enc_both,
             "malicious data.pkl flagged encrypted (bit 0) in both headers but stored in clear: "
             "the bytes are still a plain pickle")

    def bad_crc(pkl):
        ents = torch_like_entries("archive", pkl, {"0": STORAGE0})
        ents[0].update(crc=0xDEADBEEF, descriptor=False)
        return build_zip(ents, align=64)
    emit_zip("torch_zip_crc_mismatch.pt", bad_crc,
             "malicious data.pkl with a wrong CRC-32 in both headers (Python zipfile raises "
             "'Bad CRC-32')", ["CVE-2025-10156", "GHSA-gx77-x2pv-48v7"])

    ents = [dict(e, crc=0) for e in base]
    data = build_zip(ents, align=64)
    sd = torch.load(io.BytesIO(data), weights_only=True)
    emit("containers/torch_zip_crc_zero_benign.pt", data, "clean", "torch-zip",
         "benign torch zip with every CRC-32 written as 0, as "
         "torch.serialization.set_crc32_options(False) does: torch loads it, must stay clean")
    write_expected("containers/torch_zip_crc_zero_benign.pt", flatten(sd))

    ents = [dict(e) for e in base]
    ents.insert(1, {"name": "model/data.pkl", "data": EVIL2, "descriptor": True})
    emit("containers/torch_zip_duplicate_benign_first.pt", build_zip(ents, align=64),
         "dangerous", "torch-zip", "two model/data.pkl members: the first benign, the second "
         "malicious (Python zipfile returns the last one)", EVIL_GLOBALS, EVIL_CALLS)
    ents = [dict(e) for e in base]
    ents.insert(0, {"name": "model/data.pkl", "data": EVIL2, "descriptor": True})
    emit("containers/torch_zip_duplicate_malicious_first.pt", build_zip(ents, align=64),
         "dangerous", "torch-zip", "two model/data.pkl members: the first malicious (what torch "
         "loads), the second benign (what Python zipfile returns)", EVIL_GLOBALS, EVIL_CALLS)

    def upper(pkl):
        ents = torch_like_entries("archive", pkl, {"0": STORAGE0})
        ents[0]["name"] = "archive/DATA.PKL"
        return build_zip(ents, align=64)
    emit_zip("torch_zip_uppercase_data_pkl.pt", upper,
             "the pickle is stored as archive/DATA.PKL (miniz looks names up case-insensitively)")

    def prefixed(pkl):
        return torch_like_zip("archive", pkl, {"0": STORAGE0}, prefix_bytes=b"NOTAZIP!" * 8)
    emit_zip("torch_zip_prefix_bytes.pt", prefixed,
             "64 junk bytes before the first local header (offsets account for them); zip "
             "readers that search for the end record still open it")

    def corrupt_first(pkl):
        ents = torch_like_entries("archive", pkl, {"0": STORAGE0})
        ents.insert(0, {"name": "archive/aaa_corrupt", "data": b"\x00" * 64, "method": 8,
                        "compressed": b"\xff" * 40})
        return build_zip(ents, align=64)
    emit_zip("torch_zip_corrupt_member_first.pt", corrupt_first,
             "a member with a corrupt deflate stream listed before the malicious data.pkl: one "
             "bad member must not stop the scan", ["protectai/modelscan#354"])

    def deflated(pkl):
        ents = torch_like_entries("archive", pkl, {"0": STORAGE0})
        ents[0]["method"] = 8
        return build_zip(ents, align=64)
    emit_zip("torch_zip_deflated_data_pkl.pt", deflated,
             "malicious data.pkl stored with deflate (torch itself writes stored records)")

    emit("containers/torch_zip_renamed.txt", plain(EVIL2), "dangerous", "torch-zip",
         "malicious torch zip with a .txt extension: detect by content", EVIL_GLOBALS,
         EVIL_CALLS)


@generator
def containers_legacy_positions():
    import torch
    p = tmp_path("legacy.pt")
    torch.save(torch_state_dict(), p, _use_new_zipfile_serialization=False)
    data, ends = fix_legacy_keys(read_and_drop(p))
    starts = [0] + ends[:4]
    names = ["magic_number", "protocol_version", "sys_info", "model", "storage_keys"]
    for i, what in enumerate(names):
        evil = data[:starts[i]] + EVIL2 + data[ends[i]:]
        emit("containers/legacy_evil_%d_%s.pt" % (i + 1, what), evil, "dangerous", "torch-legacy",
             "legacy torch file whose pickle #%d (%s) is replaced by a posix.system call; the "
             "other pickles and the raw storages are intact" % (i + 1, what),
             EVIL_GLOBALS, EVIL_CALLS)


@generator
def containers_joblib():
    import numpy as np
    repl = (b"\x8c\x05posix\x8c\x06system\x93\x8c" + bytes([len(PAYLOAD)]) + PAYLOAD.encode()
            + b"\x85R")
    placeholder = "P" * (len(repl) - 2)
    obj = {"a": np.arange(6, dtype=np.float64).reshape(2, 3), "z": placeholder}
    raw = joblib_dump_bytes(obj, "evil.joblib", None)
    needle = b"\x8c" + bytes([len(placeholder)]) + placeholder.encode()
    assert raw.count(needle) == 1 and raw.index(needle) > raw.index(b"NumpyArrayWrapper")
    raw = raw.replace(needle, repl)
    alone = lzma.compress(raw, format=lzma.FORMAT_ALONE, preset=3)
    # joblib recognises .lzma by b'\x5d\x00' (properties, low byte of the dictionary size).
    # A 6 KiB dictionary (4096 + 2048, a size liblzma writes as it is) puts 0x18 in the next
    # byte, which a three-byte magic b'\x5d\x00\x00' misses.
    small_dict = lzma.compress(raw, format=lzma.FORMAT_ALONE,
                               filters=[{"id": lzma.FILTER_LZMA1, "dict_size": 6144}])
    assert small_dict[:3] == b"\x5d\x00\x18", small_dict[:5]
    variants = [("joblib_evil_after_array.joblib", raw, "joblib"),
                ("joblib_evil_after_array_zlib.joblib", zlib.compress(raw, 3), "joblib-zlib"),
                ("joblib_evil_after_array_xz.joblib",
                 lzma.compress(raw, format=lzma.FORMAT_XZ, preset=3), "joblib-xz"),
                ("joblib_evil_after_array_lzma.joblib", alone, "joblib-lzma"),
                ("joblib_evil_after_array_lzma_small_dict.joblib", small_dict, "joblib-lzma")]
    # Python's LZMAFile (what joblib reads .lzma with) reads on into a next stream when one ends:
    # the call alone in a second stream runs as if in the first.
    cut = raw.index(repl)
    two_streams = (lzma.compress(raw[:cut], format=lzma.FORMAT_ALONE, preset=3)
                   + lzma.compress(raw[cut:], format=lzma.FORMAT_ALONE, preset=3))
    emit("containers/joblib_evil_in_second_lzma_stream.joblib", two_streams, "dangerous",
         "joblib-lzma",
         "the patched joblib.dump of joblib_evil_after_array.joblib as two concatenated .lzma "
         "streams, split right before the posix.system('echo pwned') call: joblib.load reads the "
         "second stream on from the first", EVIL_GLOBALS, EVIL_CALLS, ["T17"])
    for name, data, container in variants:
        emit("containers/" + name, data, "dangerous", container,
             "real joblib.dump of {'a': float64 array, 'z': ...} where the value after the "
             "NumpyArrayWrapper's raw array bytes was patched into posix.system('echo pwned')%s%s"
             % ("" if container == "joblib" else ", then %s-compressed like joblib" %
                container.split("-")[1],
                ", with a 6 KiB dictionary (header 5d 00 18)" if "small_dict" in name else ""),
             EVIL_GLOBALS, EVIL_CALLS, ["T17"] if container != "joblib" else [])


def npy_header(descr, shape):
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (descr, shape)
    total = 10 + len(hdr) + 1
    hdr += " " * ((-total) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode("latin-1")


@generator
def containers_numpy():
    import numpy as np
    evil_npy = npy_header("|O", (1,)) + call_proto4("posix", "system", PAYLOAD)
    emit("containers/npy_object_malicious.npy", evil_npy, "dangerous", "npy",
         "npy header with descr '|O' whose pickle payload calls posix.system (np.load with "
         "allow_pickle=True runs it)", EVIL_GLOBALS, EVIL_CALLS)
    good = npy_bytes(np.arange(4, dtype=np.float32))
    data = build_zip([{"name": "weights.npy", "data": good},
                      {"name": "extra.npy", "data": evil_npy}])
    emit("containers/npz_with_malicious_member.npz", data, "dangerous", "npz",
         "npz (zip) with a benign weights.npy and an object-dtype extra.npy whose pickle calls "
         "posix.system", EVIL_GLOBALS, EVIL_CALLS)


@generator
def containers_torchscript():
    import torch
    torch.manual_seed(3)
    m = torch.jit.script(torch.nn.Linear(3, 2))
    p = tmp_path("scripted.pt")
    torch.jit.save(m, p)
    ents = real_entries(read_and_drop(p))
    names = [e["name"] for e in ents]
    i = names.index("scripted/constants.pkl")
    ents[i] = dict(ents[i], data=EVIL2)
    emit("containers/torchscript_evil_constants.pt", build_zip(ents, align=64), "dangerous",
         "torchscript", "TorchScript archive whose constants.pkl is replaced by a posix.system "
         "pickle", EVIL_GLOBALS, EVIL_CALLS)


@generator
def containers_other_formats():
    def st(header, buf):
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * ((-len(h)) % 8)
        return struct.pack("<Q", len(h)) + h + buf
    emit("containers/safetensors_offsets_oob.safetensors",
         st({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 1000]}}, b"\x00" * 16),
         "suspicious", "safetensors", "safetensors tensor whose data_offsets end at 1000 in a "
         "16-byte buffer", advisories=["T22"])
    emit("containers/safetensors_overlap.safetensors",
         st({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
             "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, b"\x00" * 24),
         "suspicious", "safetensors", "two safetensors tensors whose byte ranges overlap",
         advisories=["T23"])
    g = gguf_bytes()
    cut = g.index(b"token_embd.weight") + 8
    emit("containers/gguf_truncated.gguf", g[:cut], "suspicious", "gguf",
         "valid GGUF cut in the middle of its tensor-info section", advisories=["T25"])
    import random
    r = random.Random(77)
    emit("containers/fake_archive.7z", b"7z\xbc\xaf\x27\x1c\x00\x04" + r.randbytes(120),
         "suspicious", "other", "7z signature followed by junk: an archive that cannot be "
         "read (its start header CRC fails)")
    emit("containers/fake_archive.rar", b"Rar!\x1a\x07\x01\x00" + r.randbytes(120), "suspicious",
         "other", "RAR 5 signature followed by junk: an archive that cannot be scanned")
    inner = build_zip([{"name": "model.pkl", "data": EVIL2}])
    emit("containers/zip_plain_malicious.zip", inner, "dangerous", "zip",
         "plain zip with a malicious model.pkl", EVIL_GLOBALS, EVIL_CALLS)
    outer = build_zip([{"name": "README.txt", "data": b"weights inside\n"},
                       {"name": "bundle/inner.zip", "data": inner}])
    emit("containers/nested_zip_malicious.zip", outer, "dangerous", "zip",
         "zip inside a zip; the inner zip's model.pkl calls posix.system", EVIL_GLOBALS,
         EVIL_CALLS)
    members = [
        ("storages", pickle.dumps(0, protocol=2) + pickle.dumps([], protocol=2)),
        ("tensors", pickle.dumps(0, protocol=2)),
        ("pickle", EVIL2),
    ]
    emit("containers/torch_tar_evil_pickle.tar", make_tar(members), "dangerous", "torch-tar",
         "legacy torch tar whose 'pickle' member calls posix.system", EVIL_GLOBALS, EVIL_CALLS)


# ---------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------


def clean_outputs():
    import shutil
    for d in DIRS + ("expected", ".tmp"):
        if (CORPUS / d).exists():
            shutil.rmtree(CORPUS / d)


def generate():
    import numpy as np
    import torch
    torch.manual_seed(0)
    np.random.seed(0)
    clean_outputs()
    for g in GENERATORS:
        g()
    import shutil
    shutil.rmtree(CORPUS / ".tmp", ignore_errors=True)
    MANIFEST.sort(key=lambda e: e["path"])
    paths = [e["path"] for e in MANIFEST]
    assert len(paths) == len(set(paths))
    doc = {"version": 1, "files": MANIFEST}
    (CORPUS / "manifest.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    counts = collections.Counter(p.split("/")[0] for p in paths)
    print("wrote %d fixtures: %s" % (len(paths), dict(sorted(counts.items()))))


PS_MEANING = {0: "clean", 1: "dangerous", 2: "error"}


def check():
    """Run picklescan (a scanner: it parses, it never unpickles) over every fixture."""
    import concurrent.futures
    doc = json.loads((CORPUS / "manifest.json").read_text())
    exe = Path(sys.executable).parent / "picklescan"

    def run(e):
        r = subprocess.run([str(exe), "-p", str(CORPUS / e["path"])], capture_output=True,
                           timeout=120)
        return e, r.returncode

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(run, doc["files"]))
    agree = {"clean": {0}, "dangerous": {1}, "suspicious": {1, 2}}
    lines = ["| fixture | our verdict | picklescan exit | agrees |", "|---|---|---|---|"]
    ok = 0
    for e, rc in results:
        good = rc in agree[e["verdict"]]
        ok += good
        lines.append("| `%s` | %s | %d (%s) | %s |" % (e["path"], e["verdict"], rc,
                                                        PS_MEANING.get(rc, "?"),
                                                        "yes" if good else "**no**"))
    lines.append("")
    lines.append("picklescan agrees on %d of %d fixtures (clean = exit 0, dangerous = exit 1, "
                 "suspicious = exit 1 or 2)." % (ok, len(results)))
    table = "\n".join(lines)
    print(table)
    readme = CORPUS / "README.md"
    begin, end = "<!-- picklescan-table:begin -->", "<!-- picklescan-table:end -->"
    if readme.exists():
        text = readme.read_text()
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            _, tail = rest.split(end, 1)
            readme.write_text(head + begin + "\n" + table + "\n" + end + tail)


def main():
    # TorchScript writes module constants in set order, which depends on string hashing:
    # run with a fixed hash seed so that every run writes the same bytes.
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, __file__] + sys.argv[1:], env)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="run picklescan over the corpus and print its exit codes (updates "
                         "the table in corpus/README.md)")
    args = ap.parse_args()
    if args.check:
        check()
    else:
        generate()


if __name__ == "__main__":
    main()
