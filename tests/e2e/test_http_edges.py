"""HTTP edges of the relay, driven with raw sockets and httpx: request and response framings, keep-alive and
connection reuse, upstreams failing early or mid-stream, clients leaving, pipelining, time-outs, TLS."""
from __future__ import annotations

import json
import time
from decimal import Decimal

import httpx
import pytest

import certs
import fake_upstream as fu
import rawhttp
from conftest import (UPSTREAM_KEY, assert_row_matches_usage, expected_cost, gateway_config, nonce,
                      start_fake, start_gateway)


def msgs_for(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def chat_body(model: str, text: str, **kw) -> bytes:
    return json.dumps({"model": model, "messages": msgs_for(text), **kw}).encode()


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def host(gateway) -> str:
    return f"127.0.0.1:{gateway.port}"


def raw_conn(gateway, timeout: float = 15.0) -> rawhttp.RawConn:
    return rawhttp.RawConn("127.0.0.1", gateway.port, timeout=timeout)


def content_of_events(events: list[str]) -> str:
    out = []
    for e in events:
        if e == "[DONE]":
            continue
        try:
            obj = json.loads(e)
        except json.JSONDecodeError:
            continue
        for ch in obj.get("choices") or []:
            out.append((ch.get("delta") or {}).get("content") or "")
    return "".join(out)


def the_upstream_request(fake, marker: str) -> dict:
    found = fake.find(marker)
    assert len(found) == 1, f"expected one upstream request with {marker}, got {len(found)}"
    return found[0]


def check_next_request_works(gateway, fake, ident, avoid_conn: int):
    """A following request succeeds and is not sent on the connection that was abandoned."""
    n = nonce()
    r = httpx.post(gateway.v1 + "/chat/completions", headers=auth(ident.key), timeout=15,
                   content=chat_body("fake-mini", f"after {n} REPLY_WORDS 2"))
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == fu.reply_text(2)
    conn = the_upstream_request(fake, n)["conn"]
    assert conn != avoid_conn, f"the abandoned upstream connection {avoid_conn} was reused"
    return conn


# -------------------------------------------------------------------------------------------- framings

def test_chunked_request_body_to_gateway(gateway, fake, ident, ledger_row):
    n = nonce()
    text = f"chunked request {n} REPLY_WORDS 4"
    body = chat_body("fake-mini", text)
    with raw_conn(gateway) as c:
        c.send(rawhttp.build_head("POST", "/v1/chat/completions", host(gateway),
                                  {**auth(ident.key), "Transfer-Encoding": "chunked"}))
        for part in (body[:7], body[7:40], body[40:]):
            time.sleep(0.05)
            c.send(rawhttp.encode_chunk(part))
        time.sleep(0.05)
        c.send(b"0\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r.body
    out = r.json()
    assert out["choices"][0]["message"]["content"] == fu.reply_text(4)
    up = the_upstream_request(fake, n)
    assert json.loads(up["body"])["messages"] == msgs_for(text)
    row = ledger_row(r.headers["x-tollgate-request-id"])
    assert_row_matches_usage(row, "fake-mini", fu.chat_usage(msgs_for(text)))


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_upstream_response_framings_relayed(gateway, fake, ident, ledger_row, framing):
    n = nonce()
    text = f"framing {n} REPLY_WORDS 6" + (" CHUNKED" if framing == "chunked" else "")
    with raw_conn(gateway) as c:
        c.send(rawhttp.build_request("POST", "/v1/chat/completions", host(gateway), auth(ident.key),
                                     chat_body("fake-gpt", text)))
        r = c.read_response()
    assert r.status == 200 and r.complete, r
    out = r.json()
    assert out["choices"][0]["message"]["content"] == fu.reply_text(6)
    assert out["usage"] == fu.chat_usage(msgs_for(text))
    row = ledger_row(r.headers["x-tollgate-request-id"])
    assert_row_matches_usage(row, "fake-gpt", fu.chat_usage(msgs_for(text)))
    assert r.headers.get("x-tollgate-cost-usd") == row["cost_usd"]


def test_stream_raw_bytes_without_include_usage(gateway, ident, ledger_row):
    text = f"{nonce()} REPLY_WORDS 3"
    with raw_conn(gateway) as c:
        c.send(rawhttp.build_request("POST", "/v1/chat/completions", host(gateway), auth(ident.key),
                                     chat_body("fake-mini", text, stream=True)))
        r = c.read_response()
    assert r.status == 200 and r.complete
    events = rawhttp.sse_events(r.body)
    assert events[-1] == "[DONE]"
    assert content_of_events(events) == fu.reply_text(3)
    for e in events[:-1]:
        obj = json.loads(e)
        assert obj.get("usage") is None, f"usage shown to a client that did not ask: {e}"
        assert obj["choices"], f"empty-choices chunk shown to a client that did not ask: {e}"
    row = ledger_row(r.headers["x-tollgate-request-id"])
    assert_row_matches_usage(row, "fake-mini", fu.chat_usage(msgs_for(text)))


# -------------------------------------------------------------------------------------------- connections

def test_upstream_connection_reused_after_500(gateway, fake, ident):
    n = nonce()
    with httpx.Client(timeout=15, headers=auth(ident.key)) as h:
        r = h.post(gateway.v1 + "/chat/completions", content=chat_body("fake-mini", f"{n} STATUS 500"))
        assert r.status_code == 502, r.text
        before = fake.connections()["accepted"]
        for i in range(3):
            r = h.post(gateway.v1 + "/chat/completions",
                       content=chat_body("fake-mini", f"{nonce()} reuse {i} REPLY_WORDS 2"))
            assert r.status_code == 200, r.text
        after = fake.connections()["accepted"]
    conn_500 = the_upstream_request(fake, n)["conn"]
    closed = conn_500 in fake.connections()["closed_by_peer"]
    assert after == before, (f"upstream connections grew from {before} to {after}: keep-alive not reused"
                             + (f"; the gateway closed connection {conn_500} after its (complete, keep-alive) "
                                f"500 answer" if closed else ""))


def test_upstream_close_before_answer_gives_502(gateway, fake, ident, ledger_row):
    n = nonce()
    r = httpx.post(gateway.v1 + "/chat/completions", headers=auth(ident.key), timeout=15,
                   content=chat_body("fake-mini", f"{n} CLOSE_BEFORE"))
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "code", "param"}
    assert UPSTREAM_KEY not in r.text
    row = ledger_row(r.headers["x-tollgate-request-id"])
    assert row["status"] == 502
    conns = {u["conn"] for u in fake.find(n)}
    for conn in conns:
        check_next_request_works(gateway, fake, ident, avoid_conn=conn)


def test_upstream_close_midstream(gateway, fake, ident, ledger_row):
    n = nonce()
    with raw_conn(gateway) as c:
        c.send(rawhttp.build_request("POST", "/v1/chat/completions", host(gateway), auth(ident.key),
                                     chat_body("fake-mini", f"{n} REPLY_WORDS 9 CLOSE_MIDSTREAM 3", stream=True)))
        r = c.read_response(timeout=15)
    assert r.status == 200
    events = rawhttp.sse_events(r.body)
    assert "[DONE]" not in events, "the client's stream should end early, without [DONE]"
    assert content_of_events(events) == fu.reply_text(3)

    up = the_upstream_request(fake, n)
    row = ledger_row(r.headers["x-tollgate-request-id"])
    assert row["output_tokens"] >= 3, row
    assert row["usage_estimated"] is True, row
    assert Decimal(row["cost_usd"]) > 0, row
    check_next_request_works(gateway, fake, ident, avoid_conn=up["conn"])


def test_client_disconnects_midstream(gateway, fake, ident, ledger_row):
    n = nonce()
    seen = []

    def on_chunk(payload: bytes):
        seen.append(payload)
        body = b"".join(seen)
        complete_events = body[:body.rfind(b"\n\n") + 2] if b"\n\n" in body else b""
        return content_of_events(rawhttp.sse_events(complete_events)) == ""  # stop once a word arrived

    c = raw_conn(gateway)
    try:
        c.send(rawhttp.build_request("POST", "/v1/chat/completions", host(gateway), auth(ident.key),
                                     chat_body("fake-mini", f"{n} REPLY_WORDS 40 SLOW_CHUNKS 100",
                                               stream=True)))
        r = c.read_response(timeout=15, on_chunk=on_chunk)
    finally:
        c.close()
    assert r.status == 200 and not r.complete
    rid = r.headers["x-tollgate-request-id"]

    up = the_upstream_request(fake, n)
    assert fake.wait_conn_closed(up["conn"], timeout=3.0, by="peer"), \
        "the gateway did not close the upstream connection of a stream its client abandoned"
    up = the_upstream_request(fake, n)
    assert up["completed"] is False and up["aborted_by_peer"] is True, up

    row = ledger_row(rid)
    assert row["status"] in (200, 499), row
    assert row["output_tokens"] >= 1, row
    assert Decimal(row["cost_usd"]) > 0, row
    check_next_request_works(gateway, fake, ident, avoid_conn=up["conn"])


def test_pipelined_requests_answered_in_order(gateway, ident):
    h = host(gateway)
    req1 = rawhttp.build_request("POST", "/v1/chat/completions", h, auth(ident.key),
                                 chat_body("fake-mini", f"{nonce()} first REPLY_WORDS 2"))
    req2 = rawhttp.build_request("POST", "/v1/chat/completions", h, auth(ident.key),
                                 chat_body("fake-gpt", f"{nonce()} second REPLY_WORDS 6"))
    with raw_conn(gateway) as c:
        c.send(req1 + req2)
        r1 = c.read_response()
        r2 = c.read_response()
    assert r1.status == 200 and r2.status == 200
    assert r1.json()["choices"][0]["message"]["content"] == fu.reply_text(2)
    assert r2.json()["choices"][0]["message"]["content"] == fu.reply_text(6)
    assert r1.headers.get("x-tollgate-model") == "fake-mini"
    assert r2.headers.get("x-tollgate-model") == "fake-gpt"
    assert r1.headers["x-tollgate-request-id"] != r2.headers["x-tollgate-request-id"]


def test_pipelined_slow_stream_then_request(gateway, ident):
    """The second response must wait for the whole first (streamed) one: no interleaved bytes."""
    h = host(gateway)
    req1 = rawhttp.build_request("POST", "/v1/chat/completions", h, auth(ident.key),
                                 chat_body("fake-mini", f"{nonce()} REPLY_WORDS 5 SLOW_CHUNKS 60", stream=True))
    req2 = rawhttp.build_request("POST", "/v1/chat/completions", h, auth(ident.key),
                                 chat_body("fake-mini", f"{nonce()} REPLY_WORDS 3"))
    with raw_conn(gateway) as c:
        c.send(req1 + req2)
        r1 = c.read_response()
        r2 = c.read_response()
    assert r1.status == 200 and r1.complete
    events = rawhttp.sse_events(r1.body)
    assert events[-1] == "[DONE]" and content_of_events(events) == fu.reply_text(5)
    assert r2.status == 200
    assert r2.json()["choices"][0]["message"]["content"] == fu.reply_text(3)


def test_upstream_hang_gives_504(gateway, fake, ident, ledger_row):
    n = nonce()
    t0 = time.monotonic()
    r = httpx.post(gateway.v1 + "/chat/completions", headers=auth(ident.key), timeout=20,
                   content=chat_body("fake-mini", f"{n} HANG"))
    elapsed = time.monotonic() - t0
    assert r.status_code == 504, r.text
    assert 2.5 <= elapsed < 10, f"504 after {elapsed:.2f}s; first_byte_ms is 3000"
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "code", "param"}
    assert UPSTREAM_KEY not in r.text
    up = the_upstream_request(fake, n)
    assert fake.wait_conn_closed(up["conn"], timeout=3.0, by="peer"), \
        "the gateway kept the timed-out upstream connection open"
    row = ledger_row(r.headers["x-tollgate-request-id"])
    assert row["status"] == 504


