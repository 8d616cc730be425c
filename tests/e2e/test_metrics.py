"""Issue 15: Prometheus `/metrics` and read-only viewer keys, through the real server. The counters must agree with the
ledger's rows exactly (requests per model and status, tokens by type, cost to the nano-dollar), and a viewer key must
read the dashboard, /metrics and the admin reports, and nothing else."""
from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from decimal import Decimal

import httpx
import pytest

from cli import tollgate
from conftest import ADMIN_KEY, gateway_config, nonce, start_gateway

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> list[tuple[str, dict, str]]:
    """(name, labels, value) for every sample of a text exposition; comments checked for shape."""
    samples = []
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* ", line), line
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        samples.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), m.group(3)))
    return samples


def scrape(gw, key: str | None = ADMIN_KEY) -> list[tuple[str, dict, str]]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    r = httpx.get(gw.url + "/metrics", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


def chat(gw, key: str, model: str, text: str, stream: bool = False) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
    return httpx.post(gw.v1 + "/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=15)


def messages(gw, key: str, text: str) -> httpx.Response:
    body = {"model": "claude-fake", "max_tokens": 50, "messages": [{"role": "user", "content": text}]}
    return httpx.post(gw.v1 + "/messages", json=body, timeout=15,
                      headers={"x-api-key": key, "anthropic-version": "2023-06-01"})


def wait_for_rows(gw, n: int) -> list[dict]:
    deadline = time.monotonic() + 10
    while True:
        rows = gw.admin.all_requests()
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.fixture(scope="module")
def metrics_gw(e2e_tmp, fake):
    gw = start_gateway(e2e_tmp / "gw-metrics", gateway_config(fake.port))
    yield gw
    gw.stop()


def viewer_key(gw, name: str | None = None) -> dict:
    r = gw.admin.http.post("/admin/keys", json={"role": "viewer", "name": name or f"viewer-{nonce()}"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["role"] == "viewer" and created["key"].startswith("tg-"), created
    return created


def test_counters_agree_with_the_ledger_row_for_row(metrics_gw):
    gw = metrics_gw
    ident = gw.admin.new_identity()
    sent = 0
    for i in range(6):
        assert chat(gw, ident.key, "fake-mini", f"hello {i} REPLY_WORDS {3 + i} CACHED 4").status_code == 200
        sent += 1
    for i in range(3):
        r = chat(gw, ident.key, "fake-gpt", f"stream {i} REASONING 2", stream=True)
        assert r.status_code == 200 and "[DONE]" in r.text
        sent += 1
    for i in range(2):
        assert messages(gw, ident.key, f"anthropic {i} CACHE_WRITE 40 CACHE_READ 8").status_code == 200
        sent += 1
    assert chat(gw, ident.key, "fake-mini", "upstream fails STATUS 500").status_code >= 500
    sent += 1
    assert chat(gw, ident.key, "no-such-model", "hi").status_code == 404
    sent += 1
    # Refused before a key is recognised: counted apart, never in the ledger or in tollgate_requests_total.
    for _ in range(3):
        assert chat(gw, "tg-made-up-key", "fake-mini", "hi").status_code == 401

    rows = wait_for_rows(gw, sent)
    assert len(rows) == sent, rows
    samples = scrape(gw)

    requests = Counter()
    for name, labels, value in samples:
        if name == "tollgate_requests_total":
            requests[(labels["model"], labels["status"])] += int(value)
    expected = Counter((row["model"] or "", str(row["status"])) for row in rows)
    assert requests == expected

    cost = {labels["model"]: Decimal(value) for name, labels, value in samples if name == "tollgate_cost_usd_total"}
    ledger_cost = defaultdict(Decimal)
    for row in rows:
        ledger_cost[row["model"] or ""] += Decimal(row["cost_usd"])
    for model, total in ledger_cost.items():
        assert cost.get(model, Decimal(0)) == total, (model, cost, dict(ledger_cost))
    assert sum(cost.values()) == sum(ledger_cost.values()) > 0

    tokens = {(labels["model"], labels["type"]): int(value) for name, labels, value in samples if name == "tollgate_tokens_total"}
    for model in ("fake-mini", "fake-gpt", "claude-fake"):
        mine = [row for row in rows if row["model"] == model]
        for kind, field in (("input", "input_tokens"), ("cached_input", "cached_input_tokens"),
                            ("cache_write", "cache_write_tokens"), ("output", "output_tokens"),
                            ("reasoning", "reasoning_tokens")):
            assert tokens[(model, kind)] == sum(row[field] for row in mine), (model, kind)
    assert tokens[("claude-fake", "cache_write")] == 80
    assert tokens[("fake-gpt", "reasoning")] == 6

    counts = {labels["model"]: int(value) for name, labels, value in samples if name == "tollgate_request_duration_seconds_count"}
    assert counts["fake-mini"] == sum(1 for row in rows if row["model"] == "fake-mini")
    ttft = {labels["model"]: int(value) for name, labels, value in samples if name == "tollgate_time_to_first_token_seconds_count"}
    assert ttft["fake-gpt"] == 3

    single = {name: value for name, labels, value in samples if not labels}
    assert single["tollgate_refused_unauthenticated_total"] == "3"
    assert int(single["tollgate_ledger_queue_rows"]) == 0
    assert int(single["tollgate_ledger_flush_duration_seconds_count"]) >= 1

    deployments = {labels["deployment"]: labels for name, labels, _ in samples if name == "tollgate_deployment_breaker_state"}
    assert set(deployments) >= {"fake-mini", "fake-gpt", "claude-fake"}
    open_connections = sum(int(value) for name, labels, value in samples
                           if name == "tollgate_upstream_connections" and labels["state"] == "open")
    assert open_connections >= 1
    # Bounded cardinality: no user, team or key anywhere unless the config asks for it.
    for _, labels, _ in samples:
        assert not {"user", "team", "key", "key_id"} & set(labels), labels
        assert ident.user not in labels.values() and ident.key_id not in labels.values()


def test_budget_gauges_show_exact_limit_spent_and_reserved_as_the_admin_api(metrics_gw):
    gw = metrics_gw
    ident = gw.admin.new_identity()
    r = gw.admin.http.post("/admin/budgets", json={"scope": "team", "name": ident.team, "limit_usd": "12.345678901",
                                                   "period": "month"})
    assert r.status_code == 201, r.text
    budget_id = r.json()["id"]
    for i in range(3):
        assert chat(gw, ident.key, "fake-gpt", f"budget {i} REPLY_WORDS 20").status_code == 200
    [budget] = [b for b in gw.admin.http.get("/admin/budgets").json()["data"] if b["id"] == budget_id]
    samples = scrape(gw)
    mine = {name: value for name, labels, value in samples if labels.get("budget_id") == budget_id}
    assert mine["tollgate_budget_limit_usd"] == "12.345678901"
    assert Decimal(mine["tollgate_budget_spent_usd"]) == Decimal(budget["spent_usd"]) > 0
    assert Decimal(mine["tollgate_budget_reserved_usd"]) == Decimal(budget["reserved_usd"]) == 0
    labels = next(labels for name, labels, _ in samples if labels.get("budget_id") == budget_id)
    assert labels["scope"] == "team" and labels["name"] == ident.team and labels["period"] == "month"


def test_metrics_need_the_admin_or_a_viewer_key(metrics_gw):
    gw = metrics_gw
    ident = gw.admin.new_identity()
    for headers in ({}, {"Authorization": f"Bearer {ident.key}"}, {"Authorization": "Bearer tg-wrong"}):
        r = httpx.get(gw.url + "/metrics", headers=headers, timeout=10)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["error"]["type"] == "authentication_error"
    viewer = viewer_key(gw)
    assert any(name == "tollgate_requests_total" for name, _, _ in scrape(gw, viewer["key"]))


def test_a_viewer_key_reads_reports_and_the_dashboard_and_nothing_else(metrics_gw):
    gw = metrics_gw
    viewer = viewer_key(gw, name=f"finance-{nonce()}")
    headers = {"Authorization": f"Bearer {viewer['key']}"}
    for path in ("/admin/teams", "/admin/users", "/admin/keys", "/admin/budgets", "/admin/requests",
                 "/admin/spend?group_by=team", "/admin/forecast", "/admin/deployments"):
        r = httpx.get(gw.url + path, headers=headers, timeout=10)
        assert r.status_code == 200, (path, r.text)
    r = httpx.post(gw.url + "/admin/teams", headers=headers, json={"name": f"t-{nonce()}"}, timeout=10)
    assert r.status_code == 403 and r.json()["error"]["code"] == "viewer_key", r.text
    r = httpx.delete(gw.url + f"/admin/keys/{viewer['id']}", headers=headers, timeout=10)
    assert r.status_code == 403, r.text

    # It calls no model, in either API's own error shape; nothing is written to the ledger.
    before = len(gw.admin.all_requests())
    r = chat(gw, viewer["key"], "fake-mini", "hi")
    assert r.status_code == 403, r.text
    assert r.json()["error"]["type"] == "permission_error" and r.json()["error"]["code"] == "viewer_key"
    r = messages(gw, viewer["key"], "hi")
    assert r.status_code == 403, r.text
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "permission_error"
    time.sleep(0.2)
    assert len(gw.admin.all_requests()) == before

    # The dashboard: signed in with the viewer key, a session cookie; revoking the key ends the session.
    client = httpx.Client(base_url=gw.url, timeout=10)
    r = client.post("/dashboard/login", data={"key": viewer["key"], "next": "/dashboard"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard", r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = client.get("/dashboard/people", follow_redirects=False)
    assert page.status_code == 200 and "viewer" in page.text
    gw.admin.revoke_key(viewer["id"])
    page = client.get("/dashboard/people", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/dashboard/login")
    assert httpx.get(gw.url + "/metrics", headers=headers, timeout=10).status_code == 401
    assert httpx.get(gw.url + "/admin/teams", headers=headers, timeout=10).status_code == 401


def test_the_cli_creates_and_lists_a_viewer_key(metrics_gw):
    gw = metrics_gw
    name = f"cli-viewer-{nonce()}"
    done = tollgate("keys", "create", "--viewer", "--name", name, url=gw.url)
    assert done.returncode == 0, done.stderr
    assert "viewer key" in done.stdout
    key = re.search(r"(tg-\S+)", done.stdout).group(1)
    r = httpx.get(gw.url + "/admin/budgets", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    listing = tollgate("keys", "list", url=gw.url)
    [line] = [line for line in listing.stdout.splitlines() if name in line]
    assert " viewer " in line, line


def test_metrics_can_be_public_or_off(e2e_tmp, fake):
    public = start_gateway(e2e_tmp / "gw-metrics-public", gateway_config(fake.port) + "metrics: { public: true }\n")
    try:
        r = httpx.get(public.url + "/metrics", timeout=10)
        assert r.status_code == 200 and "tollgate_ledger_queue_rows" in r.text
    finally:
        public.stop()
    off = start_gateway(e2e_tmp / "gw-metrics-off", gateway_config(fake.port) + "metrics: { enabled: false }\n")
    try:
        r = httpx.get(off.url + "/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
        assert r.status_code == 404
    finally:
        off.stop()


def test_per_user_series_when_the_config_asks(e2e_tmp, fake):
    gw = start_gateway(e2e_tmp / "gw-metrics-users", gateway_config(fake.port) + "metrics: { per_user: true }\n")
    try:
        ident = gw.admin.new_identity()
        for i in range(2):
            assert chat(gw, ident.key, "fake-mini", f"user {i}").status_code == 200
        rows = wait_for_rows(gw, 2)
        samples = scrape(gw)
        mine = {name: value for name, labels, value in samples if labels.get("user") == ident.user}
        assert mine["tollgate_user_requests_total"] == "2"
        assert Decimal(mine["tollgate_user_cost_usd_total"]) == sum(Decimal(row["cost_usd"]) for row in rows)
    finally:
        gw.stop()
