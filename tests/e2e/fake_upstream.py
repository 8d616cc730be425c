#!/usr/bin/env python3
"""A fake OpenAI-compatible and Anthropic upstream for Tollgate's end-to-end tests.

Pure asyncio on raw sockets: HTTP/1.1 is parsed here (request line, headers, Content-Length and chunked
request bodies, keep-alive, several and pipelined requests per connection), so tests control every byte
that goes back to the gateway.

    python fake_upstream.py --port 0 [--host 127.0.0.1] [--tls-cert CERT --tls-key KEY] [--verbose]

The first line on stdout is `PORT <n>`.

Endpoints
---------
POST /v1/chat/completions
    Deterministic answer. usage.prompt_tokens = 10 + (UTF-8 bytes of all message contents) // 4;
    the reply is "Hello from fake upstream word5 word6 …" cut to REPLY_WORDS words (default 5);
    usage.completion_tokens = reply words + REASONING.
    Directives, read from the LAST user message's content:
      REPLY_WORDS n      reply has n words (default 5)
      CACHED n           prompt_tokens_details.cached_tokens = n (n > prompt_tokens is a 400)
      REASONING n        completion_tokens_details.reasoning_tokens = n, added to completion_tokens
      STATUS n           answer status n with an OpenAI error body (keep-alive)
      CLOSE_BEFORE       close the socket without answering
      CLOSE_MIDSTREAM k  stream: close the socket after k content chunks (no finish, usage or [DONE])
      HANG               never answer (wait, bounded, until the peer closes)
      CHUNKED            non-stream answer with Transfer-Encoding: chunked, in several chunks
      SLOW_CHUNKS ms     delay between stream chunks (default 10)
      STREAM_CHUNKS n    number of content chunks (default: one per reply word)
      SPACED_JSON        stream events written with spaces after ':' and ',' (Python's default json.dumps)
      REASONING_DELTAS   stream: the reply comes as `reasoning_content` deltas (DeepSeek, vLLM reasoning parsers)
      TOOL_CALL_DELTAS   stream: the reply comes as one tool call whose `function.arguments` are the pieces
    Streams: text/event-stream, chunked; a first chunk with the role and content "", the content chunks, a
    chunk with finish_reason "stop"; with stream_options.include_usage every chunk carries "usage": null and a
    last chunk with "choices": [] carries the usage; then `data: [DONE]`.
POST /v1/embeddings
    usage.prompt_tokens = Σ max(1, UTF-8 bytes // 4) over string inputs (token-list inputs: their length);
    vectors (dimension `dimensions`, default 8) are deterministic float32 values from the input;
    encoding_format "base64" gives base64 of the little-endian float32 bytes, else float lists.
GET /v1/models
    A small model list.
POST /v1/messages   (Anthropic Messages API; a query string such as ?beta=true is ignored)
    Needs `x-api-key` or `Authorization` (else 401), `anthropic-version` (else 400), and a body with model,
    max_tokens and a non-empty messages list (else 400), errors in Anthropic's shape
    {"type": "error", "error": {"type", "message"}, "request_id"}.
    usage.input_tokens = 10 + (UTF-8 bytes of the system prompt and of every message's text: string contents,
    text blocks, tool_result contents) // 4; cache reads and writes are NOT in input_tokens (as Anthropic
    reports them). output_tokens = reply words, or 12 for a tool_use answer.
    Directives, read from the text of the LAST user message (string content or its text blocks):
      REPLY_WORDS n      reply has n words (default 5)
      CACHE_READ n       usage.cache_read_input_tokens = n
      CACHE_WRITE n      usage.cache_creation_input_tokens = n
      STATUS n           answer status n with an Anthropic error body (500 → api_error)
      TOOL_USE name      answer a tool_use block {"id": "toolu_…", "name": name, "input": {"city": "Paris"}},
                         stop_reason "tool_use"
      SLOW_CHUNKS ms     delay between stream events (default 10)
      CLOSE_BEFORE, HANG, CLOSE_MIDSTREAM k (after k content_block_delta events) as for chat
      STREAM_ERROR k     stream: after k content_block_delta events send `event: error` (overloaded_error)
                         and end the stream there (as Anthropic does mid-stream)
      THINKING_DELTAS    stream: the reply comes as a `thinking` block's thinking_delta events
      SPACED_JSON        stream events written with spaces after ':' and ','
      CACHE_WRITE_1H n   usage.cache_creation = {ephemeral_5m_input_tokens: CACHE_WRITE, ephemeral_1h_input_tokens: n},
                         and cache_creation_input_tokens = CACHE_WRITE + n (as Anthropic reports both)
    Streams ("stream": true): text/event-stream, chunked, `event: NAME\ndata: {json}\n\n` each:
    message_start (usage: input side, output_tokens 1), content_block_start, ping, content_block_delta (one
    text_delta per word, or input_json_delta pieces for tool_use), content_block_stop, message_delta
    (stop_reason, usage.output_tokens), message_stop.
POST /v1/messages/count_tokens
    {"input_tokens": <the input_tokens formula above>}

Control endpoints (not logged, and their connections are not counted)
    GET  /_requests     JSON list of every request received: method, path, headers (lower-cased names;
                        repeated headers joined with ", "), body (text), conn (connection id), seq, time,
                        chunked_body (the request body came chunked), completed (the response was sent
                        whole), aborted_by_peer (the peer went away before the response was complete)
    POST /_reset        clears that list
    GET  /_connections  {"accepted": n, "open": [ids], "closed_by_peer": [ids], "closed_by_server": [ids],
                        "control_accepted": n}; "accepted" counts TCP connections that carried at least one
                        API request (connections used only for control calls are counted apart)
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import re
import ssl
import struct
import sys
import time
from email.utils import formatdate

# ---------------------------------------------------------------------------------------------- limits
IDLE_TIMEOUT = 60.0        # keep-alive: wait this long for the next request, then close
IO_TIMEOUT = 30.0          # any single read or write once a request has started
HANG_MAX = 120.0           # HANG: give up waiting for the peer to close after this long
MAX_LINE = 64 * 1024
MAX_HEADERS = 200
MAX_BODY = 64 * 1024 * 1024

BASE_WORDS = ["Hello", "from", "fake", "upstream"]

REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 413: "Payload Too Large",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}


# ------------------------------------------------------------------------------------- pure functions
# Tests import these to compute what the fake answers.

def message_text(content) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
            elif isinstance(part, str):
                out.append(part)
        return "".join(out)
    return ""


def prompt_tokens_for(messages) -> int:
    total = 0
    for m in messages or []:
        if isinstance(m, dict):
            total += len(message_text(m.get("content")).encode("utf-8"))
    return 10 + total // 4


def reply_words(n: int) -> list[str]:
    words = []
    for i in range(n):
        words.append(BASE_WORDS[i] if i < len(BASE_WORDS) else f"word{i + 1}")
    return words


def reply_text(n: int) -> str:
    return " ".join(reply_words(n))


_DIRECTIVE_RE = {
    "REPLY_WORDS": re.compile(r"\bREPLY_WORDS\s+(\d+)"),
    "CACHED": re.compile(r"\bCACHED\s+(\d+)"),
    "REASONING": re.compile(r"\bREASONING\s+(\d+)"),
    "STATUS": re.compile(r"\bSTATUS\s+(\d{3})"),
    "CLOSE_MIDSTREAM": re.compile(r"\bCLOSE_MIDSTREAM\s+(\d+)"),
    "SLOW_CHUNKS": re.compile(r"\bSLOW_CHUNKS\s+(\d+)"),
    "STREAM_CHUNKS": re.compile(r"\bSTREAM_CHUNKS\s+(\d+)"),
}
_FLAG_RE = {
    "CLOSE_BEFORE": re.compile(r"\bCLOSE_BEFORE\b"),
    "HANG": re.compile(r"\bHANG\b"),
    "CHUNKED": re.compile(r"\bCHUNKED\b"),
    "SPACED_JSON": re.compile(r"\bSPACED_JSON\b"),
    "REASONING_DELTAS": re.compile(r"\bREASONING_DELTAS\b"),
    "TOOL_CALL_DELTAS": re.compile(r"\bTOOL_CALL_DELTAS\b"),
    "THINKING_DELTAS": re.compile(r"\bTHINKING_DELTAS\b"),
}


def directives_for(messages) -> dict:
    """Directives from the last user message's content."""
    text = ""
    for m in reversed(messages or []):
        if isinstance(m, dict) and m.get("role") == "user":
            text = message_text(m.get("content"))
            break
    d: dict = {}
    for name, rx in _DIRECTIVE_RE.items():
        mm = rx.search(text)
        if mm:
            d[name] = int(mm.group(1))
    for name, rx in _FLAG_RE.items():
        if rx.search(text):
            d[name] = True
    return d


