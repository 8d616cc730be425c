"""Routes through the real server: fallback to the next model when one fails before the first byte (connect
error, 5xx, 429), cheapest-capable by what the request needs, weighted load balancing; each recorded in the
ledger with its route and reason."""
from __future__ import annotations

import collections
import time
import json
from decimal import Decimal

import httpx

import fake_upstream as fu
from conftest import expected_cost, free_port, gateway_config, nonce, start_fake, start_gateway


def _gateway(tmp_path):
    fake = start_fake(tmp_path)
    dead = free_port()  # nothing listens there: connecting fails at once
    extra = f"""  - {{ name: fake-dead, provider: openai-compatible, base_url: "http://127.0.0.1:{dead}/v1", api_key: "k", price: {{ input_per_mtok: "1", output_per_mtok: "1" }} }}
routes:
  safe: {{ strategy: fallback, models: [fake-dead, fake-gpt, fake-mini] }}
  cap: {{ strategy: cheapest-capable, models: [fake-gpt, fake-mini] }}
  lb: {{ strategy: loadbalance, models: [fake-gpt, fake-mini] }}
  thrifty: {{ strategy: learned, strong: fake-gpt, weak: fake-mini, strong_share: 0 }}
  lavish: {{ strategy: learned, strong: fake-gpt, weak: fake-mini, strong_share: 1 }}
  auto: {{ strategy: learned, strong: fake-gpt, weak: fake-mini, strong_share: 0.5 }}
"""
    config = gateway_config(fake.port, extra)
    # fake-gpt declares tools and JSON mode; fake-mini does not (cheapest-capable must skip it for such requests).
    config = config.replace("upstream_model: fake-gpt-upstream,", "upstream_model: fake-gpt-upstream, capabilities: [tools, vision, json], weight: 3,")
    config = config.replace('- { name: fake-mini, provider: openai-compatible,', '- { name: fake-mini, provider: openai-compatible, capabilities: [], weight: 1,')
    return fake, start_gateway(tmp_path / "gw", config)


def chat(gw, key, text, model, **kw):
    return httpx.post(gw.v1 + "/chat/completions", timeout=20, headers={"Authorization": f"Bearer {key}"},
                      json={"model": model, "messages": [{"role": "user", "content": text}], **kw})


def test_fallback_after_connect_error_then_after_503(tmp_path):
    fake, gw = _gateway(tmp_path)
    try:
        ident = gw.admin.new_identity()
        r = chat(gw, ident.key, "first REPLY_WORDS 2", "safe")
        assert r.status_code == 200, r.text
        assert r.headers["x-tollgate-model"] == "fake-gpt"
        row = gw.ledger_row(r.headers["x-tollgate-request-id"])
        assert (row["requested_model"], row["model"], row["route"]) == ("safe", "fake-gpt", "safe")
        assert row["route_reason"] == "fallback after connect error"

        text = "second REPLY_WORDS 3 FAIL_MODEL fake-gpt-upstream 503"
        r = chat(gw, ident.key, text, "safe")
        assert r.status_code == 200, r.text
        assert r.headers["x-tollgate-model"] == "fake-mini"
        row = gw.ledger_row(r.headers["x-tollgate-request-id"])
        assert row["route_reason"] == "fallback after 503" and row["model"] == "fake-mini"
        # fake-gpt was tried twice (one retry after a jittered back-off) before the route moved on.
        attempts = [json.loads(q["body"])["model"] for q in fake.requests() if "second REPLY_WORDS" in q["body"]]
        assert attempts == ["fake-gpt-upstream", "fake-gpt-upstream", "fake-mini"], attempts
        msgs = [{"role": "user", "content": text}]
        assert row["cost_usd"] == expected_cost("fake-mini", fu.prompt_tokens_for(msgs), 0, 3)

        # When every model fails, the client gets the last failure as a 502.
        r = chat(gw, ident.key, "third FAIL_MODEL fake-gpt-upstream 500 STATUS 500", "safe")
        assert r.status_code == 502, r.text
        # A key allowed the route may use it; /v1/models lists the routes.
        names = {m["id"] for m in httpx.get(gw.v1 + "/models", headers={"Authorization": f"Bearer {ident.key}"}).json()["data"]}
        assert {"safe", "cap", "lb"} <= names
    finally:
        gw.stop()
        fake.stop()