def test_keys_change_on_one_connection(gateway, new_identity, ledger_row):
    """Each request on a keep-alive connection is checked against the key it presents (the gateway keeps the
    last key's digest per connection): another key is another caller, a wrong key is refused, and the first
    key works again."""
    alice, bob = new_identity(), new_identity()
    h = host(gateway)
    with raw_conn(gateway) as c:
        answers = []
        for key in (alice.key, bob.key, alice.key[:-1] + ("0" if alice.key[-1] != "0" else "1"), "", alice.key):
            headers = auth(key) if key else {"Content-Type": "application/json"}
            c.send(rawhttp.build_request("POST", "/v1/chat/completions", h, headers,
                                         chat_body("fake-mini", f"{nonce()} REPLY_WORDS 2")))
            answers.append(c.read_response())
    assert [r.status for r in answers] == [200, 200, 401, 401, 200]
    users = [ledger_row(answers[i].headers["x-tollgate-request-id"]).get("user") for i in (0, 1, 4)]
    assert users == [alice.user, bob.user, alice.user]
    # Refused before authentication succeeded: no ledger row (anyone could otherwise grow the ledger).
    stored = {row["id"] for row in gateway.admin.requests(200)["data"]}
    assert not stored & {answers[i].headers["x-tollgate-request-id"] for i in (2, 3)}


