"""The gateway's life cycle: SIGTERM drains what is in flight and flushes the ledger; what was recorded survives
a restart on the same database; keys made before the restart still work after it."""
from __future__ import annotations

import json
import signal
import threading
import time

import httpx

import fake_upstream as fu
import rawhttp
from conftest import expected_cost, gateway_config, nonce, start_fake, start_gateway


def test_sigterm_drains_a_stream_flushes_the_ledger_and_a_restart_keeps_it(tmp_path):
    fake = start_fake(tmp_path)
    # A long flush interval: the row can only be in the database because shutdown flushed it.
    config = gateway_config(fake.port).replace("flush_ms: 50", "flush_ms: 60000")
    assert "flush_ms: 60000" in config
    gw = start_gateway(tmp_path / "gw", config)
    try:
        ident = gw.admin.new_identity()
        n = nonce()
        body = json.dumps({"model": "fake-mini", "stream": True,
                           "messages": [{"role": "user", "content": f"drain {n} REPLY_WORDS 6 SLOW_CHUNKS 250"}]})
        received: dict = {}

        def stream():
            conn = rawhttp.RawConn("127.0.0.1", gw.port, timeout=20)
            conn.send(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                       "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (ident.key, len(body), body)).encode())
            received["response"] = conn.read_response()
            conn.close()

        reader = threading.Thread(target=stream)
        reader.start()
        time.sleep(0.6)  # the stream has started and has more than a second to go
        gw.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        try:
            httpx.get(gw.url + "/health", timeout=1)
            accepting = True
        except httpx.HTTPError:
            accepting = False
        assert not accepting, "the gateway still accepts connections after SIGTERM"
        reader.join(20)
        assert gw.proc.wait(20) == 0
        response = received["response"]
        assert response.status == 200
        events = rawhttp.sse_events(response.body)
        assert events[-1] == "[DONE]", "the in-flight stream was cut by the shutdown"
        request_id = response.headers["x-tollgate-request-id"]
    finally:
        gw.stop()

    again = start_gateway(tmp_path / "gw", config)
    try:
        row = again.ledger_row(request_id, timeout=2)
        assert row["status"] == 200 and row["output_tokens"] == 6 and not row["usage_estimated"]
        msgs = [{"role": "user", "content": f"drain {n} REPLY_WORDS 6 SLOW_CHUNKS 250"}]
        assert row["cost_usd"] == expected_cost("fake-mini", fu.prompt_tokens_for(msgs), 0, 6)
        # The key made before the restart is loaded into the new process's index.
        r = httpx.post(again.v1 + "/chat/completions", timeout=15,
                       headers={"Authorization": f"Bearer {ident.key}"},
                       json={"model": "fake-mini", "messages": [{"role": "user", "content": "after restart REPLY_WORDS 2"}]})
        assert r.status_code == 200, r.text
    finally:
        again.stop()
        fake.stop()


def test_idle_keep_alive_connection_is_closed_but_a_slow_upstream_is_waited_for(tmp_path):
    fake = start_fake(tmp_path)
    config = gateway_config(fake.port).replace("idle_ms: 5000", "idle_ms: 700")
    assert "idle_ms: 700" in config
    gw = start_gateway(tmp_path / "gw", config)
    try:
        ident = gw.admin.new_identity()
        conn = rawhttp.RawConn("127.0.0.1", gw.port, timeout=10)
        body = json.dumps({"model": "fake-mini", "messages": [{"role": "user", "content": "idle REPLY_WORDS 2"}]})
        request = ("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (ident.key, len(body), body)).encode()
        conn.send(request)
        assert conn.read_response().status == 200
        # Quiet for longer than idle_ms: the gateway closes the keep-alive connection.
        time.sleep(1.5)
        closed = False
        try:
            conn.send(request)
            closed = conn.read_response(timeout=3).status is None
        except Exception:
            closed = True
        assert closed, "an idle keep-alive connection was kept open past idle_ms"
        conn.close()

        # A stream whose chunks come every 400 ms is never idle for 700 ms, and completes.
        conn = rawhttp.RawConn("127.0.0.1", gw.port, timeout=10)
        body = json.dumps({"model": "fake-mini", "stream": True,
                           "messages": [{"role": "user", "content": "slow REPLY_WORDS 4 SLOW_CHUNKS 400"}]})
        conn.send(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (ident.key, len(body), body)).encode())
        response = conn.read_response(timeout=10)
        assert response.status == 200
        assert rawhttp.sse_events(response.body)[-1] == "[DONE]"
        conn.close()
    finally:
        gw.stop()
        fake.stop()