def test_cheapest_capable_picks_by_what_the_request_needs(tmp_path):
    fake, gw = _gateway(tmp_path)
    try:
        ident = gw.admin.new_identity()
        r = chat(gw, ident.key, "plain REPLY_WORDS 2", "cap")
        assert r.headers["x-tollgate-model"] == "fake-mini"
        assert gw.ledger_row(r.headers["x-tollgate-request-id"])["route_reason"] == "cheapest-capable"
        tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
        r = chat(gw, ident.key, "with tools REPLY_WORDS 2", "cap", tools=tools)
        assert r.status_code == 200, r.text
        assert r.headers["x-tollgate-model"] == "fake-gpt"
        row = gw.ledger_row(r.headers["x-tollgate-request-id"])
        assert row["route_reason"] == "capability: tools" and row["agentic"] is True
    finally:
        gw.stop()
        fake.stop()


def test_cheapest_capable_sends_json_mode_requests_to_a_model_with_json(tmp_path):
    fake, gw = _gateway(tmp_path)
    try:
        ident = gw.admin.new_identity()
        client = gw.client(ident.key)
        n = nonce()
        formats = [
            {"type": "json_object"},
            {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": {
                "type": "object", "properties": {"type": {"type": "string"}}, "required": ["type"],
                "additionalProperties": False}}},
        ]
        for fmt in formats:
            raw = client.chat.completions.with_raw_response.create(
                model="cap", response_format=fmt, messages=[{"role": "user", "content": f"{n} Reply in JSON. REPLY_WORDS 2"}])
            assert raw.headers["x-tollgate-model"] == "fake-gpt"
            row = gw.ledger_row(raw.headers["x-tollgate-request-id"])
            assert (row["route"], row["route_reason"], row["model"]) == ("cap", "capability: json", "fake-gpt")
        # The request went on unchanged but for the model name: response_format included.
        sent = [json.loads(q["body"]) for q in fake.find(n)]
        assert [b["response_format"] for b in sent] == formats and {b["model"] for b in sent} == {"fake-gpt-upstream"}

        # Plain text needs no JSON mode: the cheapest model serves it.
        raw = client.chat.completions.with_raw_response.create(
            model="cap", response_format={"type": "text"}, messages=[{"role": "user", "content": "text REPLY_WORDS 2"}])
        assert raw.headers["x-tollgate-model"] == "fake-mini"
        assert gw.ledger_row(raw.headers["x-tollgate-request-id"])["route_reason"] == "cheapest-capable"
        client.close()
    finally:
        gw.stop()
        fake.stop()


def test_weighted_loadbalance_spreads_by_weight(tmp_path):
    fake, gw = _gateway(tmp_path)
    try:
        ident = gw.admin.new_identity()
        served = collections.Counter(chat(gw, ident.key, "lb REPLY_WORDS 1", "lb").headers["x-tollgate-model"] for _ in range(80))
        # Weights 3 : 1 — expect about 60 : 20; allow wide bounds for randomness.
        assert 45 <= served["fake-gpt"] <= 75 and served["fake-mini"] >= 5, served
    finally:
        gw.stop()
        fake.stop()


def test_circuit_opens_after_consecutive_failures_and_routes_skip_it(tmp_path):
    fake, gw = _gateway(tmp_path)
    try:
        ident = gw.admin.new_identity()
        # fake-dead refuses connections: five requests through `safe` open its breaker…
        for _ in range(5):
            r = chat(gw, ident.key, "probe REPLY_WORDS 1", "safe")
            assert r.status_code == 200 and r.headers["x-tollgate-model"] == "fake-gpt"
        deployments = {d["name"]: d for d in gw.admin.http.get("/admin/deployments").json()["data"]}
        dead = deployments["fake-dead"]
        assert dead["circuit"] == "open" and dead["consecutive_failures"] >= 5 and dead["failures"] >= 5
        assert dead["last_error"] == "could not connect" and dead["in_flight"] == 0
        assert deployments["fake-gpt"]["circuit"] == "closed" and deployments["fake-gpt"]["requests"] >= 5
        assert deployments["safe"]["kind"] == "route"
        # …after which the route goes straight to the next model and says why.
        r = chat(gw, ident.key, "skip REPLY_WORDS 1", "safe")
        row = gw.ledger_row(r.headers["x-tollgate-request-id"])
        assert row["model"] == "fake-gpt" and row["route_reason"] == "fallback: first choice; fake-dead circuit open"
        assert {d["name"]: d for d in gw.admin.http.get("/admin/deployments").json()["data"]}["fake-dead"]["failures"] == dead["failures"]
    finally:
        gw.stop()
        fake.stop()


