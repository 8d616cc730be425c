"""The gateway's Anthropic Messages API (`/v1/messages`) driven by the official `anthropic` SDK against an
Anthropic-provider model (claude-fake) on the fake upstream, each request checked against the ledger and its
exact cost (cache reads and writes at their own rates)."""
from __future__ import annotations

import json
import time
from decimal import Decimal

import anthropic
import httpx
import pytest

import fake_upstream as fu
from conftest import (ANTHROPIC_UPSTREAM_KEY, UPSTREAM_KEY, assert_row_matches_anthropic_usage,
                      assert_row_matches_usage, expected_anthropic_cost, fmt_money, nonce)

MODEL = "claude-fake"
UPSTREAM_MODEL = "claude-fake-upstream"
BETA = "prompt-caching-2024-07-31,fine-grained-tool-streaming-2025-05-14"
TOOLS = [{
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def rid_of(headers) -> str:
    rid = headers.get("x-tollgate-request-id")
    assert rid, f"no x-tollgate-request-id in {dict(headers)}"
    return rid


def usage_dict(u) -> dict:
    return u.model_dump(exclude_none=True)


def assert_no_virtual_key(up: dict, key: str):
    for k, v in up["headers"].items():
        assert key not in v, f"virtual key leaked upstream in header {k}"
    assert key not in up["body"], "virtual key leaked upstream in the body"


def one_upstream(fake, marker: str) -> dict:
    ups = fake.find(marker)
    assert len(ups) == 1, f"{len(ups)} upstream requests carry {marker}: {ups}"
    return ups[0]


def anthropic_error(response) -> dict:
    body = response.json()
    assert body.get("type") == "error" and isinstance(body.get("error"), dict), \
        f"not Anthropic's error shape: {body}"
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], body
    return body["error"]


def raw_post(gateway, key: str, body, path: str = "/v1/messages", **headers) -> httpx.Response:
    hs = {"x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json", **headers}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(gateway.url + path, content=content, headers=hs, timeout=20)


def sse_events(lines) -> list[tuple[str, dict]]:
    """(event name, data) pairs from SSE lines."""
    out, name, data = [], None, []
    for line in lines:
        if line == "":
            if name is not None or data:
                out.append((name, json.loads("\n".join(data)) if data else None))
            name, data = None, []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if name is not None or data:
        out.append((name, json.loads("\n".join(data)) if data else None))
    return out


# -------------------------------------------------------------------------------------------- messages

def test_message_non_streamed_with_cache_read_and_write(gateway, fake, aclient, ident, ledger_row):
    n = nonce()
    msgs = user(f"hello {n} CACHE_READ 100 CACHE_WRITE 50 REPLY_WORDS 7")
    raw = aclient.messages.with_raw_response.create(model=MODEL, max_tokens=200, system="You are a test.",
                                                    messages=msgs, extra_headers={"anthropic-beta": BETA})
    assert raw.status_code == 200
    msg = raw.parse()
    assert msg.type == "message" and msg.role == "assistant"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == fu.reply_text(7)
    assert msg.stop_reason == "end_turn"
    want = fu.anthropic_usage({"messages": msgs, "system": "You are a test."})
    assert want["cache_read_input_tokens"] == 100 and want["cache_creation_input_tokens"] == 50
    assert json.loads(raw.http_response.content)["usage"] == want, "usage did not pass through unchanged"
    assert usage_dict(msg.usage) == want
    rid = rid_of(raw.headers)
    assert raw.headers.get("x-tollgate-model") == MODEL

    row = ledger_row(rid)
    assert_row_matches_anthropic_usage(row, want)
    # the trap: Anthropic's input_tokens excludes cache reads and writes; each is priced at its own rate
    assert row["input_tokens"] == want["input_tokens"]
    assert row["cached_input_tokens"] == 100 and row["cache_write_tokens"] == 50
    manual = (Decimal(want["input_tokens"]) * 3 + 100 * Decimal("0.30") + 50 * Decimal("3.75")
              + 7 * Decimal(15)) / 10**6
    assert row["cost_usd"] == fmt_money(manual) == expected_anthropic_cost(want["input_tokens"], 100, 50, 7)
    assert row["requested_model"] == MODEL
    assert row["endpoint"] == "messages"
    assert row["status"] == 200 and row["stream"] is False
    assert row["agentic"] is False
    assert row["usage_estimated"] is False
    assert row["user"] == ident.user and row["team"] == ident.team and str(row["key_id"]) == ident.key_id
    assert raw.headers.get("x-tollgate-cost-usd") == row["cost_usd"]

    up = one_upstream(fake, n)
    assert up["path"].split("?")[0] == "/v1/messages"
    assert up["headers"].get("x-api-key") == ANTHROPIC_UPSTREAM_KEY
    sent_version = raw.http_response.request.headers["anthropic-version"]
    assert up["headers"].get("anthropic-version") == sent_version, "the client's anthropic-version was not passed on"
    assert up["headers"].get("anthropic-beta") == BETA
    body = json.loads(up["body"])
    assert body["model"] == UPSTREAM_MODEL
    assert body["messages"] == msgs and body["max_tokens"] == 200 and body["system"] == "You are a test."
    assert_no_virtual_key(up, ident.key)
    assert UPSTREAM_KEY not in json.dumps(up["headers"]), "the OpenAI upstream key went to the Anthropic upstream"


def test_message_streamed_with_the_sdk(gateway, fake, aclient, ledger_row):
    n = nonce()
    msgs = user(f"stream {n} CACHE_READ 30 CACHE_WRITE 20 REPLY_WORDS 6")
    with aclient.messages.stream(model=MODEL, max_tokens=100, messages=msgs) as stream:
        assert stream.response.status_code == 200
        rid = rid_of(stream.response.headers)
        assert stream.response.headers.get("x-tollgate-model") == MODEL
        assert stream.response.headers.get("content-type", "").startswith("text/event-stream")
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == fu.stream_pieces(fu.reply_text(6), fu.reply_words(6), None)
    assert "".join(pieces) == fu.reply_text(6)
    assert final.content[0].text == fu.reply_text(6)
    assert final.stop_reason == "end_turn"
    want = fu.anthropic_usage({"messages": msgs})
    assert usage_dict(final.usage) == want

    up = one_upstream(fake, n)
    assert json.loads(up["body"]).get("stream") is True
    assert up["headers"].get("x-api-key") == ANTHROPIC_UPSTREAM_KEY

    row = ledger_row(rid)
    # output_tokens comes from message_delta, the input side from message_start
    assert_row_matches_anthropic_usage(row, want)
    assert row["stream"] is True and row["status"] == 200 and row["endpoint"] == "messages"
    assert row["usage_estimated"] is False


def test_stream_events_pass_through_in_order(gateway, fake, ident, ledger_row):
    n = nonce()
    msgs = user(f"events {n} REPLY_WORDS 5 SLOW_CHUNKS 150")
    with gateway.anthropic(ident.key) as c:
        t0 = time.monotonic()
        with c.messages.with_streaming_response.create(model=MODEL, max_tokens=50, messages=msgs,
                                                       stream=True) as resp:
            assert resp.status_code == 200
            rid = rid_of(resp.headers)
            lines, first_at = [], None
            for line in resp.iter_lines():
                if first_at is None and line:
                    first_at = time.monotonic() - t0
                lines.append(line)
        end_at = time.monotonic() - t0
    events = sse_events(lines)
    names = [e for e, _ in events]
    assert names == ["message_start", "content_block_start", "ping"] + ["content_block_delta"] * 5 + \
        ["content_block_stop", "message_delta", "message_stop"], names
    for name, data in events:
        assert data["type"] == name, (name, data)
    start = events[0][1]["message"]
    want = fu.anthropic_usage({"messages": msgs})
    assert start["usage"]["input_tokens"] == want["input_tokens"] and start["usage"]["output_tokens"] == 1
    deltas = [d["delta"]["text"] for e, d in events if e == "content_block_delta"]
    assert "".join(deltas) == fu.reply_text(5)
    md = events[-2][1]
    assert md["delta"]["stop_reason"] == "end_turn" and md["usage"]["output_tokens"] == 5
    assert first_at is not None and end_at - first_at > 0.8, \
        f"first event at {first_at:.3f}s, stream ended at {end_at:.3f}s: buffered?"
    row = ledger_row(rid)
    assert_row_matches_anthropic_usage(row, want)


def test_stream_error_event_is_passed_on(gateway, fake, aclient, ledger_row):
    n = nonce()
    msgs = user(f"overload {n} REPLY_WORDS 6 STREAM_ERROR 2")
    got = []
    with pytest.raises(anthropic.APIStatusError) as ei:
        with aclient.messages.stream(model=MODEL, max_tokens=100, messages=msgs) as stream:
            rid = rid_of(stream.response.headers)
            for text in stream.text_stream:
                got.append(text)
    assert ei.value.type == "overloaded_error", ei.value.body
    assert got == ["Hello", " from"]
    row = ledger_row(rid)
    want_in = fu.anthropic_input_tokens({"messages": msgs})
    assert row["input_tokens"] == want_in, row
    assert Decimal(row["cost_usd"]) >= Decimal(expected_anthropic_cost(want_in)), row


# -------------------------------------------------------------------------------------------- tools

def test_tool_use_round_trip_is_agentic(gateway, fake, aclient, ledger_row):
    n = nonce()
    first = user(f"What is the weather in Paris? {n} TOOL_USE get_weather")
    raw1 = aclient.messages.with_raw_response.create(model=MODEL, max_tokens=300, tools=TOOLS, messages=first,
                                                     tool_choice={"type": "auto"})
    m1 = raw1.parse()
    assert m1.stop_reason == "tool_use"
    assert len(m1.content) == 1 and m1.content[0].type == "tool_use"
    call = m1.content[0]
    assert call.name == "get_weather" and call.input == fu.TOOL_INPUT and call.id.startswith("toolu_")
    row1 = ledger_row(rid_of(raw1.headers))
    assert_row_matches_anthropic_usage(row1, fu.anthropic_usage({"messages": first}))
    assert row1["output_tokens"] == fu.TOOL_USE_OUTPUT_TOKENS
    assert row1["agentic"] is True

    up1 = one_upstream(fake, n)
    sent = json.loads(up1["body"])
    assert sent["tools"] == TOOLS and sent["tool_choice"] == {"type": "auto"}

    # the same tool call, streamed: input_json_delta pieces come through and assemble
    with aclient.messages.stream(model=MODEL, max_tokens=300, tools=TOOLS, messages=first) as stream:
        rid_s = rid_of(stream.response.headers)
        ms = stream.get_final_message()
    assert ms.stop_reason == "tool_use" and ms.content[0].type == "tool_use"
    assert ms.content[0].input == fu.TOOL_INPUT
    row_s = ledger_row(rid_s)
    assert_row_matches_anthropic_usage(row_s, fu.anthropic_usage({"messages": first}))
    assert row_s["agentic"] is True and row_s["stream"] is True

    follow = first + [
        {"role": "assistant", "content": [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21 C"},
                                     {"type": "text", "text": "REPLY_WORDS 4"}]},
    ]
    raw2 = aclient.messages.with_raw_response.create(model=MODEL, max_tokens=300, tools=TOOLS, messages=follow)
    m2 = raw2.parse()
    assert m2.stop_reason == "end_turn" and m2.content[0].text == fu.reply_text(4)
    want2 = fu.anthropic_usage({"messages": follow})
    assert usage_dict(m2.usage) == want2
    row2 = ledger_row(rid_of(raw2.headers))
    assert_row_matches_anthropic_usage(row2, want2)
    assert row2["agentic"] is True
    sent2 = [json.loads(u["body"]) for u in fake.find(call.id)]
    assert len(sent2) == 1 and sent2[0]["messages"] == follow


def test_tool_result_alone_marks_agentic(gateway, ident, ledger_row):
    # A follow-up carrying a tool_result but no tool definitions is still agentic.
    msgs = [
        {"role": "user", "content": f"weather {nonce()}"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_x1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x1", "content": "sunny"},
                                     {"type": "text", "text": "REPLY_WORDS 2"}]},
    ]
    r = raw_post(gateway, ident.key, {"model": MODEL, "max_tokens": 50, "messages": msgs})
    assert r.status_code == 200, r.text
    row = ledger_row(rid_of(r.headers))
    assert_row_matches_anthropic_usage(row, fu.anthropic_usage({"messages": msgs}))
    assert row["agentic"] is True


