"""Issue 14's money leaks, tried as a user (or an attacker) would: streams that do not finish are billed for what
was relayed, whatever the upstream's JSON spacing and whatever kind of delta carried it; cache writes cost what
the provider bills; requests that never authenticate leave no ledger row."""
from __future__ import annotations

import json
import time
from decimal import Decimal

import httpx

import fake_upstream as fu
import rawhttp
from conftest import expected_anthropic_cost, expected_cost, fmt_money, gateway_config, nonce, start_gateway


def chat_body(model: str, text: str, **kw) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": text}], **kw}).encode()


def messages_body(model: str, text: str, **kw) -> bytes:
    return json.dumps({"model": model, "max_tokens": 1024, "messages": [{"role": "user", "content": text}],
                       **kw}).encode()


def headers(key: str, anthropic: bool = False) -> dict:
    h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if anthropic:
        h["anthropic-version"] = "2023-06-01"
    return h


def host(gateway) -> str:
    return f"127.0.0.1:{gateway.port}"


def relayed_text(body: bytes) -> str:
    """Every piece of generated text the client received, in either stream format: content, reasoning,
    tool-call arguments, thinking, tool input."""
    out = []
    for data in rawhttp.sse_events(body):
        if data == "[DONE]":
            continue
        try:
            obj = json.loads(data)
        except json.JSONDecodeError:
            continue
        for ch in obj.get("choices") or []:
            d = ch.get("delta") or {}
            out.append(d.get("content") or "")
            out.append(d.get("reasoning_content") or "")
            for call in d.get("tool_calls") or []:
                out.append((call.get("function") or {}).get("arguments") or "")
        d = obj.get("delta") or {}
        if obj.get("type") == "content_block_delta":
            out.append(d.get("text") or d.get("thinking") or d.get("partial_json") or "")
    return "".join(out)


def stream_cut(gateway, key: str, path: str, body: bytes, anthropic: bool = False):
    with rawhttp.RawConn("127.0.0.1", gateway.port, timeout=15) as c:
        c.send(rawhttp.build_request("POST", path, host(gateway), headers(key, anthropic), body))
        r = c.read_response(timeout=15)
    assert r.status == 200, r
    return r


def assert_billed_for_relayed(gateway, r, price_model: str, anthropic_prices: bool = False):
    """The row is marked estimated, bills at least a token per piece relayed and about a token per four bytes
    of relayed text, and its cost is exactly that usage priced (input alone is not enough)."""
    text = relayed_text(r.body)
    assert text, "the test should have relayed some generated text"
    row = gateway.ledger_row(r.headers["x-tollgate-request-id"])
    assert row["usage_estimated"] is True, row
    assert row["output_tokens"] >= len(text.encode()) // 4, (len(text), row)
    if anthropic_prices:
        want = expected_anthropic_cost(row["input_tokens"], row["cached_input_tokens"], row["cache_write_tokens"],
                                       row["output_tokens"], model=price_model)
        input_only = expected_anthropic_cost(row["input_tokens"], model=price_model)
    else:
        want = expected_cost(price_model, row["input_tokens"], 0, row["output_tokens"])
        input_only = expected_cost(price_model, row["input_tokens"])
    assert row["cost_usd"] == want, row
    assert Decimal(row["cost_usd"]) > Decimal(input_only), row
    return row, text


# ------------------------------------------------------------------------------- 1. streams that do not finish

def test_upstream_drop_with_spaced_json_bills_the_relayed_tokens(gateway, ident):
    """An upstream that writes `"content": "…"` (with a space) and drops after two token events."""
    n = nonce()
    r = stream_cut(gateway, ident.key, "/v1/chat/completions",
                   chat_body("fake-mini", f"{n} REPLY_WORDS 9 CLOSE_MIDSTREAM 2 SPACED_JSON", stream=True))
    row, text = assert_billed_for_relayed(gateway, r, "fake-mini")
    assert text == fu.reply_text(2)
    assert row["output_tokens"] >= 2, row


def test_one_big_event_counts_by_its_text_not_as_one_token(gateway, ident):
    n = nonce()
    r = stream_cut(gateway, ident.key, "/v1/chat/completions",
                   chat_body("fake-mini", f"{n} REPLY_WORDS 60 STREAM_CHUNKS 2 CLOSE_MIDSTREAM 1", stream=True))
    row, text = assert_billed_for_relayed(gateway, r, "fake-mini")
    assert len(text) > 150 and row["output_tokens"] >= 40, row


def test_reasoning_deltas_are_counted(gateway, ident):
    n = nonce()
    r = stream_cut(gateway, ident.key, "/v1/chat/completions",
                   chat_body("fake-mini", f"{n} REPLY_WORDS 30 STREAM_CHUNKS 3 CLOSE_MIDSTREAM 2 REASONING_DELTAS",
                             stream=True))
    assert_billed_for_relayed(gateway, r, "fake-mini")


