"""Rate limits per key, user and team: requests and tokens per minute over a sliding 60-second window, 429 with
Retry-After and the x-ratelimit-* headers, in the OpenAI error shape the official SDK understands."""
from __future__ import annotations

import httpx
import openai
import pytest

from conftest import gateway_config, nonce, start_fake, start_gateway


def chat(gw, key: str, text: str, **kw) -> httpx.Response:
    return httpx.post(gw.v1 + "/chat/completions", timeout=15, headers={"Authorization": f"Bearer {key}"},
                      json={"model": "fake-mini", "messages": [{"role": "user", "content": text}], **kw})


def test_key_rpm_refuses_the_third_request_with_retry_after(gateway, admin, ledger_row):
    n = nonce()
    admin.create_team(f"t-{n}")
    admin.create_user(f"u-{n}", f"t-{n}")
    key = admin._ok(admin.http.post("/admin/keys", json={"user": f"u-{n}", "rpm": 2}), 201).json()
    assert key["rpm"] == 2
    first = chat(gateway, key["key"], "one REPLY_WORDS 1")
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert chat(gateway, key["key"], "two REPLY_WORDS 1").status_code == 200
    third = chat(gateway, key["key"], "three REPLY_WORDS 1")
    assert third.status_code == 429, third.text
    error = third.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert 1 <= int(third.headers["retry-after"]) <= 60
    assert third.headers["x-ratelimit-remaining-requests"] == "0"
    row = ledger_row(third.headers["x-tollgate-request-id"])
    assert row["status"] == 429 and row["cost_usd"] == "0"
    # The official SDK raises its own rate-limit error for it.
    with gateway.client(key["key"]) as client, pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="fake-mini", messages=[{"role": "user", "content": "four"}])


def test_config_tpm_for_a_user_counts_the_admission_bound_and_refuses_a_request_that_can_never_fit(tmp_path):
    fake = start_fake(tmp_path)
    n = nonce()
    config = gateway_config(fake.port) + f"rate_limits:\n  - {{ scope: user, name: limited-{n}, tpm: 1000 }}\n"
    gw = start_gateway(tmp_path / "gw", config)
    try:
        gw.admin.create_team(f"t-{n}")
        gw.admin.create_user(f"limited-{n}", f"t-{n}")
        key = gw.admin.create_key(f"limited-{n}")["key"]
        ok = chat(gw, key, "short REPLY_WORDS 2", max_tokens=500)
        assert ok.status_code == 200, ok.text
        assert ok.headers["x-ratelimit-limit-tokens"] == "1000"
        # Settled to what it used: far less than its 500-token bound.
        again = chat(gw, key, "again REPLY_WORDS 2", max_tokens=500)
        assert again.status_code == 200, again.text
        too_big = chat(gw, key, "huge", max_tokens=5000)
        assert too_big.status_code == 429
        assert too_big.json()["error"]["type"] == "tokens"
        assert "retry-after" not in too_big.headers and too_big.headers["x-should-retry"] == "false"
        # Another user is not limited by it.
        gw.admin.create_user(f"free-{n}", f"t-{n}")
        other = gw.admin.create_key(f"free-{n}")["key"]
        assert chat(gw, other, "huge REPLY_WORDS 1", max_tokens=5000).status_code == 200
    finally:
        gw.stop()
        fake.stop()