def chat_usage(messages) -> dict:
    """The usage object the fake reports for these messages (for the full, successful answer)."""
    d = directives_for(messages)
    prompt = prompt_tokens_for(messages)
    cached = d.get("CACHED", 0)
    reasoning = d.get("REASONING", 0)
    completion = d.get("REPLY_WORDS", 5) + reasoning
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def stream_pieces(text: str, words: list[str], n_chunks: int | None) -> list[str]:
    """Split the reply into content chunks: one word per chunk by default, else n contiguous pieces."""
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    if n_chunks is None or n_chunks == len(pieces):
        return pieces
    if n_chunks <= 0:
        return []
    if n_chunks < len(pieces):
        out = []
        per, extra = divmod(len(pieces), n_chunks)
        i = 0
        for k in range(n_chunks):
            size = per + (1 if k < extra else 0)
            out.append("".join(pieces[i:i + size]))
            i += size
        return out
    # more chunks than words: split the text by characters (some pieces may be empty)
    out = []
    per, extra = divmod(len(text), n_chunks)
    i = 0
    for k in range(n_chunks):
        size = per + (1 if k < extra else 0)
        out.append(text[i:i + size])
        i += size
    return out


def embedding_inputs(inp) -> list:
    if isinstance(inp, str):
        return [inp]
    if isinstance(inp, list):
        if inp and all(isinstance(x, int) for x in inp):
            return [inp]
        return list(inp)
    return []