# -------------------------------------------------------------------------------------------- count_tokens

def test_count_tokens_forwarded_for_anthropic_models(gateway, fake, aclient, ident):
    n = nonce()
    msgs = user(f"count me {n} " + "lorem ipsum " * 30)
    raw = aclient.messages.with_raw_response.count_tokens(model=MODEL, system="You are a test.", messages=msgs,
                                                          tools=TOOLS)
    assert raw.status_code == 200
    counted = raw.parse()
    assert counted.input_tokens == fu.anthropic_input_tokens({"messages": msgs, "system": "You are a test."})
    rid_of(raw.headers)
    assert raw.headers.get("x-tollgate-token-count") != "estimated", "a forwarded count is not an estimate"
    up = one_upstream(fake, n)
    assert up["path"].split("?")[0] == "/v1/messages/count_tokens"
    assert up["headers"].get("x-api-key") == ANTHROPIC_UPSTREAM_KEY
    assert json.loads(up["body"])["model"] == UPSTREAM_MODEL
    assert_no_virtual_key(up, ident.key)


def test_count_tokens_estimated_for_other_models(gateway, fake, aclient):
    n = nonce()
    msgs = user(f"count me {n} " + "lorem ipsum " * 30)
    raw = aclient.messages.with_raw_response.count_tokens(model="fake-mini", messages=msgs)
    counted = raw.parse()
    assert isinstance(counted.input_tokens, int) and counted.input_tokens > 0
    # the contract: an estimate says so in the response
    assert raw.headers.get("x-tollgate-token-count") == "estimated", dict(raw.headers)
    assert fake.find(n) == [], "count_tokens for an OpenAI-compatible model must be estimated, not forwarded"


