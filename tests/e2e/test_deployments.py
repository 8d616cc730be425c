"""Several deployments of one model name (two upstream servers, two accounts), each with its own circuit breaker
and in-flight count, and per-deployment time-outs, through the real server and two fake upstreams."""
from __future__ import annotations

import collections
import json
import threading
import time

import httpx
import pytest

from conftest import UPSTREAM_KEY, nonce, start_fake, start_gateway

PRICE = '{ input_per_mtok: "1", cached_input_per_mtok: "0.5", output_per_mtok: "2" }'


def _config(a: int, b: int) -> str:
    # `m` is served by two servers: m#1 on fake A (weight 3, its own key), m#2 on fake B (weight 1, provider
    # openai); `brisk` answers within 500 ms or not at all, while the server-wide first-byte time-out is 30 s.
    return f"""\
server: {{ timeouts: {{ connect_ms: 2000, first_byte_ms: 30000, idle_ms: 30000 }} }}
ledger: {{ flush_ms: 50 }}
models:
  - {{ name: m, provider: openai-compatible, base_url: "http://127.0.0.1:{a}/v1", api_key: "key-a", upstream_model: m-on-a, price: {PRICE}, weight: 3 }}
  - {{ name: m, provider: openai, base_url: "http://127.0.0.1:{b}/v1", api_key: "key-b", upstream_model: m-on-b, price: {PRICE}, weight: 1 }}
  - {{ name: brisk, provider: openai-compatible, base_url: "http://127.0.0.1:{a}/v1", api_key: "{UPSTREAM_KEY}", upstream_model: brisk-up, price: {PRICE},
      timeouts: {{ first_byte_ms: 500, idle_ms: 700 }} }}
routes:
  lbm: {{ strategy: loadbalance, models: [m], balance: weighted }}
  least: {{ strategy: loadbalance, models: [m], balance: least_inflight }}
  quick: {{ strategy: fallback, models: [brisk, m] }}
"""


class Setup:
    def __init__(self, tmp_path):
        self.a = start_fake(tmp_path, "fake-a")
        self.b = start_fake(tmp_path, "fake-b")
        self.gw = start_gateway(tmp_path / "gw", _config(self.a.port, self.b.port))
        self.key = self.gw.admin.new_identity().key

    def chat(self, model: str, text: str, **kw) -> httpx.Response:
        return httpx.post(self.gw.v1 + "/chat/completions", timeout=30, headers={"Authorization": f"Bearer {self.key}"},
                          json={"model": model, "messages": [{"role": "user", "content": text}], **kw})

    def stream(self, client: httpx.Client, model: str, text: str):
        return client.stream("POST", self.gw.v1 + "/chat/completions", headers={"Authorization": f"Bearer {self.key}"},
                             json={"model": model, "stream": True, "messages": [{"role": "user", "content": text}]})

    def deployments(self) -> dict:
        return {d.get("id", d["name"]): d for d in self.gw.admin.http.get("/admin/deployments").json()["data"]}

    def stop(self):
        self.gw.stop()
        self.a.stop()
        self.b.stop()


@pytest.fixture
def servers(tmp_path):
    """The gateway in front of fake A and fake B, and a key allowed every model."""
    setup = Setup(tmp_path)
    yield setup
    setup.stop()


def test_requests_for_a_model_are_spread_over_its_deployments_by_weight(servers):
    n = nonce()
    ids = [servers.chat("m", f"{n} REPLY_WORDS 1").headers["x-tollgate-request-id"] for _ in range(80)]
    on_a, on_b = servers.a.find(n), servers.b.find(n)
    # Weights 3 : 1 — about 60 : 20; wide bounds for randomness. Each request reached one server once.
    assert len(on_a) + len(on_b) == 80 and 45 <= len(on_a) <= 75 and len(on_b) >= 5, (len(on_a), len(on_b))
    # Each deployment sends its own upstream model name and its own key.
    assert {json.loads(q["body"])["model"] for q in on_a} == {"m-on-a"}
    assert {q["headers"]["authorization"] for q in on_a} == {"Bearer key-a"}
    assert {json.loads(q["body"])["model"] for q in on_b} == {"m-on-b"}
    assert {q["headers"]["authorization"] for q in on_b} == {"Bearer key-b"}

    # The ledger names the model; the provider is the serving deployment's.
    rows = [servers.gw.ledger_row(i) for i in ids]
    assert {r["model"] for r in rows} == {"m"} and all(r["status"] == 200 and r["route"] is None for r in rows)
    providers = collections.Counter(r["provider"] for r in rows)
    assert providers == {"openai-compatible": len(on_a), "openai": len(on_b)}, providers

    # /admin/deployments lists each deployment apart, with its own counters; /v1/models lists the name once.
    d = servers.deployments()
    assert (d["m#1"]["name"], d["m#1"]["host"], d["m#1"]["weight"]) == ("m", f"127.0.0.1:{servers.a.port}", 3)
    assert (d["m#2"]["name"], d["m#2"]["host"], d["m#2"]["provider"]) == ("m", f"127.0.0.1:{servers.b.port}", "openai")
    assert (d["m#1"]["requests"], d["m#2"]["requests"]) == (len(on_a), len(on_b))
    assert d["m#1"]["in_flight"] == d["m#2"]["in_flight"] == 0 and d["brisk"]["id"] == "brisk"
    models = httpx.get(servers.gw.v1 + "/models", headers={"Authorization": f"Bearer {servers.key}"}).json()["data"]
    assert [m["id"] for m in models].count("m") == 1