def embedding_tokens(inp) -> int:
    total = 0
    for x in embedding_inputs(inp):
        if isinstance(x, str):
            total += max(1, len(x.encode("utf-8")) // 4)
        elif isinstance(x, list):
            total += len(x)
    return total


def embedding_vector(index: int, item, dims: int) -> list[float]:
    seed = (f"{index}:" + (item if isinstance(item, str) else json.dumps(item))).encode("utf-8")
    out = []
    for j in range(dims):
        h = hashlib.sha256(seed + j.to_bytes(4, "little")).digest()
        u = int.from_bytes(h[:4], "little")
        v = (u / 2**32) * 2.0 - 1.0
        out.append(struct.unpack("<f", struct.pack("<f", v))[0])  # exact float32 value
    return out


def embedding_base64(vec: list[float]) -> str:
    return base64.b64encode(struct.pack("<%df" % len(vec), *vec)).decode("ascii")


# ------------------------------------------------------------------------- Anthropic pure functions

TOOL_INPUT = {"city": "Paris"}
TOOL_USE_OUTPUT_TOKENS = 12

_ANTHROPIC_RE = {
    "REPLY_WORDS": re.compile(r"\bREPLY_WORDS\s+(\d+)"),
    "CACHE_READ": re.compile(r"\bCACHE_READ\s+(\d+)"),
    "CACHE_WRITE": re.compile(r"\bCACHE_WRITE\s+(\d+)"),
    "CACHE_WRITE_1H": re.compile(r"\bCACHE_WRITE_1H\s+(\d+)"),
    "STATUS": re.compile(r"\bSTATUS\s+(\d{3})"),
    "SLOW_CHUNKS": re.compile(r"\bSLOW_CHUNKS\s+(\d+)"),
    "CLOSE_MIDSTREAM": re.compile(r"\bCLOSE_MIDSTREAM\s+(\d+)"),
    "STREAM_ERROR": re.compile(r"\bSTREAM_ERROR\s+(\d+)"),
    "STREAM_CHUNKS": re.compile(r"\bSTREAM_CHUNKS\s+(\d+)"),
}


def anthropic_block_text(block) -> str:
    """The text a content block carries: a text block's text, a tool_result's content (string or text blocks)."""
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    t = block.get("type")
    if t == "text" and isinstance(block.get("text"), str):
        return block["text"]
    if t == "tool_result":
        c = block.get("content")
        if isinstance(c, str):
            return c
        if isinstance(c, list):
            return "".join(anthropic_block_text(b) for b in c if isinstance(b, dict) and b.get("type") == "text")
    return ""


def anthropic_content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(anthropic_block_text(b) for b in content)
    return ""


def anthropic_input_tokens(body: dict) -> int:
    """10 + UTF-8 bytes of the system prompt and of all message text // 4 (cache reads/writes excluded)."""
    total = len(anthropic_content_text(body.get("system")).encode("utf-8"))
    for m in body.get("messages") or []:
        if isinstance(m, dict):
            total += len(anthropic_content_text(m.get("content")).encode("utf-8"))
    return 10 + total // 4


def anthropic_directives(messages) -> dict:
    """Directives from the text of the last user message (string content, or its text blocks only)."""
    text = ""
    for m in reversed(messages or []):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                text = c
            elif isinstance(c, list):
                text = " ".join(b["text"] for b in c if isinstance(b, dict) and b.get("type") == "text"
                                and isinstance(b.get("text"), str))
            break
    d: dict = {}
    for name, rx in _ANTHROPIC_RE.items():
        mm = rx.search(text)
        if mm:
            d[name] = int(mm.group(1))
    mm = re.search(r"\bTOOL_USE\s+([A-Za-z0-9_-]+)", text)
    if mm:
        d["TOOL_USE"] = mm.group(1)
    for name, rx in _FLAG_RE.items():
        if rx.search(text):
            d[name] = True
    return d


def anthropic_usage(body: dict) -> dict:
    """The usage object of the fake's full answer to this Messages request."""
    d = anthropic_directives(body.get("messages"))
    out = TOOL_USE_OUTPUT_TOKENS if "TOOL_USE" in d else d.get("REPLY_WORDS", 5)
    usage = {
        "input_tokens": anthropic_input_tokens(body),
        "output_tokens": out,
        "cache_creation_input_tokens": d.get("CACHE_WRITE", 0) + d.get("CACHE_WRITE_1H", 0),
        "cache_read_input_tokens": d.get("CACHE_READ", 0),
    }
    if "CACHE_WRITE_1H" in d:
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": d.get("CACHE_WRITE", 0),
                                   "ephemeral_1h_input_tokens": d["CACHE_WRITE_1H"]}
    return usage