def test_tool_call_argument_deltas_are_counted(gateway, ident):
    n = nonce()
    r = stream_cut(gateway, ident.key, "/v1/chat/completions",
                   chat_body("fake-mini", f"{n} REPLY_WORDS 30 STREAM_CHUNKS 3 CLOSE_MIDSTREAM 2 TOOL_CALL_DELTAS "
                                          "SPACED_JSON", stream=True))
    assert_billed_for_relayed(gateway, r, "fake-mini")


def test_anthropic_thinking_cut_short_counts_its_text(gateway, ident):
    n = nonce()
    r = stream_cut(gateway, ident.key, "/v1/messages",
                   messages_body("claude-fake", f"{n} REPLY_WORDS 60 STREAM_CHUNKS 2 CLOSE_MIDSTREAM 1 THINKING_DELTAS",
                                 stream=True), anthropic=True)
    row, _ = assert_billed_for_relayed(gateway, r, "claude-fake", anthropic_prices=True)
    assert row["output_tokens"] >= 40, row


def test_translated_streams_cut_short_count_what_was_relayed(gateway, ident):
    """OpenAI client → Anthropic model, and Anthropic client → OpenAI-compatible model with spaced JSON."""
    n = nonce()
    r = stream_cut(gateway, ident.key, "/v1/chat/completions",
                   chat_body("claude-fake", f"{n} REPLY_WORDS 60 STREAM_CHUNKS 2 CLOSE_MIDSTREAM 1", stream=True))
    row, _ = assert_billed_for_relayed(gateway, r, "claude-fake", anthropic_prices=True)
    assert row["output_tokens"] >= 40, row

    r = stream_cut(gateway, ident.key, "/v1/messages",
                   messages_body("fake-mini", f"{n} REPLY_WORDS 60 STREAM_CHUNKS 2 CLOSE_MIDSTREAM 1 SPACED_JSON",
                                 stream=True), anthropic=True)
    row, _ = assert_billed_for_relayed(gateway, r, "fake-mini")
    assert row["output_tokens"] >= 40, row


def test_client_that_reads_three_chunks_and_leaves_pays_for_them(gateway, fake, ident):
    n = nonce()
    got = []

    def on_chunk(payload: bytes):
        got.append(payload)
        body = b"".join(got)
        complete = body[:body.rfind(b"\n\n") + 2] if b"\n\n" in body else b""
        pieces = [e for e in rawhttp.sse_events(complete) if '"content": "' in e and '"content": ""' not in e]
        return len(pieces) < 3  # keep reading until three token events arrived

    c = rawhttp.RawConn("127.0.0.1", gateway.port, timeout=15)
    try:
        c.send(rawhttp.build_request("POST", "/v1/chat/completions", host(gateway), headers(ident.key),
                                     chat_body("fake-mini", f"{n} REPLY_WORDS 200 SLOW_CHUNKS 50 SPACED_JSON",
                                               stream=True)))
        r = c.read_response(timeout=15, on_chunk=on_chunk)
    finally:
        c.close()
    assert r.status == 200 and not r.complete
    up = fake.find(n)[0]
    # The upstream would go on generating: its connection is closed at once, so nothing further is spent.
    assert fake.wait_conn_closed(up["conn"], timeout=3.0, by="peer"), "the upstream was not closed"
    row = gateway.ledger_row(r.headers["x-tollgate-request-id"])
    assert row["status"] == 499 and row["usage_estimated"] is True, row
    assert row["output_tokens"] >= 3, row
    assert row["cost_usd"] == expected_cost("fake-mini", row["input_tokens"], 0, row["output_tokens"]), row


# ------------------------------------------------------------------------------------------ 2. cache writes