def test_hang_after_an_answer_on_the_same_connection(gateway, fake, ident, ledger_row):
    """The first-byte deadline follows each request on a keep-alive connection (one timer per connection
    follows the deadlines): a request that hangs after one that was answered still gets its 504."""
    h = host(gateway)
    with raw_conn(gateway, timeout=20) as c:
        c.send(rawhttp.build_request("POST", "/v1/chat/completions", h, auth(ident.key),
                                     chat_body("fake-mini", f"{nonce()} REPLY_WORDS 2")))
        first = c.read_response()
        time.sleep(1.0)
        t0 = time.monotonic()
        c.send(rawhttp.build_request("POST", "/v1/chat/completions", h, auth(ident.key),
                                     chat_body("fake-mini", f"{nonce()} HANG")))
        second = c.read_response()
        elapsed = time.monotonic() - t0
    assert first.status == 200
    assert second.status == 504
    assert 2.5 <= elapsed < 10, f"504 after {elapsed:.2f}s; first_byte_ms is 3000"
    assert ledger_row(second.headers["x-tollgate-request-id"])["status"] == 504


# -------------------------------------------------------------------------------------------- TLS upstream

@pytest.fixture(scope="module")
def tls_setup(e2e_tmp, fake):
    d = e2e_tmp / "tls"
    paths = certs.make_certs(d / "certs")
    tls_fake = start_fake(d, "fake-tls", tls=paths)
    extra = (f'  - {{ name: fake-tls, provider: openai-compatible, base_url: "https://127.0.0.1:{tls_fake.port}/v1", '
             f'api_key: "{UPSTREAM_KEY}", price: {{ input_per_mtok: "0.15", cached_input_per_mtok: "0.075", '
             f'output_per_mtok: "0.60" }} }}\n')
    try:
        gw = start_gateway(d / "gw", gateway_config(fake.port, extra), {"SSL_CERT_FILE": str(paths["ca"])})
    except BaseException:
        tls_fake.stop()
        raise
    yield gw, tls_fake
    gw.stop()
    tls_fake.stop()