# -------------------------------------------------------------------------------------------- auth

def test_bearer_and_x_api_key_both_work(gateway, fake, ident, ledger_row):
    for label, client in [
        ("api_key (Bearer in this SDK)", gateway.anthropic(ident.key)),
        ("auth_token (Bearer)", gateway.anthropic(ident.key, api_key=None, auth_token=ident.key)),
        ("x-api-key only", gateway.anthropic_x_api_key(ident.key)),
    ]:
        n = nonce()
        with client:
            raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=20,
                                                           messages=user(f"{label} {n} REPLY_WORDS 2"))
        sent = raw.http_response.request.headers
        if label == "x-api-key only":
            assert sent.get("x-api-key") == ident.key and "authorization" not in sent, dict(sent)
        else:
            assert sent.get("authorization") == f"Bearer {ident.key}", dict(sent)
        assert raw.status_code == 200, label
        assert raw.parse().content[0].text == fu.reply_text(2)
        row = ledger_row(rid_of(raw.headers))
        assert str(row["key_id"]) == ident.key_id, label
        up = one_upstream(fake, n)
        assert up["headers"].get("x-api-key") == ANTHROPIC_UPSTREAM_KEY, label
        assert_no_virtual_key(up, ident.key)


def test_beta_query_with_x_api_key(gateway, fake, ident, ledger_row):
    # what coding agents send: /v1/messages?beta=true, x-api-key, anthropic-beta
    n = nonce()
    msgs = user(f"agent {n} REPLY_WORDS 3 CACHE_READ 7")
    r = raw_post(gateway, ident.key, {"model": MODEL, "max_tokens": 32000, "messages": msgs},
                 path="/v1/messages?beta=true", **{"anthropic-beta": BETA})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["type"] == "message" and got["content"][0]["text"] == fu.reply_text(3)
    want = fu.anthropic_usage({"messages": msgs})
    assert got["usage"] == want
    row = ledger_row(rid_of(r.headers))
    assert_row_matches_anthropic_usage(row, want)
    up = one_upstream(fake, n)
    assert up["path"].split("?")[0] == "/v1/messages"
    assert up["headers"].get("anthropic-beta") == BETA
    assert up["headers"].get("anthropic-version") == "2023-06-01"
    assert_no_virtual_key(up, ident.key)


