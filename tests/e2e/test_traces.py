"""OpenTelemetry traces: with a `tracing` section the gateway exports one span per /v1 request over OTLP/HTTP to
the collector it names (here a receiver in the test process), continues the client's `traceparent` and passes
one on to the upstream; the span's GenAI attributes and cost are the ledger row's. Without the section nothing
is exported and no trace header reaches the upstream."""
from __future__ import annotations

import secrets
import signal
import time

import httpx
import pytest

from conftest import gateway_config, nonce, start_fake, start_gateway
from otlp_receiver import OTLPReceiver

COLLECTOR_TOKEN = "collector-token-e2e"


def tracing_section(receiver: OTLPReceiver, **extra) -> str:
    fields = {"endpoint": f'"{receiver.url}"', "service_name": "tollgate-e2e", "flush_ms": "50",
              "headers": f'{{ x-collector-token: "{COLLECTOR_TOKEN}" }}', **extra}
    return "tracing: { " + ", ".join(f"{k}: {v}" for k, v in fields.items()) + " }\n"


def new_traceparent(sampled: bool = True) -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent_id}-{'01' if sampled else '00'}", trace_id, parent_id


def upstream_traceparent(fake, marker: str) -> str | None:
    seen = fake.find(marker)
    assert len(seen) == 1, f"the upstream saw {len(seen)} requests carrying {marker}"
    return seen[0]["headers"].get("traceparent")


@pytest.fixture(scope="module")
def receiver():
    r = OTLPReceiver()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def traced(tmp_path_factory, receiver):
    tmp = tmp_path_factory.mktemp("traces")
    fake = start_fake(tmp, "fake-traces")
    gw = start_gateway(tmp / "gw", gateway_config(fake.port) + tracing_section(receiver))
    yield gw, fake
    gw.stop()
    fake.stop()


def chat(gw, key: str, content: str, headers: dict, model: str = "fake-gpt", stream: bool = False) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return httpx.post(gw.v1 + "/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {key}", **headers})


def assert_span_is_the_ledger_row(span: dict, row: dict):
    a = span["attributes"]
    assert a["tollgate.request_id"] == row["id"]
    assert a["gen_ai.request.model"] == row["requested_model"]
    assert a["gen_ai.response.model"] == row["model"]
    assert a["gen_ai.provider.name"] == row["provider"]
    # GenAI conventions: input_tokens counts every input token, cache reads and writes included
    assert a["gen_ai.usage.input_tokens"] == row["input_tokens"] + row["cached_input_tokens"] + row["cache_write_tokens"]
    assert a["gen_ai.usage.output_tokens"] == row["output_tokens"]
    assert a["tollgate.cost_usd"] == row["cost_usd"], "the span's cost is not the ledger's, digit for digit"
    assert a["http.response.status_code"] == row["status"]
    assert a["tollgate.user"] == row["user"]
    assert a["tollgate.team"] == row["team"]


def test_a_request_with_traceparent_is_one_child_span_carrying_the_ledger_row(traced, receiver):
    gw, fake = traced
    ident = gw.admin.new_identity()
    gw.admin.http.post("/admin/budgets", json={"scope": "user", "name": ident.user, "limit_usd": "100",
                                               "period": "month"}).raise_for_status()
    traceparent, trace_id, parent_id = new_traceparent()
    n = nonce()
    r = chat(gw, ident.key, f"traced {n} CACHED 4", {"traceparent": traceparent, "tracestate": "vendor=abc"})
    assert r.status_code == 200, r.text
    request_id = r.headers["x-tollgate-request-id"]
    row = gw.ledger_row(request_id)

    span = receiver.wait_span(lambda s: s["trace_id"] == trace_id)
    assert span["parent_span_id"] == parent_id, "the span is not the child of the client's span"
    assert span["kind"] == "SERVER"
    assert span["name"] == "chat fake-gpt"
    assert span["status"] == "UNSET"
    a = span["attributes"]
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "fake-gpt"
    assert a["gen_ai.usage.cache_read.input_tokens"] == 4 == row["cached_input_tokens"]
    assert a["tollgate.budget.decision"] == "admitted"
    assert a["tollgate.stream"] is False
    assert a["url.path"] == "/v1/chat/completions"
    assert r.headers["x-tollgate-cost-usd"] == a["tollgate.cost_usd"] != "0"
    assert_span_is_the_ledger_row(span, row)
    assert span["resource"]["service.name"] == "tollgate-e2e"
    assert span["end_ns"] >= span["start_ns"] > 0

    # the upstream request is the span's child in the same trace, with the client's trace state
    sent = fake.find(n)[0]["headers"]
    assert sent["traceparent"] == f"00-{trace_id}-{span['span_id']}-01"
    assert sent["tracestate"] == "vendor=abc"

    export = next(e for e in receiver.exports if e["spans"])
    assert export["path"] == "/v1/traces"
    assert export["headers"]["x-collector-token"] == COLLECTOR_TOKEN
    assert export["headers"]["content-type"] == "application/x-protobuf"