def test_cache_writes_priced_by_the_providers_rule_when_the_override_leaves_them_out(e2e_tmp, fake):
    """`input 3.00, cached 0.30, output 15.00` and no cache-write rate: writes bill at 1.25× input (5 minutes)
    and 2× input (1 hour), as Anthropic bills them, never at the plain input rate."""
    extra = (f'  - {{ name: claude-override, provider: anthropic, base_url: "{fake.url}", api_key: "sk-ant-x", '
             f'upstream_model: claude-fake-upstream, price: {{ input_per_mtok: "3.00", cached_input_per_mtok: "0.30", '
             f'output_per_mtok: "15.00" }} }}\n'
             f'  - {{ name: claude-catalogued, provider: anthropic, base_url: "{fake.url}", api_key: "sk-ant-x", '
             f'upstream_model: claude-haiku-4-5, price: {{ input_per_mtok: "0.80", output_per_mtok: "4" }} }}\n')
    gw = start_gateway(e2e_tmp / "gw-cache-rule", gateway_config(fake.port, extra))
    try:
        ident = gw.admin.new_identity()
        n = nonce()
        r = httpx.post(gw.url + "/v1/messages", headers=headers(ident.key, anthropic=True), timeout=15,
                       content=messages_body("claude-override", f"{n} CACHE_WRITE 40 CACHE_READ 100"))
        assert r.status_code == 200, r.text
        row = gw.ledger_row(r.headers["x-tollgate-request-id"])
        assert row["cache_write_tokens"] == 40, row
        inp = row["input_tokens"]
        want = fmt_money((Decimal(inp) * Decimal("3") + 100 * Decimal("0.30") + 40 * Decimal("3.75")
                          + row["output_tokens"] * Decimal("15")) / Decimal(10**6))
        assert row["cost_usd"] == want == r.headers["x-tollgate-cost-usd"], row

        r = httpx.post(gw.url + "/v1/messages", headers=headers(ident.key, anthropic=True), timeout=15,
                       content=messages_body("claude-override", f"{n} CACHE_WRITE 10 CACHE_WRITE_1H 30"))
        assert r.status_code == 200, r.text
        row = gw.ledger_row(r.headers["x-tollgate-request-id"])
        assert row["cache_write_tokens"] == 40 and row["cache_write_1h_tokens"] == 30, row
        want = fmt_money((Decimal(row["input_tokens"]) * Decimal("3") + 10 * Decimal("3.75") + 30 * Decimal("6")
                          + row["output_tokens"] * Decimal("15")) / Decimal(10**6))
        assert row["cost_usd"] == want, row

        # The same 1-hour writes in a stream (message_start carries cache_creation).
        r = httpx.post(gw.url + "/v1/messages", headers=headers(ident.key, anthropic=True), timeout=15,
                       content=messages_body("claude-override", f"{n} CACHE_WRITE 10 CACHE_WRITE_1H 30", stream=True))
        assert r.status_code == 200, r.text
        row = gw.ledger_row(r.headers["x-tollgate-request-id"])
        assert row["cache_write_1h_tokens"] == 30 and row["cost_usd"] == want, row

        # Left out, with a catalogue entry for the upstream model: the catalogue's rates (haiku 4.5: read 0.10,
        # write 1.25), not the override's input rate.
        r = httpx.post(gw.url + "/v1/messages", headers=headers(ident.key, anthropic=True), timeout=15,
                       content=messages_body("claude-catalogued", f"{n} CACHE_WRITE 40 CACHE_READ 100"))
        assert r.status_code == 200, r.text
        row = gw.ledger_row(r.headers["x-tollgate-request-id"])
        want = fmt_money((Decimal(row["input_tokens"]) * Decimal("0.80") + 100 * Decimal("0.10")
                          + 40 * Decimal("1.25") + row["output_tokens"] * Decimal("4")) / Decimal(10**6))
        assert row["cost_usd"] == want, row
    finally:
        gw.stop()


def test_an_openai_price_without_a_cached_rate_and_no_catalogue_entry_stops_the_start(e2e_tmp, fake):
    extra = (f'  - {{ name: my-ft, provider: openai, base_url: "{fake.v1}", api_key: "sk-x", '
             f'upstream_model: "ft:unknown-model", price: {{ input_per_mtok: "1", output_per_mtok: "2" }} }}\n')
    try:
        start_gateway(e2e_tmp / "gw-no-cached", gateway_config(fake.port, extra))
    except RuntimeError as e:
        message = str(e)
    else:
        raise AssertionError("the gateway started with an OpenAI model whose cached-input rate is unknown")
    assert "my-ft" in message and "cached_input_per_mtok" in message, message
    assert "tollgate.yaml:" in message, message  # the line of the model's entry


# --------------------------------------------------------------------------- 3. unauthenticated requests

def test_requests_that_never_authenticate_leave_no_ledger_row(gateway, admin):
    before = admin.requests(1)["data"]
    newest = before[0]["id"] if before else None
    health = httpx.get(gateway.url + "/health").json()
    refused_before = health["refused_unauthenticated"]
    with httpx.Client(base_url=gateway.v1, timeout=10) as http:
        for i in range(200):
            h = {"Authorization": f"Bearer tg-madeup{i:04d}"} if i % 2 else {}
            r = http.post("/chat/completions", headers=h, content=chat_body("fake-mini", "hi"))
            assert r.status_code == 401, r.text
    time.sleep(0.3)  # more than one ledger flush
    after = admin.requests(1)["data"]
    assert (after[0]["id"] if after else None) == newest, "refused requests were written to the ledger"
    health = httpx.get(gateway.url + "/health").json()
    assert health["refused_unauthenticated"] >= refused_before + 200, health
