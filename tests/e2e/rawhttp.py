"""A tiny blocking HTTP/1.1 client on a raw socket, for tests that must control every byte.

Every socket operation has a time-out; nothing here waits without bound.
"""
from __future__ import annotations

import json
import socket
import time


class RawResponse:
    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes,
                 complete: bool, chunks: list[bytes] | None = None):
        self.status = status
        self.reason = reason
        self.header_list = headers
        self.headers = {}
        for k, v in headers:
            self.headers[k] = v if k not in self.headers else self.headers[k] + ", " + v
        self.body = body
        self.complete = complete          # the body ended as framed (not cut by a closed socket)
        self.chunks = chunks              # the chunk payloads, for chunked bodies

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"<RawResponse {self.status} {len(self.body)} bytes complete={self.complete}>"


class RawConn:
    """One TCP connection. `send` writes bytes; `read_response` reads exactly one response."""

    def __init__(self, host: str, port: int, timeout: float = 15.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_until(self, marker: bytes, deadline: float) -> bytes | None:
        """Bytes up to and including marker; None if the socket closed first."""
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {marker!r} before the deadline")
            if not self._fill():
                return None

    def read_exactly(self, n: int, deadline: float) -> bytes | None:
        while len(self.buf) < n:
            if time.monotonic() > deadline:
                raise TimeoutError("body not complete before the deadline")
            if not self._fill():
                return None
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_head(self, timeout: float = 15.0):
        deadline = time.monotonic() + timeout
        while True:
            raw = self.read_until(b"\r\n\r\n", deadline)
            if raw is None:
                raise ConnectionError("connection closed before a response head")
            lines = raw.decode("latin-1").split("\r\n")
            status_line = lines[0].split(" ", 2)
            status = int(status_line[1])
            reason = status_line[2] if len(status_line) > 2 else ""
            headers = []
            for line in lines[1:]:
                if not line:
                    continue
                k, v = line.split(":", 1)
                headers.append((k.strip().lower(), v.strip()))
            if 100 <= status < 200:
                continue  # interim response
            return status, reason, headers

    def read_response(self, timeout: float = 15.0, method: str = "POST",
                      on_chunk=None) -> RawResponse:
        """One full response. on_chunk(payload) is called for each chunk of a chunked body as it arrives;
        if it returns False, reading stops there (complete=False)."""
        deadline = time.monotonic() + timeout
        status, reason, headers = self.read_head(timeout)
        h = {}
        for k, v in headers:
            h[k] = v if k not in h else h[k] + ", " + v
        if method == "HEAD" or status in (204, 304):
            return RawResponse(status, reason, headers, b"", True)
        if "chunked" in h.get("transfer-encoding", "").lower():
            body = bytearray()
            chunks = []
            while True:
                line = self.read_until(b"\r\n", deadline)
                if line is None:
                    return RawResponse(status, reason, headers, bytes(body), False, chunks)
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:  # trailers
                        t = self.read_until(b"\r\n", deadline)
                        if t is None:
                            return RawResponse(status, reason, headers, bytes(body), False, chunks)
                        if t == b"\r\n":
                            return RawResponse(status, reason, headers, bytes(body), True, chunks)
                data = self.read_exactly(size + 2, deadline)
                if data is None:
                    return RawResponse(status, reason, headers, bytes(body), False, chunks)
                payload = data[:-2]
                body += payload
                chunks.append(payload)
                if on_chunk is not None and on_chunk(payload) is False:
                    return RawResponse(status, reason, headers, bytes(body), False, chunks)
        if "content-length" in h:
            n = int(h["content-length"])
            data = self.read_exactly(n, deadline)
            if data is None:
                return RawResponse(status, reason, headers, bytes(self.buf), False)
            return RawResponse(status, reason, headers, data, True)
        # delimited by close
        while self._fill():
            if time.monotonic() > deadline:
                raise TimeoutError("body not complete before the deadline")
        body = bytes(self.buf)
        self.buf.clear()
        return RawResponse(status, reason, headers, body, True)


def build_request(method: str, path: str, host: str, headers: dict | None = None, body: bytes | None = None,
                  chunked_parts: list[bytes] | None = None) -> bytes:
    """Request bytes. With chunked_parts the body is sent chunked (one chunk per part)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if chunked_parts is not None:
        lines.append("Transfer-Encoding: chunked")
        out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        for p in chunked_parts:
            out += b"%x\r\n" % len(p) + p + b"\r\n"
        return out + b"0\r\n\r\n"
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def sse_events(body: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, in order."""
    out = []
    for block in body.decode("utf-8").replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:")]
        if data:
            out.append("\n".join(data))
    return out


def build_head(method: str, path: str, host: str, headers: dict | None = None) -> bytes:
    """Just the request head (for bodies sent piece by piece)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def encode_chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"
