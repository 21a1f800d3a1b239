#!/usr/bin/env python3
"""Load client for `picklescan-rs serve` (standard library only).

Starts the server (release build), drives it over loopback, checks every verdict, and reports
latency percentiles, throughput and the server's peak memory (VmHWM, RssAnon, RssFile sampled
from /proc every 20 ms).

    benches/serve_load.py small   --bin target/release/picklescan-rs   # 100 concurrent small files
    benches/serve_load.py onemb   --bin …                              # 1 MB pickle latency
    benches/serve_load.py huge    --bin … --size 1.5G                  # one 1.5 GB upload
"""

import argparse
import http.client
import json
import os
import pickle
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, binary, extra=()):
        self.port = free_port()
        self.audit = tempfile.NamedTemporaryFile(prefix="audit-", suffix=".jsonl", delete=False).name
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--audit-log", self.audit, *extra],
            stderr=subprocess.PIPE,
        )
        self.proc.stderr.readline()  # "serving on …"
        self.peak = {"VmHWM": 0, "RssAnon": 0, "RssFile": 0, "VmRSS": 0}
        self._stop = False
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _status(self):
        out = {}
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in self.peak:
                        out[k] = int(v.split()[0])  # kB
        except OSError:
            pass
        return out

    def _sample(self):
        while not self._stop:
            for k, v in self._status().items():
                self.peak[k] = max(self.peak[k], v)
            time.sleep(0.02)

    def stop(self):
        self._stop = True
        self._sampler.join()
        for k, v in self._status().items():
            self.peak[k] = max(self.peak[k], v)
        self.proc.terminate()
        self.proc.wait(timeout=30)
        lines = sum(1 for _ in open(self.audit))
        os.unlink(self.audit)
        return lines


def post(conn, name, body):
    conn.request("POST", f"/v1/scan?name={name}", body=body,
                 headers={"Content-Type": "application/octet-stream"})
    r = conn.getresponse()
    data = r.read()
    return r.status, json.loads(data)


def pct(values, p):
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]


def report(name, lat, wall, n, peak, lines, errors):
    ms = [x * 1e3 for x in lat]
    print(json.dumps({
        "scenario": name, "requests": n, "wrong_or_failed": errors,
        "audit_lines": lines,
        "throughput_rps": round(n / wall, 1),
        "latency_ms": {"p50": round(statistics.median(ms), 2), "p90": round(pct(ms, 90), 2),
                       "p99": round(pct(ms, 99), 2), "max": round(max(ms), 2)},
        "server_peak_kb": peak,
    }))


def load(server, files, clients, per_client):
    """`clients` threads, each with its own keep-alive connection, `per_client` uploads."""
    lat, errors, lock = [], [0], threading.Lock()

    def worker(i):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        for j in range(per_client):
            name, body, want = files[(i + j) % len(files)]
            t = time.perf_counter()
            try:
                status, doc = post(conn, name, body)
                ok = status == 200 and doc["files"][0]["verdict"] == want
            except Exception as e:  # noqa: BLE001 - counted as a failure
                print("error:", e, file=sys.stderr)
                ok = False
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            dt = time.perf_counter() - t
            with lock:
                lat.append(dt)
                if not ok:
                    errors[0] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, time.perf_counter() - t0, errors[0]


