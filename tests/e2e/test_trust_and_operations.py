"""Issue 14's trust and operability items, through the real server: a 502 shows no upstream address, slow heads are
cut, a malformed request gets one answer, the ledger's flush interval is bounded, and faults are logged (as text or
JSON, rate-limited, never with a key or a prompt)."""
from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

import rawhttp
from conftest import ANTHROPIC_UPSTREAM_KEY, UPSTREAM_KEY, gateway_config, nonce, start_gateway


def chat_body(model: str, text: str, **kw) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": text}], **kw}).encode()


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def wait_for_log(gw, needle: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = gw.log.read_text(errors="replace")
        if needle in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} not in the gateway's log:\n{gw.log_tail()}")


def read_all(sock: socket.socket, timeout: float = 3.0) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (True) or stays silent for `timeout` (False)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except socket.timeout:
        return data, False


@pytest.fixture(scope="module")
def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def ops_gateway(e2e_tmp, fake, closed_port):
    """A gateway with a 1 s request-head deadline, JSON logs, and a model whose upstream refuses connections."""
    extra = (f'  - {{ name: nowhere, provider: openai-compatible, base_url: "http://127.0.0.1:{closed_port}/v1", '
             f'api_key: "sk-nowhere-secret", price: {{ input_per_mtok: "1", output_per_mtok: "1" }} }}\n')
    config = gateway_config(fake.port, extra).replace(
        "server: { max_body_bytes: 1048576,", "server: { max_body_bytes: 1048576, request_head_timeout_ms: 1000,")
    config += "log: { format: json }\n"
    gw = start_gateway(e2e_tmp / "gw-ops", config)
    yield gw
    gw.stop()


# ------------------------------------------------------------------------------- 7. no address in a 502

def test_a_502_names_the_model_but_not_the_upstream_address(ops_gateway, fake, closed_port):
    ident = ops_gateway.admin.new_identity()
    r = httpx.post(ops_gateway.v1 + "/chat/completions", headers=auth(ident.key), content=chat_body("nowhere", "hi"),
                   timeout=15)
    assert r.status_code == 502, r.text
    message = r.json()["error"]["message"]
    assert "nowhere" in message, message
    for leak in ("127.0.0.1", str(closed_port), "SingleConnectionFailure", "IPv4", "errno", "sk-nowhere-secret"):
        assert leak not in r.text, r.text
    rid = r.headers["x-tollgate-request-id"]
    # The detail is for the operator: in the log (with the request id) and the ledger row.
    log = wait_for_log(ops_gateway, rid)
    line = next(json.loads(l) for l in log.splitlines() if rid in l)
    assert line["level"] == "warning" and line["kind"] == "upstream_connect" and line["model"] == "nowhere", line
    row = ops_gateway.ledger_row(rid)
    assert row["status"] == 502 and str(closed_port) in (row.get("error") or ""), row

    n = nonce()
    r = httpx.post(ops_gateway.v1 + "/chat/completions", headers=auth(ident.key),
                   content=chat_body("fake-mini", f"{n} CLOSE_BEFORE"), timeout=15)
    assert r.status_code == 502 and "fake-mini" in r.text and str(fake.port) not in r.text, r.text


# ------------------------------------------------------------------------------------- 8. slow headers

def test_a_head_sent_a_line_at_a_time_is_cut_at_the_deadline(ops_gateway):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", ops_gateway.port), timeout=5) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        closed_after = None
        for _ in range(40):  # a header line every 100 ms: each byte would reset an idle timer
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                closed_after = time.monotonic() - started
                break
            s.settimeout(0.1)
            try:
                if s.recv(1024) == b"":
                    closed_after = time.monotonic() - started
                    break
            except socket.timeout:
                pass
    assert closed_after is not None, "the connection was still open after 4 s of trickled headers"
    assert 0.9 <= closed_after <= 2.5, closed_after