def test_learned_routes_choose_by_the_router_and_record_the_savings(tmp_path):
    fake, gw = _gateway(tmp_path)
    try:
        ident = gw.admin.new_identity()
        text = "Summarise this sentence. REPLY_WORDS 4"
        r = chat(gw, ident.key, text, "thrifty")
        assert r.status_code == 200 and r.headers["x-tollgate-model"] == "fake-mini"
        row = gw.ledger_row(r.headers["x-tollgate-request-id"])
        assert row["route"] == "thrifty" and row["route_reason"].startswith("learned p=")
        msgs = [{"role": "user", "content": text}]
        assert row["cost_usd"] == expected_cost("fake-mini", fu.prompt_tokens_for(msgs), 0, 4)
        assert row["baseline_cost_usd"] == expected_cost("fake-gpt", fu.prompt_tokens_for(msgs), 0, 4)

        # The spend report shows what routing saved: the baseline (strong model) less what was paid.
        spend = {r["user"]: r for r in gw.admin.spend("user").json()["data"]}[ident.user]
        assert Decimal(spend["savings_usd"]) == Decimal(row["baseline_cost_usd"]) - Decimal(row["cost_usd"]) > 0
        assert Decimal(spend["baseline_cost_usd"]) - Decimal(spend["cost_usd"]) == Decimal(spend["savings_usd"])

        r = chat(gw, ident.key, text, "lavish")
        assert r.headers["x-tollgate-model"] == "fake-gpt"
        row = gw.ledger_row(r.headers["x-tollgate-request-id"])
        assert row["baseline_cost_usd"] is None and row["route_reason"].startswith("learned p=")

        # The default router decides `auto`; its score is in the reason and the same prompt gets the same model.
        first = chat(gw, ident.key, "Prove that there are infinitely many primes. REPLY_WORDS 2", "auto")
        again = chat(gw, ident.key, "Prove that there are infinitely many primes. REPLY_WORDS 2", "auto")
        assert first.headers["x-tollgate-model"] == again.headers["x-tollgate-model"] in ("fake-gpt", "fake-mini")
        reason = gw.ledger_row(first.headers["x-tollgate-request-id"])["route_reason"]
        assert 0.0 <= float(reason.removeprefix("learned p=")) <= 1.0
    finally:
        gw.stop()
        fake.stop()


def test_a_time_out_falls_over_but_a_stream_that_started_is_never_retried(tmp_path):
    fake, gw = _gateway(tmp_path)
    try:
        ident = gw.admin.new_identity()
        # `safe`: fake-dead refuses (tried twice), fake-gpt never answers: after first_byte_ms (3 s) the route
        # moves on to fake-mini at once, without waiting on fake-gpt a second time.
        started = time.monotonic()
        r = chat(gw, ident.key, "slow REPLY_WORDS 2 FAIL_MODEL fake-gpt-upstream STALL", "safe")
        took = time.monotonic() - started
        assert r.status_code == 200, r.text
        assert r.headers["x-tollgate-model"] == "fake-mini"
        assert gw.ledger_row(r.headers["x-tollgate-request-id"])["route_reason"] == "fallback after time-out"
        assert 2.5 < took < 6, took
        stalled = [q for q in fake.requests() if "slow REPLY_WORDS" in q["body"] and json.loads(q["body"])["model"] == "fake-gpt-upstream"]
        assert len(stalled) == 1

        # A stream cut after its first chunks reached the client is not sent again anywhere.
        n = f"midstream-{time.monotonic_ns()}"
        with httpx.Client(timeout=15) as client:
            with client.stream("POST", gw.v1 + "/chat/completions", headers={"Authorization": f"Bearer {ident.key}"},
                               json={"model": "safe", "stream": True,
                                     "messages": [{"role": "user", "content": f"{n} REPLY_WORDS 10 CLOSE_MIDSTREAM 3"}]}) as s:
                request_id = s.headers["x-tollgate-request-id"]
                body = b"".join(s.iter_raw())
        assert b"word" in body.lower() or b"content" in body
        row = gw.ledger_row(request_id)
        assert row["model"] == "fake-gpt" and row["usage_estimated"] is True
        sent = [json.loads(q["body"])["model"] for q in fake.requests() if n in q["body"]]
        assert sent == ["fake-gpt-upstream"], sent
    finally:
        gw.stop()
        fake.stop()
