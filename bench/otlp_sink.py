#!/usr/bin/env python3
"""The cheapest OTLP/HTTP collector for the benchmark: it reads each export, keeps only counts and answers
success. `python3 otlp_sink.py PORT`; `GET /stats` gives {"exports", "bytes"}, `GET /reset` zeroes them."""
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

stats = {"exports": 0, "bytes": 0}
lock = threading.Lock()


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, body, content_type):
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        size = int(self.headers.get("content-length", "0"))
        self.rfile.read(size)
        with lock:
            stats["exports"] += 1
            stats["bytes"] += size
        self._answer(b"", "application/x-protobuf")  # an empty ExportTraceServiceResponse: full success

    def do_GET(self):
        with lock:
            body = json.dumps(stats).encode()
            if self.path == "/reset":
                stats.update(exports=0, bytes=0)
        self._answer(body, "application/json")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink)
    server.daemon_threads = True
    server.serve_forever()