def test_a_kept_alive_connection_waiting_between_requests_is_not_cut_by_the_head_deadline(ops_gateway):
    with rawhttp.RawConn("127.0.0.1", ops_gateway.port, timeout=10) as c:
        for _ in range(2):
            c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.read_response(timeout=5).status == 200
            time.sleep(1.5)  # longer than the head deadline, with no request started


# ------------------------------------------------------------------------------ 9. one answer, then close

@pytest.mark.parametrize("payload", [
    b"GET /\r\n\r\n",                                    # HTTP/0.9
    b"GARBAGE LINE\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
], ids=["http09", "garbage", "two-content-lengths", "obs-fold", "cl-and-te"])
def test_a_malformed_request_gets_one_400_then_the_connection_closes(ops_gateway, payload):
    with socket.create_connection(("127.0.0.1", ops_gateway.port), timeout=5) as s:
        s.sendall(payload)
        data, closed = read_all(s)
    assert closed, f"the connection stayed open after {data!r}"
    assert data.startswith(b"HTTP/1.1 400 "), data
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")))
    assert len(body) == length, f"more than one answer: {data!r}"
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    assert httpx.get(ops_gateway.url + "/health").status_code == 200  # still serving


# ------------------------------------------------------------------------------------ 10. flush interval

@pytest.mark.parametrize("flush", ["0", "9"])
def test_a_ledger_flush_under_10_ms_stops_the_start_with_its_line(e2e_tmp, fake, flush):
    config = gateway_config(fake.port).replace("ledger: { flush_ms: 50 }", f"ledger: {{ flush_ms: {flush} }}")
    with pytest.raises(RuntimeError) as failure:
        start_gateway(e2e_tmp / f"gw-flush-{flush}", config)
    message = str(failure.value)
    assert "tollgate.yaml:2: ledger.flush_ms: expected an integer from 10 to 60000" in message, message


# ------------------------------------------------------------------------------------------ 11. the log

def test_faults_are_logged_with_the_request_id_and_never_a_key_or_a_prompt(gateway, fake, ident):
    n = nonce()
    secret_prompt = f"{n} my private prompt"
    r = httpx.post(gateway.v1 + "/chat/completions", headers=auth(ident.key),
                   content=chat_body("fake-mini", f"{secret_prompt} STATUS 503"), timeout=15)
    assert r.status_code == 502, r.text
    rid = r.headers["x-tollgate-request-id"]
    log = wait_for_log(gateway, rid)
    line = next(l for l in log.splitlines() if rid in l)
    assert "warning" in line and "kind=upstream_status" in line and "503" in line, line
    r = httpx.post(gateway.v1 + "/chat/completions", headers=auth("tg-not-a-real-key-" + n),
                   content=chat_body("fake-mini", secret_prompt), timeout=15)
    assert r.status_code == 401
    time.sleep(0.3)
    log = gateway.log.read_text(errors="replace")
    for secret in (ident.key, UPSTREAM_KEY, ANTHROPIC_UPSTREAM_KEY, "tg-not-a-real-key-" + n, secret_prompt):
        assert secret not in log, f"{secret!r} appears in the log"


def test_json_logs_are_one_object_per_line_and_floods_are_held_back(ops_gateway):
    ident = ops_gateway.admin.new_identity()
    with httpx.Client(base_url=ops_gateway.v1, timeout=15) as http:
        for _ in range(30):
            assert http.post("/chat/completions", headers=auth(ident.key),
                             content=chat_body("nowhere", "hi")).status_code == 502
    health = httpx.get(ops_gateway.url + "/health").json()
    assert health["warnings"]["upstream_connect"] >= 30, health
    lines = [l for l in ops_gateway.log.read_text(errors="replace").splitlines() if l.startswith("{")]
    objects = [json.loads(l) for l in lines]
    assert objects and all({"time", "level", "label", "message"} <= set(o) for o in objects)
    connect = [o for o in objects if o.get("kind") == "upstream_connect"]
    assert len(connect) < 30, f"{len(connect)} lines for 30 faults in a burst: not rate-limited"