# -------------------------------------------------------------------------------------------- errors

def test_unknown_key_401_authentication_error(gateway):
    bad = "tg-" + "0" * 40
    with gateway.anthropic(bad) as c:
        with pytest.raises(anthropic.AuthenticationError) as ei:
            c.messages.create(model=MODEL, max_tokens=10, messages=user("who am i"))
    assert ei.value.status_code == 401
    err = anthropic_error(ei.value.response)
    assert err["type"] == "authentication_error"
    assert err.get("code") == "invalid_api_key", err
    r = raw_post(gateway, bad, {"model": MODEL, "max_tokens": 10, "messages": user("who am i")})
    assert r.status_code == 401 and anthropic_error(r)["type"] == "authentication_error"
    r = raw_post(gateway, "", {"model": MODEL, "max_tokens": 10, "messages": user("no key")})
    assert r.status_code == 401 and anthropic_error(r)["type"] == "authentication_error"


def test_model_not_allowed_403_permission_error(gateway, new_identity):
    ident = new_identity(models=["fake-mini"])
    with gateway.anthropic(ident.key) as c:
        with pytest.raises(anthropic.PermissionDeniedError) as ei:
            c.messages.create(model=MODEL, max_tokens=10, messages=user("not mine"))
    assert ei.value.status_code == 403
    err = anthropic_error(ei.value.response)
    assert err["type"] == "permission_error"
    assert err.get("code") == "model_not_allowed", err