def test_a_failing_deployment_falls_over_to_its_sibling_and_opens_only_its_own_breaker(servers):
    n = nonce()
    text = f"{n} REPLY_WORDS 2 FAIL_MODEL m-on-a 503"
    rows = []
    for _ in range(20):
        r = servers.chat("m", text)
        assert r.status_code == 200, r.text
        assert r.headers["x-tollgate-model"] == "m"
        rows.append(servers.gw.ledger_row(r.headers["x-tollgate-request-id"]))
    # Every request was served by m#2 (fake B); those that tried m#1 first moved on after its 503 without
    # trying it twice (a request for a model by name leaves same-server retries to the client's SDK).
    assert len(servers.b.find(n)) == 20 and all(r["provider"] == "openai" for r in rows)
    # m#1 (drawn first three times in four) was tried until its breaker opened after five failures, then
    # no more; m#2's breaker stayed closed.
    assert len(servers.a.find(n)) == 5
    assert sum(r["route_reason"] == "fallback after 503" for r in rows) == 5
    d = servers.deployments()
    assert d["m#1"]["circuit"] == "open" and d["m#1"]["failures"] == 5 and d["m#1"]["last_error"] == "answered 503"
    assert d["m#2"]["circuit"] == "closed" and d["m#2"]["failures"] == 0


def test_loadbalance_routes_balance_over_every_deployment_of_the_models_they_name(servers):
    n = nonce()
    ids = [servers.chat("lbm", f"{n} REPLY_WORDS 1").headers["x-tollgate-request-id"] for _ in range(40)]
    on_a, on_b = len(servers.a.find(n)), len(servers.b.find(n))
    assert on_a >= 20 and on_b >= 2, (on_a, on_b)
    row = servers.gw.ledger_row(ids[-1])
    assert (row["route"], row["model"]) == ("lbm", "m") and row["route_reason"] in ("loadbalance: weight 3 of 4",
                                                                                    "loadbalance: weight 1 of 4")

    # least_inflight counts per deployment: while a slow stream holds m#1, the next request goes to m#2.
    slow = nonce()
    started = threading.Event()

    def hold():
        with httpx.Client(timeout=30) as client:
            with servers.stream(client, "least", f"{slow} REPLY_WORDS 4 SLOW_CHUNKS 500") as r:
                for _ in r.iter_raw():
                    started.set()

    holder = threading.Thread(target=hold)
    holder.start()
    assert started.wait(10)
    assert servers.deployments()["m#1"]["in_flight"] == 1
    quick = nonce()
    r = servers.chat("least", f"{quick} REPLY_WORDS 1")
    holder.join(30)
    assert len(servers.a.find(slow)) == 1 and len(servers.b.find(quick)) == 1 and not servers.a.find(quick)
    assert servers.gw.ledger_row(r.headers["x-tollgate-request-id"])["route_reason"] == "loadbalance: least in flight"


def test_a_deployments_own_time_outs_apply_instead_of_the_servers(servers):
    # brisk's first-byte time-out is 500 ms; the server's is 30 s.
    started = time.monotonic()
    r = servers.chat("brisk", "wait REPLY_WORDS 2 FAIL_MODEL brisk-up STALL")
    took = time.monotonic() - started
    assert r.status_code == 504, r.text
    assert r.json()["error"]["message"] == "The upstream for model 'brisk' did not answer within 500 ms."
    assert 0.4 < took < 3, took
    assert servers.deployments()["brisk"]["last_error"] == "no answer within the first-byte time-out"

    # In a route, the stalled deployment is left after its own time-out for the next model.
    started = time.monotonic()
    r = servers.chat("quick", "route REPLY_WORDS 2 FAIL_MODEL brisk-up STALL")
    took = time.monotonic() - started
    assert r.status_code == 200 and r.headers["x-tollgate-model"] == "m", r.text
    assert servers.gw.ledger_row(r.headers["x-tollgate-request-id"])["route_reason"] == "fallback after time-out"
    assert 0.4 < took < 3, took

    # brisk's idle time-out (700 ms) cuts a stream whose chunks come 1.5 s apart; the server's 30 s would not.
    with httpx.Client(timeout=30) as client:
        started = time.monotonic()
        with servers.stream(client, "brisk", "idle REPLY_WORDS 4 SLOW_CHUNKS 1500") as st:
            request_id = st.headers["x-tollgate-request-id"]
            body = b"".join(st.iter_raw())
        took = time.monotonic() - started
    assert b"[DONE]" not in body and took < 3, (took, body)
    row = servers.gw.ledger_row(request_id)
    assert row["error"] == "upstream idle for longer than the idle time-out" and row["usage_estimated"] is True

    # m has no time-outs of its own: the server's 30 s apply, and a 1 s gap between chunks is fine.
    r = servers.chat("m", "patient REPLY_WORDS 1 SLOW_CHUNKS 1000", stream=True)
    assert r.status_code == 200 and b"[DONE]" in r.content