def corpus_files():
    manifest = json.load(open(os.path.join(CORPUS, "manifest.json")))
    out = []
    for entry in manifest["files"]:
        path = os.path.join(CORPUS, entry["path"])
        want = entry.get("verdict") or entry.get("expected")
        if not want or not os.path.isfile(path) or os.path.getsize(path) > 256 * 1024:
            continue
        out.append((os.path.basename(path), open(path, "rb").read(), want))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["small", "onemb", "huge"])
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release", "picklescan-rs"))
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--requests", type=int, default=20, help="per client")
    ap.add_argument("--size", default="1.5G")
    ap.add_argument("--kind", choices=["pickle", "zip"], default="pickle",
                    help="huge: one BINBYTES8 pickle, or a torch-style zip with one big storage")
    ap.add_argument("--server-arg", action="append", default=[])
    a = ap.parse_args()

    if a.scenario == "small":
        files = corpus_files()
        server = Server(a.bin, a.server_arg)
        lat, wall, errors = load(server, files, a.clients, a.requests)
        lines = server.stop()
        print(f"# {len(files)} distinct corpus files ≤ 256 KiB", file=sys.stderr)
        report("small", lat, wall, len(lat), server.peak, lines, errors)
    elif a.scenario == "onemb":
        # ~1 MB protocol 2 pickle: a state-dict-like dict of float lists (about 116k opcodes).
        obj = {f"layer{i}.weight": [float(j) * 0.5 for j in range(1000)] for i in range(116)}
        body = pickle.dumps(obj, protocol=2)
        print(f"# body {len(body)} bytes", file=sys.stderr)
        server = Server(a.bin, a.server_arg)
        load(server, [("w.pkl", body, "clean")], 1, 20)  # warm-up
        lat, wall, errors = load(server, [("w.pkl", body, "clean")], a.clients, a.requests)
        lines = server.stop()
        report(f"onemb-c{a.clients}", lat, wall, len(lat), server.peak, lines, errors)
    else:
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        size = int(float(a.size[:-1]) * mult[a.size[-1].upper()]) if a.size[-1].isalpha() else int(a.size)
        chunk = os.urandom(1 << 20)
        with tempfile.NamedTemporaryFile(prefix="huge-", suffix=".pt", delete=False) as f:
            path = f.name
            if a.kind == "pickle":
                # One BINBYTES8 of `size` bytes, then STOP: a valid, clean protocol 4 pickle.
                f.write(b"\x80\x04\x8e" + struct.pack("<Q", size))
                left = size
                while left:
                    n = min(left, len(chunk))
                    f.write(chunk[:n])
                    left -= n
                f.write(b".")
        if a.kind == "zip":
            # torch.save layout: archive/data.pkl referencing storage "0", archive/data/0 raw.
            import zipfile
            numel = size // 4
            pkl = (b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02"
                   b"((X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05"
                   b"X\x03\x00\x00\x00cpuq\x06" + b"\x8a\x05" + numel.to_bytes(5, "little") +
                   b"tq\x07QK\x00" + b"\x8a\x05" + numel.to_bytes(5, "little") + b"\x85q\x08K\x01\x85q\t"
                   b"\x89ccollections\nOrderedDict\nq\n)Rq\x0btq\x0cRq\rs.")
            with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
                z.writestr("archive/data.pkl", pkl)
                with z.open("archive/data/0", "w", force_zip64=True) as m:
                    left = numel * 4
                    while left:
                        n = min(left, len(chunk))
                        m.write(chunk[:n])
                        left -= n
                z.writestr("archive/version", b"3\n")
        server = Server(a.bin, ["--max-body", "4G", *a.server_arg])
        time.sleep(0.2)
        idle = dict(server.peak)
        t = time.perf_counter()
        out = subprocess.run(
            ["curl", "-sS", "-X", "POST", "-T", path, "-H", "Content-Type: application/octet-stream",
             f"http://127.0.0.1:{server.port}/v1/scan?name=huge.pkl"],
            capture_output=True, check=True)
        wall = time.perf_counter() - t
        doc = json.loads(out.stdout)
        lines = server.stop()
        total = os.path.getsize(path)
        os.unlink(path)
        f0 = doc["files"][0]
        ok = f0["verdict"] == "clean" and f0["size"] == total
        if not ok:
            print(json.dumps(f0)[:2000], file=sys.stderr)
        report(f"huge-{a.kind}", [wall], wall, 1, server.peak, lines, 0 if ok else 1)
        print(json.dumps({"idle_kb": idle, "bytes": total, "format": f0["format"]}), file=sys.stderr)


if __name__ == "__main__":
    main()