def test_unknown_model_404_not_found_error(aclient):
    with pytest.raises(anthropic.NotFoundError) as ei:
        aclient.messages.create(model="claude-no-such-model", max_tokens=10, messages=user("hello"))
    assert ei.value.status_code == 404
    err = anthropic_error(ei.value.response)
    assert err["type"] == "not_found_error"
    assert err.get("code") == "model_not_found", err


def test_upstream_500_gives_502_api_error(fake, aclient, ledger_row):
    n = nonce()
    with pytest.raises(anthropic.InternalServerError) as ei:
        aclient.messages.create(model=MODEL, max_tokens=10, messages=user(f"{n} STATUS 500"))
    e = ei.value
    assert e.status_code == 502
    err = anthropic_error(e.response)
    assert err["type"] == "api_error"
    assert ANTHROPIC_UPSTREAM_KEY not in e.response.text
    assert len(fake.find(n)) == 1
    row = ledger_row(rid_of(e.response.headers))
    assert row["status"] == 502
    assert row["requested_model"] == MODEL


def test_budget_exhausted_429_rate_limit_error(gateway, fake, admin, new_identity):
    ident = new_identity()
    r = admin.http.post("/admin/budgets", json={"scope": "user", "name": ident.user, "limit_usd": "0.0001",
                                                "period": "day"})
    assert r.status_code == 201, r.text
    n = nonce()
    with gateway.anthropic(ident.key) as c:
        with pytest.raises(anthropic.RateLimitError) as ei:
            # worst case: 1,000 output tokens at $15/M = $0.015, far above $0.0001
            c.messages.create(model=MODEL, max_tokens=1000, messages=user(f"{n} REPLY_WORDS 2"))
    e = ei.value
    assert e.status_code == 429
    err = anthropic_error(e.response)
    assert err["type"] == "rate_limit_error"
    assert err.get("code") == "budget_exceeded", err
    b = err.get("budget")
    assert isinstance(b, dict), err
    assert b["scope"] == "user" and b["name"] == ident.user and b["limit_usd"] == "0.0001"
    assert {"id", "model", "period", "limit_usd", "spent_usd", "resets_at"} <= set(b), b
    assert e.response.headers.get("x-should-retry") == "false"
    assert fake.find(n) == [], "a request refused by its budget reached the upstream"


