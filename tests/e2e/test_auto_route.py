"""`model: "auto"` through the real server with the shipped router: an easy prompt goes to the weak model and a
hard one to the strong model, each recorded with the router's score and what the strong model would have cost;
and `strong_share` holds on the gateway's own traffic once the route has calibrated on it."""
from __future__ import annotations

import json

import httpx

import fake_upstream as fu
from conftest import expected_cost, gateway_config, start_fake, start_gateway

EASY = ("Which organization publishes the international classification of diseases?\n"
        "A. UNESCO\nB. WHO\nC. UNICEF\nD. OECD\nAnswer:")
HARD = ("Statement 1 | If x^2 = 4 then x = 2. Statement 2 | For all n > 1, n! > 2^n is not true when n = 2 or n = 3.\n"
        "A. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer:")


def scenario(k: int) -> str:
    """Prompts whose router scores rise strictly with k (0.34 … 0.43 under the shipped weights), all far above
    the shipped threshold for a 50 % strong share (0.14): without calibration every one would go strong."""
    return (f"Scenario 1 | I told my friend {k} times that I would not come, but then I did. Scenario 2 | "
            f"I gave {k * 7} dollars to a stranger who was not in need." + " It is not what he expected." * k)


def _gateway(tmp_path):
    fake = start_fake(tmp_path)
    routes = """routes:
  auto: { strategy: learned, strong: fake-gpt, weak: fake-mini, strong_share: 0.5, calibrate_after: 0 }
  tuned: { strategy: learned, strong: fake-gpt, weak: fake-mini, strong_share: 0.5, calibrate_after: 20 }
"""
    return fake, start_gateway(tmp_path / "gw", gateway_config(fake.port, routes))


def ask(gw, key, text, model, words=3):
    r = httpx.post(gw.v1 + "/chat/completions", timeout=20, headers={"Authorization": f"Bearer {key}"},
                   json={"model": model, "messages": [{"role": "user", "content": f"{text} REPLY_WORDS {words}"}]})
    assert r.status_code == 200, r.text
    return r


def test_auto_sends_easy_and_hard_prompts_to_different_models(tmp_path):
    fake, gw = _gateway(tmp_path)
    try:
        ident = gw.admin.new_identity(models=["auto"])
        easy, hard = ask(gw, ident.key, EASY, "auto"), ask(gw, ident.key, HARD, "auto")
        assert easy.headers["x-tollgate-model"] == "fake-mini"
        assert hard.headers["x-tollgate-model"] == "fake-gpt"
        # the upstream saw each request under its own model
        assert [json.loads(r["body"])["model"] for r in fake.requests()[-2:]] == ["fake-mini", "fake-gpt-upstream"]

        easy_row = gw.ledger_row(easy.headers["x-tollgate-request-id"])
        hard_row = gw.ledger_row(hard.headers["x-tollgate-request-id"])
        p_easy = float(easy_row["route_reason"].removeprefix("learned p="))
        p_hard = float(hard_row["route_reason"].removeprefix("learned p="))
        assert p_easy < 0.14 < p_hard  # the shipped threshold for strong_share 0.5 lies between them
        assert easy_row["route"] == hard_row["route"] == "auto"
        assert easy_row["model"] == "fake-mini" and hard_row["model"] == "fake-gpt"
        # the weak answer records what the strong model would have cost; the strong one saved nothing
        msgs = [{"role": "user", "content": f"{EASY} REPLY_WORDS 3"}]
        assert easy_row["baseline_cost_usd"] == expected_cost("fake-gpt", fu.prompt_tokens_for(msgs), 0, 3)
        assert easy_row["cost_usd"] == expected_cost("fake-mini", fu.prompt_tokens_for(msgs), 0, 3)
        assert hard_row["baseline_cost_usd"] is None
    finally:
        gw.stop()
        fake.stop()


def test_strong_share_holds_on_the_gateways_own_traffic(tmp_path):
    fake, gw = _gateway(tmp_path)
    try:
        ident = gw.admin.new_identity(models=["tuned"])
        served = [ask(gw, ident.key, scenario(k), "tuned", words=1).headers["x-tollgate-model"] for k in range(1, 21)]
        # the first 19 decisions use the shipped thresholds (every one of these prompts is above them) …
        assert served[:19] == ["fake-gpt"] * 19
        route = {d["name"]: d for d in gw.admin.http.get("/admin/deployments").json()["data"]}["tuned"]
        assert route["decisions_seen"] == 20 and route["calibrate_after"] == 20 and route["strong_share"] == 0.5
        assert route["calibrated_threshold"] is not None
        # … from the 20th on, the threshold is the median of what this gateway has seen: half of the same traffic
        # now goes to the weak model, the higher-scoring half to the strong one
        again = {k: ask(gw, ident.key, scenario(k), "tuned", words=1).headers["x-tollgate-model"] for k in range(1, 21)}
        assert [k for k, m in again.items() if m == "fake-gpt"] == list(range(11, 21))
        # the untouched `auto` route is not calibrated at all
        auto = {d["name"]: d for d in gw.admin.http.get("/admin/deployments").json()["data"]}
        assert "auto" not in auto or auto["auto"]["calibrated_threshold"] is None
    finally:
        gw.stop()
        fake.stop()
