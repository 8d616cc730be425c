"""Budgets through the real server: a strict cap that holds under 300 concurrent streams and is still used
almost to the cent, team and per-model budgets, downgrade instead of refusal, the soft-threshold webhook,
disconnects billed, period reset, and spend that survives kill -9."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import threading
import time
from decimal import Decimal

import httpx
import pytest

from conftest import ADMIN_KEY, expected_cost, gateway_config, nonce, start_fake, start_gateway


def set_budget(admin, **body) -> dict:
    r = admin.http.post("/admin/budgets", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def budget(admin, budget_id: str) -> dict:
    rows = admin.http.get("/admin/budgets").json()["data"]
    return next(b for b in rows if b["id"] == budget_id)


def ledger_total(admin, user: str) -> Decimal:
    return sum((Decimal(r["cost_usd"]) for r in admin.all_requests() if r["user"] == user), Decimal(0))


def chat(gw, key: str, text: str, model: str = "fake-gpt", **kw) -> httpx.Response:
    return httpx.post(gw.v1 + "/chat/completions", timeout=20, headers={"Authorization": f"Bearer {key}"},
                      json={"model": model, "messages": [{"role": "user", "content": text}], **kw})


def wait_settled(admin, budget_id: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        b = budget(admin, budget_id)
        if b.get("reserved_usd", "0") == "0" or time.monotonic() > deadline:
            return b
        time.sleep(0.05)


def assert_budget_429(response: httpx.Response, scope: str, name: str):
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "budget_exceeded" and error["type"] == "insufficient_quota"
    assert error["budget"]["scope"] == scope and error["budget"]["name"] == name
    assert {"id", "spent_usd", "resets_at", "period", "model"} <= set(error["budget"])
    assert "limit_usd" in error["budget"] or "limit_tokens" in error["budget"]
    assert response.headers["x-should-retry"] == "false"
    if error["budget"]["resets_at"] is not None:
        assert int(response.headers["retry-after"]) > 0


async def _streams(url: str, key: str, count: int, body: dict) -> list[tuple[int, bytes]]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def one():
            async with client.stream("POST", url, json=body, headers={"Authorization": f"Bearer {key}"}) as r:
                return r.status_code, await r.aread()
        return await asyncio.gather(*(one() for _ in range(count)))


@pytest.mark.parametrize("mode", ["strict", "estimate"])
def test_cap_holds_under_300_concurrent_streams_and_is_used_to_90_percent(gateway, admin, mode):
    ident = admin.new_identity()
    b = set_budget(admin, scope="user", name=ident.user, limit_usd="0.50", period="month", mode=mode)
    # Worst case: 1,000 output tokens at $10/M plus the body's bytes at $2.50/M ≈ $0.0104; actual ≈ $0.0100.
    body = {"model": "fake-gpt", "stream": True, "max_tokens": 1000,
            "messages": [{"role": "user", "content": f"load {nonce()} REPLY_WORDS 995 STREAM_CHUNKS 5"}]}
    results = asyncio.run(_streams(gateway.v1 + "/chat/completions", ident.key, 300, body))
    statuses = [s for s, _ in results]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 40
    for status, raw in results:
        if status == 429:
            error = json.loads(raw)["error"]
            assert error["code"] == "budget_exceeded" and error["budget"]["limit_usd"] == "0.5"
    settled = wait_settled(admin, b["id"])
    total = ledger_total(admin, ident.user)
    print(f"\n{mode}: {statuses.count(200)} admitted, settled ${total} of $0.50 ({total / Decimal('0.5'):.1%}), "
          f"overshoot ${max(Decimal(0), total - Decimal('0.5'))}")
    if mode == "strict":
        assert total <= Decimal("0.50")
    else:
        # An estimate can be passed by what one request's estimate under-counted, never by more.
        assert total <= Decimal("0.50") + Decimal("0.0105")
    assert total >= Decimal("0.45"), f"only ${total} of $0.50 used: the gate is timid"
    assert Decimal(settled["spent_usd"]) == total
    assert settled["reserved_usd"] == "0"


def test_team_budget_is_shared_by_its_users(gateway, admin):
    n = nonce()
    admin.create_team(f"t-{n}")
    admin.create_user(f"a-{n}", f"t-{n}")
    admin.create_user(f"b-{n}", f"t-{n}")
    key_a = admin.create_key(f"a-{n}")["key"]
    key_b = admin.create_key(f"b-{n}")["key"]
    set_budget(admin, scope="team", name=f"t-{n}", limit_usd="0.021", period="day")
    # Each request: worst ≈ $0.00525 (500 output tokens and the body), actual ≈ $0.0049: four fit in $0.021.
    for key in (key_a, key_b, key_a, key_b):
        r = chat(gateway, key, "team REPLY_WORDS 490", max_tokens=500)
        assert r.status_code == 200, r.text
        assert Decimal(r.headers["x-tollgate-budget-remaining-usd"]) >= 0
    assert_budget_429(chat(gateway, key_b, "over REPLY_WORDS 490", max_tokens=500), "team", f"t-{n}")
    assert_budget_429(chat(gateway, key_a, "over REPLY_WORDS 490", max_tokens=500), "team", f"t-{n}")
    # A cheaper request still fits in what is left.
    assert chat(gateway, key_a, "small REPLY_WORDS 2", max_tokens=10).status_code == 200


def test_a_per_model_budget_binds_only_that_model(gateway, admin):
    ident = admin.new_identity()
    set_budget(admin, scope="user", name=ident.user, model="fake-gpt", limit_usd="0.001", period="day")
    assert_budget_429(chat(gateway, ident.key, "big REPLY_WORDS 2", max_tokens=500), "user", ident.user)
    assert chat(gateway, ident.key, "mini REPLY_WORDS 2", model="fake-mini", max_tokens=500).status_code == 200
    mine = httpx.get(gateway.v1 + "/budget", headers={"Authorization": f"Bearer {ident.key}"}).json()["data"]
    assert [b["model"] for b in mine] == ["fake-gpt"]


def test_client_disconnect_mid_stream_is_billed_to_the_budget(gateway, admin, ledger_row):
    ident = admin.new_identity()
    b = set_budget(admin, scope="user", name=ident.user, limit_usd="1", period="day")
    with httpx.Client(timeout=20) as client:
        with client.stream("POST", gateway.v1 + "/chat/completions", headers={"Authorization": f"Bearer {ident.key}"},
                           json={"model": "fake-gpt", "stream": True, "max_tokens": 100,
                                 "messages": [{"role": "user", "content": "leave REPLY_WORDS 40 SLOW_CHUNKS 100"}]}) as r:
            request_id = r.headers["x-tollgate-request-id"]
            seen = 0
            for _ in r.iter_raw():
                seen += 1
                if seen >= 3:
                    break
    row = ledger_row(request_id)
    assert row["output_tokens"] >= 1 and Decimal(row["cost_usd"]) > 0
    settled = wait_settled(admin, b["id"])
    assert settled["spent_usd"] == row["cost_usd"]
    assert settled["reserved_usd"] == "0"


def _dedicated(tmp_path, extra: str = "", env: dict | None = None):
    fake = start_fake(tmp_path)
    config = gateway_config(fake.port).replace("upstream_model: fake-gpt-upstream,",
                                               "upstream_model: fake-gpt-upstream, downgrade_to: fake-mini,") + extra
    return fake, start_gateway(tmp_path / "gw", config, env)


def test_an_exhausted_downgrade_budget_serves_the_cheaper_model(tmp_path):
    fake, gw = _dedicated(tmp_path)
    try:
        ident = gw.admin.new_identity()
        set_budget(gw.admin, scope="user", name=ident.user, limit_usd="0.006", period="day", on_exhaust="downgrade")
        # fake-gpt's worst case ($0.0104) does not fit in $0.006; fake-mini's ($0.0006) does.
        r = chat(gw, ident.key, "downgrade me REPLY_WORDS 3", max_tokens=1000)
        assert r.status_code == 200, r.text
        assert r.headers["x-tollgate-model"] == "fake-mini"
        row = gw.ledger_row(r.headers["x-tollgate-request-id"])
        assert (row["requested_model"], row["model"], row["route_reason"]) == ("fake-gpt", "fake-mini", "budget downgrade")
        msgs = [{"role": "user", "content": "downgrade me REPLY_WORDS 3"}]
        import fake_upstream as fu
        assert row["cost_usd"] == expected_cost("fake-mini", fu.prompt_tokens_for(msgs), 0, 3)
        assert row["baseline_cost_usd"] == expected_cost("fake-gpt", fu.prompt_tokens_for(msgs), 0, 3)
        upstream = [q for q in fake.requests() if "downgrade me" in q["body"]]
        assert json.loads(upstream[0]["body"])["model"] == "fake-mini"
        # A model with nothing cheaper to go to is refused.
        set_budget(gw.admin, scope="user", name=ident.user, limit_usd="0.0001", period="day", on_exhaust="downgrade")
        assert_budget_429(chat(gw, ident.key, "no way REPLY_WORDS 3", max_tokens=1000), "user", ident.user)
    finally:
        gw.stop()
        fake.stop()


def test_soft_threshold_webhook_is_signed_retried_and_sent_once_per_period(tmp_path):
    secret = "hook-secret"
    fake = start_fake(tmp_path)
    hook_path = f"/hooks/flaky-{nonce()}"
    extra = f'webhooks: {{ url: "http://127.0.0.1:{fake.port}{hook_path}", secret: "{secret}" }}\n'
    gw = start_gateway(tmp_path / "gw", gateway_config(fake.port) + extra, {"TOLLGATE_TEST_CLOCK": "1"})
    try:
        ident = gw.admin.new_identity()
        b = set_budget(gw.admin, scope="user", name=ident.user, limit_usd="0.021", period="day", soft_threshold="0.5")
        for _ in range(4):  # ≈ $0.0049 each: the third crosses $0.0105
            assert chat(gw, ident.key, "spend REPLY_WORDS 490", max_tokens=500).status_code == 200
        deadline = time.monotonic() + 10
        hooks = []
        while time.monotonic() < deadline:
            hooks = [q for q in fake.requests() if q["path"] == hook_path]
            if len(hooks) >= 2:
                break
            time.sleep(0.1)
        assert len(hooks) == 2, f"expected a failed delivery and its retry, got {len(hooks)}"
        assert hooks[0]["body"] == hooks[1]["body"]
        payload = json.loads(hooks[1]["body"])
        assert payload["event"] == "budget.soft_threshold" and payload["threshold"] == "0.5"
        assert payload["budget"]["id"] == b["id"] and payload["crossed_at"]
        expected = "sha256=" + hmac.new(secret.encode(), hooks[1]["body"].encode(), hashlib.sha256).hexdigest()
        assert hooks[1]["headers"]["x-tollgate-signature"] == expected
        assert budget(gw.admin, b["id"])["soft_threshold_crossed_at"] is not None
        time.sleep(1.5)
        assert len([q for q in fake.requests() if q["path"] == hook_path]) == 2, "the webhook was sent twice in one period"

        # The next day: the budget resets, and the threshold can be announced again.
        r = gw.admin.http.post("/admin/test/clock", json={"advance_seconds": 86400})
        assert r.status_code == 200, r.text
        fresh = budget(gw.admin, b["id"])
        assert fresh["spent_usd"] == "0" and fresh["soft_threshold_crossed_at"] is None
        for _ in range(3):
            assert chat(gw, ident.key, "again REPLY_WORDS 490", max_tokens=500).status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len([q for q in fake.requests() if q["path"] == hook_path]) < 3:
            time.sleep(0.1)
        assert len([q for q in fake.requests() if q["path"] == hook_path]) == 3
    finally:
        gw.stop()
        fake.stop()


def test_spend_survives_kill_9_mid_load_and_no_reservation_stays_held(tmp_path):
    fake, gw = _dedicated(tmp_path)
    ident = gw.admin.new_identity()
    b = set_budget(gw.admin, scope="user", name=ident.user, limit_usd="5", period="month")
    stop = threading.Event()

    def load():
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                try:
                    client.post(gw.v1 + "/chat/completions", headers={"Authorization": f"Bearer {ident.key}"},
                                json={"model": "fake-gpt", "stream": True, "max_tokens": 200,
                                      "messages": [{"role": "user", "content": "crash REPLY_WORDS 20 SLOW_CHUNKS 5"}]})
                except httpx.HTTPError:
                    pass

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    os.kill(gw.proc.pid, signal.SIGKILL)
    gw.proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    again = start_gateway(tmp_path / "gw", (tmp_path / "gw" / "tollgate.yaml").read_text())
    try:
        restored = budget(again.admin, b["id"])
        total = ledger_total(again.admin, ident.user)
        assert total > 0, "nothing was settled before the crash"
        assert Decimal(restored["spent_usd"]) == total
        assert restored["reserved_usd"] == "0"
        assert chat(again, ident.key, "after crash REPLY_WORDS 2", max_tokens=50).status_code == 200
    finally:
        again.stop()
        gw.stop()
        fake.stop()


def test_config_budgets_are_applied_at_start_and_token_budgets_count_tokens(tmp_path):
    fake = start_fake(tmp_path)
    base = gateway_config(fake.port)
    gw = start_gateway(tmp_path / "gw", base)
    n = nonce()
    try:
        gw.admin.create_team(f"t-{n}")
        gw.admin.create_user(f"u-{n}", f"t-{n}")
        key = gw.admin.create_key(f"u-{n}")["key"]
    finally:
        gw.stop()
    config = base + (f"budgets:\n"
                     f"  - {{ scope: user, name: u-{n}, limit_tokens: 1200, period: day }}\n"
                     f"  - {{ scope: team, name: t-{n}, limit_usd: \"5\", period: month, soft_threshold: 0.8 }}\n"
                     f"  - {{ scope: user, name: nobody-{n}, limit_usd: \"1\", period: day }}\n")
    again = start_gateway(tmp_path / "gw", config)
    try:
        rows = again.admin.http.get("/admin/budgets").json()["data"]
        mine = {(b["scope"], b["name"]): b for b in rows}
        assert mine[("user", f"u-{n}")]["limit_tokens"] == 1200
        assert mine[("team", f"t-{n}")]["limit_usd"] == "5" and mine[("team", f"t-{n}")]["soft_threshold"] == "0.8"
        assert ("user", f"nobody-{n}") not in mine  # a subject that does not exist is skipped, not fatal
        assert "skipped" in again.log_tail()
        # Token budget: the worst case is the body's bytes (~100) + max_tokens, against 1,200 tokens.
        first = chat(again, key, "tokens REPLY_WORDS 5", model="fake-mini", max_tokens=1000)
        assert first.status_code == 200, first.text
        # It settled at its actual ~20 tokens: ~1,180 are left, less than this request's worst case.
        second = chat(again, key, "tokens REPLY_WORDS 5", model="fake-mini", max_tokens=1150)
        assert_budget_429(second, "user", f"u-{n}")
        assert second.json()["error"]["budget"]["limit_tokens"] == 1200
        budget_after = wait_settled(again.admin, mine[("user", f"u-{n}")]["id"])
        row = again.ledger_row(first.headers["x-tollgate-request-id"])
        assert budget_after["spent_tokens"] == row["input_tokens"] + row["cached_input_tokens"] + row["output_tokens"]
    finally:
        again.stop()
        fake.stop()