def test_malformed_json_400_invalid_request_error(gateway, ident):
    r = raw_post(gateway, ident.key, b'{"model": "claude-fake", "max_tokens": 10, "messages": [{"role": "user"')
    assert r.status_code == 400, r.text
    err = anthropic_error(r)
    assert err["type"] == "invalid_request_error"
    assert r.headers.get("x-tollgate-request-id")


# -------------------------------------------------------------------------------------------- translation

OPENAI_TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def test_anthropic_client_to_openai_compatible_model(gateway, fake, aclient, ident, ledger_row):
    n = nonce()
    msgs = user(f"translate {n} CACHED 3 REPLY_WORDS 4")
    raw = aclient.messages.with_raw_response.create(model="fake-gpt", max_tokens=64, system="You are a test.",
                                                    messages=msgs)
    assert raw.status_code == 200
    m = raw.parse()
    assert m.type == "message" and m.content[0].type == "text" and m.content[0].text == fu.reply_text(4)
    assert m.stop_reason == "end_turn"
    up = one_upstream(fake, n)
    assert up["path"] == "/v1/chat/completions"
    assert up["headers"].get("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert "x-api-key" not in up["headers"]
    assert_no_virtual_key(up, ident.key)
    sent = json.loads(up["body"])
    assert sent["model"] == "fake-gpt-upstream"
    assert sent["messages"][0]["role"] == "system" and fu.message_text(sent["messages"][0]["content"]) == \
        "You are a test."
    u = fu.chat_usage(sent["messages"])
    # OpenAI's prompt_tokens includes the cached ones; Anthropic's input_tokens does not
    assert usage_dict(m.usage) == {"input_tokens": u["prompt_tokens"] - 3, "cache_read_input_tokens": 3,
                                   "cache_creation_input_tokens": 0, "output_tokens": 4}
    row = ledger_row(rid_of(raw.headers))
    assert_row_matches_usage(row, "fake-gpt", u)
    assert row["endpoint"] == "messages" and row["status"] == 200
    assert raw.headers.get("x-tollgate-cost-usd") == row["cost_usd"]

    # streamed
    n = nonce()
    msgs = user(f"translate stream {n} REPLY_WORDS 5")
    with aclient.messages.stream(model="fake-mini", max_tokens=64, messages=msgs) as stream:
        rid = rid_of(stream.response.headers)
        assert stream.response.headers.get("x-tollgate-model") == "fake-mini"
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == fu.reply_text(5)
    assert final.stop_reason == "end_turn"
    sent = json.loads(one_upstream(fake, n)["body"])
    assert sent.get("stream") is True
    u = fu.chat_usage(sent["messages"])
    assert final.usage.input_tokens == u["prompt_tokens"] and final.usage.output_tokens == 5
    row = ledger_row(rid)
    assert_row_matches_usage(row, "fake-mini", u)
    assert row["stream"] is True


def test_openai_client_to_anthropic_model(gateway, fake, client, ident, ledger_row):
    n = nonce()
    msgs = [{"role": "system", "content": "You are a test."},
            {"role": "user", "content": f"translate {n} CACHE_READ 40 CACHE_WRITE 8 REPLY_WORDS 5"}]
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=msgs, max_tokens=100)
    resp = raw.parse()
    assert resp.choices[0].message.content == fu.reply_text(5)
    assert resp.choices[0].finish_reason == "stop"
    up = one_upstream(fake, n)
    assert up["path"].split("?")[0] == "/v1/messages"
    assert up["headers"].get("x-api-key") == ANTHROPIC_UPSTREAM_KEY
    assert up["headers"].get("anthropic-version"), "no anthropic-version sent when translating"
    assert_no_virtual_key(up, ident.key)
    sent = json.loads(up["body"])
    assert sent["model"] == UPSTREAM_MODEL and sent["max_tokens"] == 100
    assert fu.anthropic_content_text(sent.get("system")) == "You are a test."
    assert all(m["role"] != "system" for m in sent["messages"])
    au = fu.anthropic_usage(sent)
    assert resp.usage.prompt_tokens == au["input_tokens"] + 40 + 8
    assert resp.usage.prompt_tokens_details.cached_tokens == 40
    assert resp.usage.completion_tokens == 5
    row = ledger_row(rid_of(raw.headers))
    assert_row_matches_anthropic_usage(row, au)
    assert row["endpoint"] != "messages", "an OpenAI-format request is not a messages request"
    assert raw.headers.get("x-tollgate-cost-usd") == row["cost_usd"]

    # streamed, with include_usage
    n = nonce()
    msgs = [{"role": "user", "content": f"translate stream {n} CACHE_READ 5 REPLY_WORDS 6"}]
    with client.chat.completions.with_streaming_response.create(
            model=MODEL, messages=msgs, max_tokens=100, stream=True,
            stream_options={"include_usage": True}) as resp:
        rid = rid_of(resp.headers)
        chunks = list(resp.parse())
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == fu.reply_text(6)
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage = [ch.usage for ch in chunks if ch.usage is not None]
    sent = json.loads(one_upstream(fake, n)["body"])
    au = fu.anthropic_usage(sent)
    assert len(usage) == 1 and usage[0].prompt_tokens == au["input_tokens"] + 5
    assert usage[0].completion_tokens == 6
    row = ledger_row(rid)
    assert_row_matches_anthropic_usage(row, au)
    assert row["stream"] is True


