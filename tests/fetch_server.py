#!/usr/bin/python3
"""fetch_server.py - a fault-injecting HTTP server for the oscar-fetch tests
and benchmark.  It listens on 127.0.0.1 only, on a port the kernel picks, and
writes that port to --port-file once it accepts connections.

It serves the files under --root (GET, Range "bytes=A-" and "bytes=A-B"), and
logs every request as one JSON line to --log: time, port, path, the Range and
Authorization headers as received, and the status it answered.

Faults, each --fault NAME:MODE[:COUNT[:ARG]] (NAME is a file name or '*';
the fault hits the first COUNT matching requests, default 1, 0 = all):
  cut      send ARG bytes of the body (default: half) after announcing all, then close
  stall    send 1000 bytes of the body, then sleep ARG seconds (default 30)
  429      answer 429 with Retry-After: ARG (default 1)
  NNN      (any other status number: 500, 503, 401, 403, 404...) answer it
  norange  ignore the Range header (answer 200 with the whole file)
  badrange answer 206 with a Content-Range that starts at 0
  corrupt  flip the first byte of the body
Other options:
  --token T            answer 401 unless "Authorization: Bearer T" is sent
  --redirect PAT=URL   answer 302 to URL + path for files matching PAT (fnmatch)
  --rate BYTES         per-connection rate limit in bytes/s (benchmarks)
  --latency-ms MS      wait before each answer (benchmarks)
"""
import argparse
import fnmatch
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Fault:
    def __init__(self, spec):
        parts = spec.split(":")
        if len(parts) < 2:
            raise SystemExit("bad --fault %r" % spec)
        self.name, self.mode = parts[0], parts[1]
        self.count = int(parts[2]) if len(parts) > 2 and parts[2] else 1
        self.arg = parts[3] if len(parts) > 3 else None
        self.hits = 0

    def take(self, name):
        if not fnmatch.fnmatch(name, self.name):
            return False
        if self.count and self.hits >= self.count:
            return False
        self.hits += 1
        return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--fault", action="append", default=[])
    ap.add_argument("--token")
    ap.add_argument("--redirect", action="append", default=[])
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--latency-ms", type=float, default=0)
    a = ap.parse_args()
    faults = [Fault(s) for s in a.fault]
    redirects = [r.split("=", 1) for r in a.redirect]
    lock = threading.Lock()
    logf = open(a.log, "a")
    root = os.path.realpath(a.root)

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):
            pass

        def record(self, status):
            with lock:
                logf.write(json.dumps({
                    "t": time.time(), "port": self.server.server_address[1], "path": self.path,
                    "range": self.headers.get("Range"), "auth": self.headers.get("Authorization"),
                    "status": status}) + "\n")
                logf.flush()

        def small(self, status, extra=(), body=b""):
            self.record(status)
            self.send_response(status)
            for k, v in extra:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def fault(self, name):
            with lock:
                for f in faults:
                    if f.take(name):
                        return f
            return None

        def send_body(self, f, start, n, rate):
            """n bytes of file f from start; rate-limited when rate > 0."""
            if not rate:
                self.wfile.flush()
                self.connection.sendfile(f, start, n)
                return
            f.seek(start)
            t0 = time.monotonic()
            sent = 0
            while sent < n:
                chunk = f.read(min(65536, n - sent))
                if not chunk:
                    break
                self.wfile.write(chunk)
                sent += len(chunk)
                ahead = sent / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)

        def do_GET(self):
            if a.latency_ms:
                time.sleep(a.latency_ms / 1000.0)
            path = self.path.split("?", 1)[0]
            name = os.path.basename(path)
            if a.token and self.headers.get("Authorization") != "Bearer " + a.token:
                return self.small(401, body=b"gated\n")
            for pat, url in redirects:
                if fnmatch.fnmatch(name, pat):
                    return self.small(302, [("Location", url.rstrip("/") + path)])
            fs = os.path.realpath(os.path.join(root, path.lstrip("/")))
            if not fs.startswith(root + os.sep) or not os.path.isfile(fs):
                return self.small(404, body=b"no such file\n")
            flt = self.fault(name)
            mode = flt.mode if flt else None
            if mode and mode.isdigit() and mode != "429":
                return self.small(int(mode), body=b"fault\n")
            if mode == "429":
                return self.small(429, [("Retry-After", flt.arg or "1")], b"slow down\n")
            size = os.path.getsize(fs)
            start, end, partial = 0, size - 1, False
            rng = self.headers.get("Range")
            if rng and mode != "norange":
                spec = rng.strip()
                if not spec.startswith("bytes=") or "," in spec:
                    return self.small(400)
                lo, _, hi = spec[6:].partition("-")
                start = int(lo)
                end = min(int(hi), size - 1) if hi else size - 1
                if start >= size:
                    return self.small(416, [("Content-Range", "bytes */%d" % size)])
                partial = True
            n = end - start + 1
            status = 206 if partial or mode == "badrange" else 200
            self.record(status)
            self.send_response(status)
            if mode == "badrange":
                self.send_header("Content-Range", "bytes 0-%d/%d" % (n - 1, size))
            elif partial:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
            self.send_header("Content-Length", str(n))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            with open(fs, "rb") as f:
                try:
                    if mode == "cut":
                        k = int(flt.arg) if flt.arg else n // 2
                        self.send_body(f, start, min(k, n), 0)
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if mode == "stall":
                        self.send_body(f, start, min(n, 1000), 0)
                        self.wfile.flush()
                        time.sleep(float(flt.arg) if flt.arg else 30)
                        return
                    if mode == "corrupt" and n:
                        f.seek(start)
                        b = f.read(1)
                        self.wfile.write(bytes([b[0] ^ 0xFF]))
                        self.send_body(f, start + 1, n - 1, a.rate)
                        return
                    self.send_body(f, start, n, a.rate)
                except (BrokenPipeError, ConnectionResetError):
                    pass

    class S(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 64

    srv = S(("127.0.0.1", 0), H)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