def tool_input_json_pieces() -> list[str]:
    """How the streamed tool_use input is cut into input_json_delta partial_json pieces."""
    js = json.dumps(TOOL_INPUT)  # '{"city": "Paris"}', as Anthropic spaces it
    return ["", js[:5], js[5:11], js[11:]]


ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_body(status: int, message: str, request_id: str | None = None, etype: str | None = None) -> bytes:
    obj: dict = {"type": "error",
                 "error": {"type": etype or ANTHROPIC_ERROR_TYPES.get(status, "api_error"), "message": message}}
    if request_id:
        obj["request_id"] = request_id
    return dumps(obj)


def dumps(obj, spaced: bool = False) -> bytes:
    if spaced:
        return json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def error_body(message: str, etype: str = "invalid_request_error", code=None, param=None) -> bytes:
    return dumps({"error": {"message": message, "type": etype, "param": param, "code": code}})


# ---------------------------------------------------------------------------------------------- state

class State:
    def __init__(self, verbose: bool = False):
        self.requests: list[dict] = []
        self.seq = 0
        self.next_conn_id = 0
        self.conns: dict[int, dict] = {}
        self.verbose = verbose
        self.response_seq = 0

    def log(self, *a):
        if self.verbose:
            print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)

    def connections(self) -> dict:
        api = [c for c in self.conns.values() if c["kind"] == "api"]
        return {
            "accepted": len(api),
            "open": sorted(c["id"] for c in api if c["open"]),
            "closed_by_peer": sorted(c["id"] for c in api if not c["open"] and c["closed_by"] == "peer"),
            "closed_by_server": sorted(c["id"] for c in api if not c["open"] and c["closed_by"] == "server"),
            "control_accepted": sum(1 for c in self.conns.values() if c["kind"] == "control"),
        }


class BadRequest(Exception):
    pass


class PeerGone(Exception):
    pass