def test_https_upstream(tls_setup):
    gw, tls_fake = tls_setup
    ident = gw.admin.new_identity()
    n = nonce()
    msgs = msgs_for(f"over tls {n} REPLY_WORDS 4 CACHED 2")
    with gw.client(ident.key) as c:
        raw = c.chat.completions.with_raw_response.create(model="fake-tls", messages=msgs)
        resp = raw.parse()
        assert resp.choices[0].message.content == fu.reply_text(4)
        row = gw.ledger_row(raw.headers["x-tollgate-request-id"])
        assert_row_matches_usage(row, "fake-tls", fu.chat_usage(msgs))

        smsgs = msgs_for(f"stream over tls {nonce()} REPLY_WORDS 3")
        with c.chat.completions.with_streaming_response.create(model="fake-tls", messages=smsgs,
                                                               stream=True) as s:
            rid = s.headers["x-tollgate-request-id"]
            chunks = list(s.parse())
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == fu.reply_text(3)
        srow = gw.ledger_row(rid)
        assert srow["cost_usd"] == expected_cost("fake-tls", fu.prompt_tokens_for(smsgs), 0, 3)

    up = the_upstream_request(tls_fake, n)
    assert up["headers"].get("authorization") == f"Bearer {UPSTREAM_KEY}"