def test_a_streamed_request_is_one_span_with_the_streams_usage(traced, receiver):
    gw, fake = traced
    ident = gw.admin.new_identity()
    traceparent, trace_id, parent_id = new_traceparent()
    n = nonce()
    r = chat(gw, ident.key, f"streamed {n} REPLY_WORDS 7", {"traceparent": traceparent}, model="fake-mini", stream=True)
    assert r.status_code == 200, r.text
    assert r.text.rstrip().endswith("data: [DONE]")
    row = gw.ledger_row(r.headers["x-tollgate-request-id"])
    assert row["output_tokens"] == 7

    span = receiver.wait_span(lambda s: s["trace_id"] == trace_id)
    assert span["parent_span_id"] == parent_id
    assert span["name"] == "chat fake-mini"
    assert span["attributes"]["tollgate.stream"] is True
    assert span["attributes"]["tollgate.budget.decision"] == "unbudgeted"
    assert_span_is_the_ledger_row(span, row)
    assert upstream_traceparent(fake, n) == f"00-{trace_id}-{span['span_id']}-01"


def test_an_anthropic_request_and_an_embedding_name_their_operations(traced, receiver):
    gw, fake = traced
    ident = gw.admin.new_identity()
    traceparent, trace_id, _ = new_traceparent()
    n = nonce()
    r = httpx.post(gw.url + "/v1/messages", timeout=30, headers={"x-api-key": ident.key, "anthropic-version": "2023-06-01",
                                                                 "traceparent": traceparent},
                   json={"model": "claude-fake", "max_tokens": 50, "messages": [{"role": "user", "content": f"hi {n} CACHE_WRITE 3"}]})
    assert r.status_code == 200, r.text
    row = gw.ledger_row(r.headers["x-tollgate-request-id"])
    span = receiver.wait_span(lambda s: s["trace_id"] == trace_id)
    assert span["attributes"]["gen_ai.operation.name"] == "chat"
    assert span["attributes"]["gen_ai.provider.name"] == "anthropic"
    assert span["attributes"]["gen_ai.usage.cache_creation.input_tokens"] == 3
    assert_span_is_the_ledger_row(span, row)
    assert upstream_traceparent(fake, n).split("-")[1] == trace_id

    traceparent, trace_id, _ = new_traceparent()
    r = httpx.post(gw.v1 + "/embeddings", timeout=30, headers={"Authorization": f"Bearer {ident.key}", "traceparent": traceparent},
                   json={"model": "fake-embed", "input": ["one", "two"]})
    assert r.status_code == 200, r.text
    span = receiver.wait_span(lambda s: s["trace_id"] == trace_id)
    assert span["name"] == "embeddings fake-embed"
    assert_span_is_the_ledger_row(span, gw.ledger_row(r.headers["x-tollgate-request-id"]))


def test_without_traceparent_the_span_starts_the_trace_the_upstream_continues(traced, receiver):
    gw, fake = traced
    ident = gw.admin.new_identity()
    n = nonce()
    r = chat(gw, ident.key, f"root {n}", {})
    assert r.status_code == 200, r.text
    request_id = r.headers["x-tollgate-request-id"]
    span = receiver.wait_span(lambda s: s["attributes"].get("tollgate.request_id") == request_id)
    assert span["parent_span_id"] == ""
    assert upstream_traceparent(fake, n) == f"00-{span['trace_id']}-{span['span_id']}-01"


def test_an_invalid_traceparent_starts_a_new_trace_and_never_logs_the_key(traced, receiver):
    gw, fake = traced
    ident = gw.admin.new_identity()
    n = nonce()
    r = chat(gw, ident.key, f"bad parent {n}", {"traceparent": "00-not-a-trace-context-01"})
    assert r.status_code == 200, r.text
    request_id = r.headers["x-tollgate-request-id"]
    span = receiver.wait_span(lambda s: s["attributes"].get("tollgate.request_id") == request_id)
    assert span["parent_span_id"] == ""
    assert upstream_traceparent(fake, n).split("-")[1] == span["trace_id"]
    assert ident.key not in gw.log_tail(200_000)


def test_an_unsampled_parent_exports_nothing_but_still_propagates(traced, receiver):
    gw, fake = traced
    ident = gw.admin.new_identity()
    traceparent, trace_id, parent_id = new_traceparent(sampled=False)
    n = nonce()
    r = chat(gw, ident.key, f"unsampled {n}", {"traceparent": traceparent})
    assert r.status_code == 200, r.text
    sent = upstream_traceparent(fake, n)
    version, sent_trace, sent_parent, flags = sent.split("-")
    assert (sent_trace, flags) == (trace_id, "00") and sent_parent != parent_id
    # a later request's span being exported shows the unsampled one had its chance
    marker = chat(gw, ident.key, f"after {nonce()}", {})
    receiver.wait_span(lambda s: s["attributes"].get("tollgate.request_id") == marker.headers["x-tollgate-request-id"])
    assert receiver.find(trace_id) == []