class Request:
    __slots__ = ("method", "target", "path", "version", "headers", "header_list", "body", "chunked")

    def __init__(self):
        self.headers: dict[str, str] = {}
        self.header_list: list[tuple[str, str]] = []
        self.body = b""
        self.chunked = False

    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        tokens = {t.strip() for t in conn.split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


# ------------------------------------------------------------------------------------------ HTTP read

async def _readline(reader: asyncio.StreamReader, timeout: float) -> bytes:
    try:
        line = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            raise PeerGone()
        raise BadRequest("connection closed inside a line")
    except asyncio.LimitOverrunError:
        raise BadRequest("line too long")
    if len(line) > MAX_LINE:
        raise BadRequest("line too long")
    return line.rstrip(b"\r\n")


async def _readexactly(reader: asyncio.StreamReader, n: int, timeout: float) -> bytes:
    try:
        return await asyncio.wait_for(reader.readexactly(n), timeout)
    except asyncio.IncompleteReadError:
        raise BadRequest("connection closed inside a body")


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
    """One request, or None when the peer closed (or stayed idle too long) between requests."""
    # request line (skip empty lines before it, RFC 9112 §2.2)
    try:
        line = await _readline(reader, IDLE_TIMEOUT)
        while line == b"":
            line = await _readline(reader, IDLE_TIMEOUT)
    except (PeerGone, asyncio.TimeoutError):
        return None
    req = Request()
    parts = line.decode("latin-1").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {line[:100]!r}")
    req.method, req.target, req.version = parts
    req.path = req.target.split("?", 1)[0]
    # headers
    while True:
        try:
            h = await _readline(reader, IO_TIMEOUT)
        except PeerGone:
            raise BadRequest("connection closed inside the headers")
        if h == b"":
            break
        if len(req.header_list) >= MAX_HEADERS:
            raise BadRequest("too many headers")
        if b":" not in h or h[:1] in (b" ", b"\t"):
            raise BadRequest(f"bad header line {h[:100]!r}")
        name, value = h.split(b":", 1)
        if name != name.strip() or not name:
            raise BadRequest("bad header name")
        n = name.decode("latin-1").lower()
        v = value.strip().decode("latin-1")
        req.header_list.append((n, v))
        req.headers[n] = v if n not in req.headers else req.headers[n] + ", " + v
    # body
    te = req.headers.get("transfer-encoding", "").lower()
    if req.headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
    if te:
        codings = [c.strip() for c in te.split(",") if c.strip()]
        if codings[-1:] != ["chunked"]:
            raise BadRequest(f"unsupported transfer-encoding {te!r}")
        req.chunked = True
        body = bytearray()
        while True:
            try:
                size_line = await _readline(reader, IO_TIMEOUT)
            except PeerGone:
                raise BadRequest("connection closed inside a chunked body")
            size_text = size_line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadRequest(f"bad chunk size {size_line[:50]!r}")
            if size < 0 or len(body) + size > MAX_BODY:
                raise BadRequest("chunk too large")
            if size == 0:
                # trailers until an empty line
                while True:
                    try:
                        t = await _readline(reader, IO_TIMEOUT)
                    except PeerGone:
                        raise BadRequest("connection closed inside the trailers")
                    if t == b"":
                        break
                break
            body += await _readexactly(reader, size, IO_TIMEOUT)
            crlf = await _readexactly(reader, 2, IO_TIMEOUT)
            if crlf != b"\r\n":
                raise BadRequest("chunk not followed by CRLF")
        req.body = bytes(body)
    elif "content-length" in req.headers:
        values = {v.strip() for v in req.headers["content-length"].split(",")}
        if len(values) != 1:
            raise BadRequest("conflicting content-length")
        try:
            n = int(values.pop())
        except ValueError:
            raise BadRequest("bad content-length")
        if n < 0 or n > MAX_BODY:
            raise BadRequest("content-length out of range")
        req.body = await _readexactly(reader, n, IO_TIMEOUT) if n else b""
    return req


# ----------------------------------------------------------------------------------------- HTTP write

def head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def std_headers(content_type: str, keep_alive: bool) -> list[tuple[str, str]]:
    return [
        ("Date", formatdate(usegmt=True)),
        ("Server", "fake-upstream"),
        ("Content-Type", content_type),
        ("Connection", "keep-alive" if keep_alive else "close"),
    ]


async def send(writer: asyncio.StreamWriter, data: bytes):
    writer.write(data)
    try:
        await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
    except (ConnectionError, asyncio.TimeoutError) as e:
        raise PeerGone() from e


async def send_full(writer, status: int, body: bytes, keep_alive: bool,
                    content_type: str = "application/json", extra: list | None = None):
    hs = std_headers(content_type, keep_alive) + (extra or []) + [("Content-Length", str(len(body)))]
    await send(writer, head(status, hs) + body)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


# ------------------------------------------------------------------------------------------ handlers

class Handler:
    def __init__(self, state: State):
        self.state = state

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        st = self.state
        st.next_conn_id += 1
        conn = {"id": st.next_conn_id, "kind": "unknown", "open": True, "closed_by": None, "requests": 0}
        st.conns[conn["id"]] = conn
        st.log("conn", conn["id"], "accepted")
        closed_by = "server"
        try:
            while True:
                try:
                    req = await read_request(reader, writer)
                except BadRequest as e:
                    st.log("conn", conn["id"], "bad request:", e)
                    try:
                        await send_full(writer, 400, error_body(str(e)), False)
                    except PeerGone:
                        pass
                    break
                except (asyncio.TimeoutError, PeerGone, ConnectionError):
                    closed_by = "peer"
                    break
                if req is None:
                    closed_by = "peer" if reader.at_eof() else "server"
                    break
                conn["requests"] += 1
                control = req.path.startswith("/_")
                if conn["kind"] == "unknown":
                    conn["kind"] = "control" if control else "api"
                record = None
                if not control:
                    st.seq += 1
                    record = {
                        "seq": st.seq,
                        "conn": conn["id"],
                        "time": time.time(),
                        "method": req.method,
                        "path": req.target,
                        "headers": dict(req.headers),
                        "body": req.body.decode("utf-8", errors="replace"),
                        "chunked_body": req.chunked,
                        "completed": False,
                        "aborted_by_peer": False,
                    }
                    st.requests.append(record)
                    st.log("conn", conn["id"], req.method, req.target, len(req.body), "bytes")
                try:
                    keep, complete = await self.dispatch(req, reader, writer, record)
                except PeerGone:
                    if record is not None:
                        record["aborted_by_peer"] = True
                    closed_by = "peer"
                    break
                if record is not None:
                    record["completed"] = complete
                if not keep:
                    break
        except Exception as e:  # never let one connection kill the server
            st.log("conn", conn["id"], "error:", repr(e))
        finally:
            conn["open"] = False
            conn["closed_by"] = closed_by
            st.log("conn", conn["id"], "closed by", closed_by)
            try:
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 2.0)
            except Exception:
                pass

    # returns (keep the connection open, the response was sent whole); raises PeerGone when the peer went away
    async def dispatch(self, req: Request, reader, writer, record):
        ka = req.keep_alive()
        p, m = req.path, req.method
        if p == "/_requests" and m == "GET":
            await send_full(writer, 200, dumps(self.state.requests), ka)
            return ka, True
        if p == "/_reset" and m == "POST":
            self.state.requests.clear()
            await send_full(writer, 200, dumps({"ok": True}), ka)
            return ka, True
        if p == "/_connections" and m == "GET":
            await send_full(writer, 200, dumps(self.state.connections()), ka)
            return ka, True
        if p == "/v1/chat/completions" and m == "POST":
            return await self.chat(req, reader, writer, record, ka)
        if p == "/v1/messages" and m == "POST":
            return await self.messages(req, reader, writer, record, ka)
        if p == "/v1/messages/count_tokens" and m == "POST":
            return await self.count_tokens(req, writer, record, ka)
        if p == "/v1/embeddings" and m == "POST":
            return await self.embeddings(req, writer, ka)
        if p == "/v1/models" and m == "GET":
            body = {"object": "list", "data": [
                {"id": mid, "object": "model", "created": 1700000000, "owned_by": "fake"}
                for mid in ("fake-gpt-upstream", "fake-mini", "fake-embed")]}
            await send_full(writer, 200, dumps(body), ka)
            return ka, True
        if p.startswith("/hooks/") and m == "POST":
            # A webhook receiver; a path containing "flaky" fails its first delivery (to test retries).
            seen = sum(1 for r in self.state.requests if r.get("path") == p)
            if "flaky" in p and seen <= 1:
                await send_full(writer, 500, error_body("flaky receiver", code="flaky"), ka)
            else:
                await send_full(writer, 200, dumps({"ok": True}), ka)
            return ka, True
        await send_full(writer, 404, error_body(f"no route {m} {p}", code="not_found"), ka)
        return ka, True

    def _json(self, req: Request):
        try:
            body = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return None, f"We could not parse the JSON body of your request. ({e})"
        if not isinstance(body, dict):
            return None, "The request body must be a JSON object."
        return body, None

    async def chat(self, req: Request, reader, writer, record, ka):
        st = self.state
        body, err = self._json(req)
        if err:
            await send_full(writer, 400, error_body(err), ka)
            return ka, True
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            await send_full(writer, 400, error_body("'messages' is required", param="messages"), ka)
            return ka, True
        d = directives_for(messages)
        model = body.get("model") or "unknown"
        # FAIL_MODEL name code: answer `code` only when the request is for upstream model `name` (fallback tests).
        # FAIL_MODEL name STALL: never answer, only for that model.
        fail = re.search(r"\bFAIL_MODEL\s+(\S+)\s+(\d{3}|STALL)", (messages[-1] or {}).get("content") or "" if isinstance((messages[-1] or {}).get("content"), str) else "")
        if fail and fail.group(1) == model:
            if fail.group(2) == "STALL":
                d["HANG"] = True
            else:
                d["STATUS"] = int(fail.group(2))

        if d.get("CLOSE_BEFORE"):
            return False, False  # closes the socket without a byte of answer
        if d.get("HANG"):
            try:
                await asyncio.wait_for(_wait_eof(reader), HANG_MAX)
            except asyncio.TimeoutError:
                return False, False
            raise PeerGone()
        if "STATUS" in d and d["STATUS"] != 200:
            status = d["STATUS"]
            etype = "server_error" if status >= 500 else "invalid_request_error"
            await send_full(writer, status, error_body(f"fake upstream answers {status} as asked", etype), ka,
                            extra=[("x-request-id", f"req_fake_{record['seq']}")])
            return ka, True

        usage = chat_usage(messages)
        if usage["prompt_tokens_details"]["cached_tokens"] > usage["prompt_tokens"]:
            await send_full(writer, 400, error_body(
                f"CACHED {d['CACHED']} exceeds prompt_tokens {usage['prompt_tokens']}"), ka)
            return ka, True
        n_words = d.get("REPLY_WORDS", 5)
        words = reply_words(n_words)
        text = " ".join(words)
        st.response_seq += 1
        cid = f"chatcmpl-fake{st.response_seq}"
        created = int(time.time())
        extra = [("x-request-id", f"req_fake_{record['seq']}"), ("openai-processing-ms", "1")]

        if body.get("stream") is True:
            so = body.get("stream_options")
            include_usage = isinstance(so, dict) and so.get("include_usage") is True
            pieces = stream_pieces(text, words, d.get("STREAM_CHUNKS"))
            delay = d.get("SLOW_CHUNKS", 10) / 1000.0
            close_after = d.get("CLOSE_MIDSTREAM")

            def ev(choices, with_usage=None):
                obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                       "service_tier": "default", "system_fingerprint": "fp_fake", "choices": choices}
                if include_usage:
                    obj["usage"] = with_usage
                return b"data: " + dumps(obj, spaced=bool(d.get("SPACED_JSON"))) + b"\n\n"

            hs = std_headers("text/event-stream; charset=utf-8", ka) + extra + [
                ("Cache-Control", "no-cache"), ("Transfer-Encoding", "chunked")]
            await send(writer, head(200, hs))
            events = [ev([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None},
                           "logprobs": None, "finish_reason": None}])]
            if d.get("TOOL_CALL_DELTAS"):
                events.append(ev([{"index": 0, "delta": {"tool_calls": [{
                    "index": 0, "id": f"call_fake{st.response_seq}", "type": "function",
                    "function": {"name": "lookup", "arguments": ""}}]}, "logprobs": None, "finish_reason": None}]))
            for piece in pieces:
                if d.get("REASONING_DELTAS"):
                    delta = {"reasoning_content": piece}
                elif d.get("TOOL_CALL_DELTAS"):
                    delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                else:
                    delta = {"content": piece}
                events.append(ev([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]))
            if close_after is not None:
                events = events[:1 + close_after]
            else:
                events.append(ev([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
                if include_usage:
                    events.append(ev([], usage))
                events.append(b"data: [DONE]\n\n")
            for i, e in enumerate(events):
                if i > 0 and delay > 0:
                    await asyncio.sleep(delay)
                if reader.at_eof():
                    raise PeerGone()
                await send(writer, chunk(e))
            if close_after is not None:
                await asyncio.sleep(0.05)  # let the peer read what was sent, then cut (no last chunk)
                return False, False
            await send(writer, b"0\r\n\r\n")
            return ka, True

        obj = {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None,
                                                 "annotations": []},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": usage, "service_tier": "default", "system_fingerprint": "fp_fake",
        }
        payload = dumps(obj)
        if d.get("CHUNKED"):
            hs = std_headers("application/json", ka) + extra + [("Transfer-Encoding", "chunked")]
            await send(writer, head(200, hs))
            n = 4
            size = max(1, -(-len(payload) // n))
            for i in range(0, len(payload), size):
                await send(writer, chunk(payload[i:i + size]))
                await asyncio.sleep(0.005)
            await send(writer, b"0\r\n\r\n")
            return ka, True
        await send_full(writer, 200, payload, ka, extra=extra)
        return ka, True

    async def embeddings(self, req: Request, writer, ka):
        body, err = self._json(req)
        if err:
            await send_full(writer, 400, error_body(err), ka)
            return ka, True
        if "input" not in body:
            await send_full(writer, 400, error_body("'input' is required", param="input"), ka)
            return ka, True
        dims = body.get("dimensions", 8)
        if not isinstance(dims, int) or not 1 <= dims <= 4096:
            await send_full(writer, 400, error_body("bad dimensions", param="dimensions"), ka)
            return ka, True
        b64 = body.get("encoding_format") == "base64"
        data = []
        for i, item in enumerate(embedding_inputs(body["input"])):
            vec = embedding_vector(i, item, dims)
            data.append({"object": "embedding", "index": i,
                         "embedding": embedding_base64(vec) if b64 else vec})
        tokens = embedding_tokens(body["input"])
        obj = {"object": "list", "data": data, "model": body.get("model") or "unknown",
               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        await send_full(writer, 200, dumps(obj), ka)
        return ka, True


    # ------------------------------------------------------------------ Anthropic Messages API

    async def _anthropic_check(self, req: Request, writer, record, ka, need_max_tokens: bool):
        """The parsed body, or None after answering the error Anthropic would give."""
        rid = f"req_fake_{record['seq']}"
        extra = [("request-id", rid)]
        if not req.headers.get("x-api-key") and not req.headers.get("authorization"):
            await send_full(writer, 401, anthropic_error_body(401, "x-api-key header is required", rid), ka,
                            extra=extra)
            return None
        if not req.headers.get("anthropic-version"):
            await send_full(writer, 400, anthropic_error_body(400, "anthropic-version: header is required", rid),
                            ka, extra=extra)
            return None
        body, err = self._json(req)
        problem = err
        if body is not None:
            if not isinstance(body.get("model"), str) or not body["model"]:
                problem = "model: Field required"
            elif need_max_tokens and (not isinstance(body.get("max_tokens"), int)
                                      or isinstance(body.get("max_tokens"), bool) or body["max_tokens"] < 1):
                problem = "max_tokens: Field required"
            elif not isinstance(body.get("messages"), list) or not body["messages"]:
                problem = "messages: Field required"
            elif not all(isinstance(x, dict) and x.get("role") in ("user", "assistant") and "content" in x
                         for x in body["messages"]):
                problem = "messages: each message needs a role (user or assistant) and content"
        if problem:
            await send_full(writer, 400, anthropic_error_body(400, problem, rid), ka, extra=extra)
            return None
        return body

    async def count_tokens(self, req: Request, writer, record, ka):
        body = await self._anthropic_check(req, writer, record, ka, need_max_tokens=False)
        if body is not None:
            await send_full(writer, 200, dumps({"input_tokens": anthropic_input_tokens(body)}), ka,
                            extra=[("request-id", f"req_fake_{record['seq']}")])
        return ka, True

    async def messages(self, req: Request, reader, writer, record, ka):
        st = self.state
        body = await self._anthropic_check(req, writer, record, ka, need_max_tokens=True)
        if body is None:
            return ka, True
        rid = f"req_fake_{record['seq']}"
        d = anthropic_directives(body["messages"])
        model = body["model"]

        if d.get("CLOSE_BEFORE"):
            return False, False
        if d.get("HANG"):
            try:
                await asyncio.wait_for(_wait_eof(reader), HANG_MAX)
            except asyncio.TimeoutError:
                return False, False
            raise PeerGone()
        if "STATUS" in d and d["STATUS"] != 200:
            status = d["STATUS"]
            await send_full(writer, status,
                            anthropic_error_body(status, f"fake upstream answers {status} as asked", rid), ka,
                            extra=[("request-id", rid)])
            return ka, True

        usage = anthropic_usage(body)
        st.response_seq += 1
        mid = f"msg_fake{st.response_seq:08d}"
        tool = d.get("TOOL_USE")
        words = reply_words(d.get("REPLY_WORDS", 5))
        if tool:
            block = {"type": "tool_use", "id": f"toolu_fake{st.response_seq:08d}", "name": tool,
                     "input": dict(TOOL_INPUT)}
            stop_reason = "tool_use"
        else:
            block = {"type": "text", "text": " ".join(words)}
            stop_reason = "end_turn"
        extra = [("request-id", rid), ("anthropic-organization-id", "fake-org")]

        if body.get("stream") is True:
            delay = d.get("SLOW_CHUNKS", 10) / 1000.0
            close_after = d.get("CLOSE_MIDSTREAM")
            error_after = d.get("STREAM_ERROR")

            def ev(name: str, obj: dict) -> bytes:
                return b"event: " + name.encode() + b"\ndata: " + dumps({"type": name, **obj},
                                                                       spaced=bool(d.get("SPACED_JSON"))) + b"\n\n"

            start_usage = {"input_tokens": usage["input_tokens"],
                           "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                           "cache_read_input_tokens": usage["cache_read_input_tokens"], "output_tokens": 1}
            if "cache_creation" in usage:
                start_usage["cache_creation"] = usage["cache_creation"]
            events = [ev("message_start", {"message": {
                "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "stop_sequence": None, "usage": start_usage}})]
            if tool:
                events.append(ev("content_block_start", {"index": 0, "content_block": {**block, "input": {}}}))
                events.append(ev("ping", {}))
                deltas = [ev("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta",
                                                                            "partial_json": piece}})
                          for piece in tool_input_json_pieces()]
            elif d.get("THINKING_DELTAS"):
                events.append(ev("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": ""}}))
                events.append(ev("ping", {}))
                deltas = [ev("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": piece}})
                          for piece in stream_pieces(block.get("text", ""), words, d.get("STREAM_CHUNKS"))]
            else:
                events.append(ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}))
                events.append(ev("ping", {}))
                deltas = [ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
                          for piece in stream_pieces(block.get("text", ""), words, d.get("STREAM_CHUNKS"))]
            cut = False
            if close_after is not None:
                events += deltas[:close_after]
                cut = True
            elif error_after is not None:
                events += deltas[:error_after]
                events.append(ev("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}}))
            else:
                events += deltas
                events.append(ev("content_block_stop", {"index": 0}))
                events.append(ev("message_delta", {"delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                                   "usage": {"output_tokens": usage["output_tokens"]}}))
                events.append(ev("message_stop", {}))
            hs = std_headers("text/event-stream; charset=utf-8", ka) + extra + [
                ("Cache-Control", "no-cache"), ("Transfer-Encoding", "chunked")]
            await send(writer, head(200, hs))
            for i, e in enumerate(events):
                if i > 0 and delay > 0:
                    await asyncio.sleep(delay)
                if reader.at_eof():
                    raise PeerGone()
                await send(writer, chunk(e))
            if cut:
                await asyncio.sleep(0.05)
                return False, False
            await send(writer, b"0\r\n\r\n")
            return ka, True

        obj = {"id": mid, "type": "message", "role": "assistant", "model": model, "content": [block],
               "stop_reason": stop_reason, "stop_sequence": None, "usage": usage}
        await send_full(writer, 200, dumps(obj), ka, extra=extra)
        return ka, True


async def _wait_eof(reader: asyncio.StreamReader):
    while True:
        data = await reader.read(65536)
        if not data:
            return


# ---------------------------------------------------------------------------------------------- main

async def main_async(args) -> None:
    ctx = None
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    state = State(verbose=args.verbose)
    server = await asyncio.start_server(
        Handler(state), host=args.host, port=args.port, ssl=ctx, limit=MAX_LINE + 1024,
        ssl_handshake_timeout=10.0 if ctx else None, backlog=512)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
