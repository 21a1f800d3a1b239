"""A small HTTP/1.1 file server for the remote-scan memory measurements (benches/REMOTE.md).

    python benches/http_server.py PORT DIR MODE

MODE is one of:
* ranges:  honours `Range: bytes=a-b` and `bytes=-n` (206 with Content-Range), else 200;
* whole:   ignores Range, sends the whole body with Content-Length;
* chunked: ignores Range, sends the whole body chunked, without Content-Length.
"""
import http.server
import os
import re
import sys

PORT, ROOT, MODE = int(sys.argv[1]), sys.argv[2], sys.argv[3]
STEP = 1 << 20


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = os.path.join(ROOT, self.path.split("?")[0].lstrip("/"))
        if not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = os.path.getsize(path)
        start, end = 0, size
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if MODE == "ranges" and m and (m[1] or m[2]):
            if m[1]:
                start = int(m[1])
                end = min(size, int(m[2]) + 1) if m[2] else size
            else:
                start = max(0, size - int(m[2]))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        else:
            self.send_response(200)
            if MODE == "ranges":
                self.send_header("Accept-Ranges", "bytes")
        chunked = MODE == "chunked"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(end - start))
        self.end_headers()
        try:
            with open(path, "rb") as f:
                f.seek(start)
                left = end - start
                while left > 0:
                    b = f.read(min(STEP, left))
                    if not b:
                        break
                    left -= len(b)
                    self.wfile.write(b"%x\r\n" % len(b) + b + b"\r\n" if chunked else b)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what a scan that has its verdict does

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