def test_openai_client_tool_call_on_anthropic_model(gateway, fake, client, ledger_row):
    n = nonce()
    msgs = [{"role": "user", "content": f"weather in Paris? {n} TOOL_USE get_weather"}]
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=msgs, tools=OPENAI_TOOLS,
                                                           tool_choice="auto", max_tokens=200)
    resp = raw.parse()
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert len(calls) == 1 and calls[0].type == "function" and calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == fu.TOOL_INPUT
    sent = json.loads(one_upstream(fake, n)["body"])
    assert [t["name"] for t in sent["tools"]] == ["get_weather"]
    assert sent["tools"][0]["input_schema"] == OPENAI_TOOLS[0]["function"]["parameters"]
    assert sent.get("tool_choice") == {"type": "auto"}
    row = ledger_row(rid_of(raw.headers))
    assert_row_matches_anthropic_usage(row, fu.anthropic_usage(sent))
    assert row["agentic"] is True

    # the tool result goes back in OpenAI form and reaches the upstream as a tool_result block
    follow = msgs + [
        {"role": "assistant", "content": None, "tool_calls": [calls[0].model_dump(exclude_none=True)]},
        {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny, 21 C"},
    ]
    raw2 = client.chat.completions.with_raw_response.create(model=MODEL, messages=follow, tools=OPENAI_TOOLS,
                                                            max_tokens=200)
    resp2 = raw2.parse()
    assert resp2.choices[0].finish_reason == "stop"
    ups = fake.find(calls[0].id)
    assert len(ups) == 1
    sent2 = json.loads(ups[0]["body"])
    blocks = [b for m in sent2["messages"] if isinstance(m["content"], list) for b in m["content"]]
    results = [b for b in blocks if b.get("type") == "tool_result"]
    assert len(results) == 1 and results[0]["tool_use_id"] == calls[0].id
    assert fu.anthropic_block_text(results[0]) == "sunny, 21 C"
    row2 = ledger_row(rid_of(raw2.headers))
    assert_row_matches_anthropic_usage(row2, fu.anthropic_usage(sent2))
    assert row2["agentic"] is True
