"""A small OTLP/HTTP trace receiver for the end-to-end tests: a collector's `/v1/traces` endpoint, in a thread of
the test process. It decodes each export (binary protobuf, or the JSON encoding) with the `opentelemetry-proto`
package and keeps every span as a plain dict, with the headers of the export that carried it.
"""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SPAN_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}


def _value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def _attributes(kvs) -> dict:
    return {kv.key: _value(kv.value) for kv in kvs}


class OTLPReceiver:
    def __init__(self):
        self.spans: list[dict] = []
        self.exports: list[dict] = []  # one per POST: path, headers, span count
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                request = ExportTraceServiceRequest()
                content_type = self.headers.get("content-type", "")
                if content_type.startswith("application/json"):
                    json_format.Parse(body, request)
                else:
                    request.ParseFromString(body)
                receiver._keep(self.path, dict((k.lower(), v) for k, v in self.headers.items()), request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _keep(self, path: str, headers: dict, request: ExportTraceServiceRequest):
        spans = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    spans.append({
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "name": s.name,
                        "kind": SPAN_KINDS.get(s.kind, s.kind),
                        "start_ns": s.start_time_unix_nano,
                        "end_ns": s.end_time_unix_nano,
                        "attributes": _attributes(s.attributes),
                        "status": STATUS_CODES.get(s.status.code, s.status.code),
                        "status_message": s.status.message,
                        "resource": resource,
                    })
        with self._lock:
            self.exports.append({"path": path, "headers": headers, "spans": len(spans)})
            self.spans += spans

    def find(self, trace_id: str) -> list[dict]:
        with self._lock:
            return [s for s in self.spans if s["trace_id"] == trace_id]

    def wait_span(self, pred, timeout: float = 10.0) -> dict:
        """The first span for which pred(span) holds, waiting for exports to arrive."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [s for s in self.spans if pred(s)]
            if found:
                assert len(found) == 1, f"expected one span, got {len(found)}: {found}"
                return found[0]
            if time.monotonic() > deadline:
                with self._lock:
                    names = [(s["name"], s["trace_id"]) for s in self.spans[-10:]]
                raise AssertionError(f"no such span after {timeout}s; newest: {names}")
            time.sleep(0.05)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