def test_an_upstream_fault_is_an_error_span_and_a_budget_refusal_is_not(traced, receiver):
    gw, fake = traced
    ident = gw.admin.new_identity()
    traceparent, trace_id, _ = new_traceparent()
    r = chat(gw, ident.key, f"fault {nonce()} STATUS 500", {"traceparent": traceparent}, model="fake-mini")
    assert r.status_code == 502, r.text
    row = gw.ledger_row(r.headers["x-tollgate-request-id"])
    span = receiver.wait_span(lambda s: s["trace_id"] == trace_id)
    assert span["status"] == "ERROR"
    assert span["attributes"]["error.type"] == "502"
    assert span["attributes"]["http.response.status_code"] == 502 == row["status"]
    assert span["status_message"] == row["error"]

    traceparent, trace_id, _ = new_traceparent()
    r = chat(gw, ident.key, f"rejected {nonce()} STATUS 400", {"traceparent": traceparent}, model="fake-mini")
    assert r.status_code == 400, r.text
    span = receiver.wait_span(lambda s: s["trace_id"] == trace_id)
    assert span["status"] == "ERROR", "a 4xx the upstream answered is an error of the call"

    gw.admin.http.post("/admin/budgets", json={"scope": "user", "name": ident.user, "limit_usd": "0.000001",
                                               "period": "month"}).raise_for_status()
    traceparent, trace_id, _ = new_traceparent()
    n = nonce()
    r = chat(gw, ident.key, f"over budget {n}", {"traceparent": traceparent}, model="fake-mini")
    assert r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded", r.text
    span = receiver.wait_span(lambda s: s["trace_id"] == trace_id)
    assert span["status"] == "UNSET"
    assert span["attributes"]["tollgate.budget.decision"] == "refused"
    assert span["attributes"]["tollgate.cost_usd"] == "0"
    assert fake.find(n) == []


def test_a_request_refused_before_authentication_has_no_span(traced, receiver):
    gw, _ = traced
    traceparent, trace_id, _ = new_traceparent()
    r = chat(gw, "tg-not-a-key", "who am i", {"traceparent": traceparent})
    assert r.status_code == 401
    ident = gw.admin.new_identity()
    marker = chat(gw, ident.key, f"after {nonce()}", {})
    receiver.wait_span(lambda s: s["attributes"].get("tollgate.request_id") == marker.headers["x-tollgate-request-id"])
    assert receiver.find(trace_id) == []


def test_the_last_spans_are_exported_at_shutdown(tmp_path, receiver):
    fake = start_fake(tmp_path)
    # Batches every minute: the span can only arrive because the shutdown flushed it.
    gw = start_gateway(tmp_path / "gw", gateway_config(fake.port) + tracing_section(receiver, flush_ms="60000"))
    try:
        ident = gw.admin.new_identity()
        traceparent, trace_id, _ = new_traceparent()
        r = chat(gw, ident.key, f"last {nonce()}", {"traceparent": traceparent})
        assert r.status_code == 200, r.text
        time.sleep(0.3)
        assert receiver.find(trace_id) == []
        gw.proc.send_signal(signal.SIGTERM)
        assert gw.proc.wait(20) == 0
        span = receiver.wait_span(lambda s: s["trace_id"] == trace_id, timeout=2)
        assert span["attributes"]["tollgate.request_id"] == r.headers["x-tollgate-request-id"]
    finally:
        gw.stop()
        fake.stop()


def test_tracing_off_exports_nothing_and_sends_no_trace_header_upstream(tmp_path, receiver):
    fake = start_fake(tmp_path)
    # The OpenTelemetry variables point at the receiver: only a `tracing` section may turn traces on.
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "must-not-export"}
    gw = start_gateway(tmp_path / "gw", gateway_config(fake.port), extra_env=env)
    try:
        ident = gw.admin.new_identity()
        traceparent, trace_id, _ = new_traceparent()
        n = nonce()
        r = chat(gw, ident.key, f"untraced {n}", {"traceparent": traceparent})
        assert r.status_code == 200, r.text
        gw.ledger_row(r.headers["x-tollgate-request-id"])
        assert upstream_traceparent(fake, n) is None
        time.sleep(1.0)
        assert receiver.find(trace_id) == []
        assert not [s for s in receiver.spans if s["resource"].get("service.name") == "must-not-export"]
    finally:
        gw.stop()
        fake.stop()


def test_an_unknown_tracing_key_stops_the_start_naming_the_line(tmp_path, receiver):
    fake = start_fake(tmp_path)
    try:
        with pytest.raises(RuntimeError) as refused:
            start_gateway(tmp_path / "gw", gateway_config(fake.port) + tracing_section(receiver, sample_rate="0.5"))
        assert "tracing.sample_rate: unknown key" in str(refused.value)
    finally:
        fake.stop()
