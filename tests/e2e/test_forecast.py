"""Forecasts through the real server: days of traffic written on the test clock, /admin/forecast checked against
a forecast computed here from the ledger's rows, the CLI's table and CSV, and the budget.forecast_exceeds
webhook sent once per period, also across a restart."""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import math
import re
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import httpx

from cli import tollgate
from conftest import gateway_config, nonce, start_fake, start_gateway

Z80 = 1.2815515655446004  # 80 % of a normal distribution lies within ± Z80 σ
NANO = Decimal("0.000000001")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def expected_forecast(daily: dict[date, int], spent: int, limit: int | None, period: str, now: datetime) -> dict:
    """The README's method, written again from its description, in nano-dollars (UTC days)."""
    today = now.date()
    tomorrow = datetime.combine(today + timedelta(days=1), datetime.min.time(), timezone.utc)
    left_today = (tomorrow - now).total_seconds() / 86400
    if period == "month":
        end = (date(today.year + 1, 1, 1) if today.month == 12 else date(today.year, today.month + 1, 1))
    else:  # total: the 30 days after today
        end = today + timedelta(days=31)
    window = [today - timedelta(days=n) for n in range(14, 0, -1)]
    spending = [d for d in window if daily.get(d, 0) > 0]
    history = [(d, float(daily.get(d, 0))) for d in window if spending and d >= spending[0]]
    weekend = lambda d: d.weekday() >= 5  # noqa: E731
    to_come = [(today, left_today)] + [(today + timedelta(days=n), 1.0) for n in range(1, (end - today).days)]
    assert len(history) >= 3, "the test writes more than 3 days of history"
    kinds = {k: [a for d, a in history if weekend(d) == k] for k in (False, True)}
    overall = sum(a for _, a in history) / len(history)
    rate = {k: (sum(v) / len(v) if v else overall) for k, v in kinds.items()}
    groups = [k for k in (False, True) if kinds[k]]
    variance = sum((a - rate[weekend(d)]) ** 2 for d, a in history) / (len(history) - len(groups))
    units = {k: sum(u for d, u in to_come if weekend(d) == k) for k in (False, True)}
    total_units = units[False] + units[True]
    if len(groups) == 2:
        rate_term = sum(units[k] ** 2 / len(kinds[k]) for k in (False, True))
    else:
        rate_term = total_units ** 2 / len(history)
    rest = units[False] * rate[False] + units[True] * rate[True]
    half = max(Z80 * math.sqrt(variance * (total_units + rate_term)), 0.1 * rest)
    exhaustion = None
    if limit is not None:
        cumulative = spent + left_today * rate[weekend(today)]
        day = today
        while cumulative < limit and day + timedelta(days=1) < end:
            day += timedelta(days=1)
            cumulative += rate[weekend(day)]
        exhaustion = day.isoformat() if cumulative >= limit or spent >= limit else None
    return {"forecast": spent + round(rest), "low": spent + round(max(0.0, rest - half)),
            "high": spent + round(rest + half), "exhaustion": exhaustion, "history_days": len(history),
            "until": datetime.combine(end, datetime.min.time(), timezone.utc)}


def nanos(text: str) -> int:
    return int(Decimal(text) / NANO)


def assert_matches(row: dict, expected: dict, unit: str = "usd"):
    # The gateway rounds once from its own doubles; written again here, the last nano-dollar may differ.
    for field, key in (("forecast", "forecast"), ("forecast_low", "low"), ("forecast_high", "high")):
        assert abs(nanos(row[f"{field}_{unit}"]) - expected[key]) <= 1, (field, row, expected)
    assert row["projected_exhaustion"] == expected["exhaustion"], (row, expected)
    assert row["history_days"] == expected["history_days"]
    assert row["method"] == "trailing 14 days, weekday/weekend profile"
    assert parse_time(row["forecast_until"]) == expected["until"]


def chat(gw, key: str, text: str) -> httpx.Response:
    return httpx.post(gw.v1 + "/chat/completions", timeout=20, headers={"Authorization": f"Bearer {key}"},
                      json={"model": "fake-gpt", "max_tokens": 300, "messages": [{"role": "user", "content": text}]})


def advance(gw, seconds: float) -> datetime:
    r = gw.admin.http.post("/admin/test/clock", json={"advance_seconds": seconds})
    assert r.status_code == 200, r.text
    return parse_time(r.json()["now"])


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_forecasts_match_the_ledger_and_the_webhook_is_sent_once_per_period_across_a_restart(tmp_path):
    secret = "forecast-secret"
    fake = start_fake(tmp_path)
    hook_path = f"/hooks/forecast-{nonce()}"
    extra = (f'webhooks: {{ url: "http://127.0.0.1:{fake.port}{hook_path}", secret: "{secret}" }}\n'
             "forecasts: { check_ms: 200 }\n")
    config = gateway_config(fake.port) + extra
    gw = start_gateway(tmp_path / "gw", config, {"TOLLGATE_TEST_CLOCK": "1"})
    try:
        ident = gw.admin.new_identity()
        # To 09:00 UTC on the 1st of next month: a whole month ahead, whatever day the test runs.
        now = advance(gw, 0)
        first = date(now.year + 1, 1, 1) if now.month == 12 else date(now.year, now.month + 1, 1)
        start = datetime.combine(first, datetime.min.time(), timezone.utc) + timedelta(hours=9)
        advance(gw, (start - now).total_seconds())
        r = gw.admin.http.post("/admin/budgets", json={"scope": "user", "name": ident.user, "limit_usd": "100",
                                                       "period": "month"})
        assert r.status_code == 201, r.text
        monthly = r.json()
        # Nine days of traffic: weekdays busy and uneven, weekend days one small request.
        sent = 0
        for day in range(9):
            weekend = (first + timedelta(days=day)).weekday() >= 5
            words = [20] if weekend else [150 + 40 * (day % 3), 200, 90 + 70 * (day % 2)]
            for n in words:
                assert chat(gw, ident.key, f"day {day} REPLY_WORDS {n}").status_code == 200
                sent += 1
            advance(gw, 86400)
        hooks = lambda: [q for q in fake.requests() if q["path"] == hook_path]  # noqa: E731
        assert hooks() == [], "the monthly budget's forecast is far below its $100"

        # Spent so far in total, from the ledger: a total budget whose 30-day forecast goes over its limit.
        assert wait_for(lambda: len([r for r in gw.admin.all_requests() if r["user"] == ident.user]) == sent)
        rows = gw.admin.all_requests()
        daily: dict[date, int] = {}
        for row in rows:
            if row["user"] == ident.user:
                d = parse_time(row["created_at"]).date()
                daily[d] = daily.get(d, 0) + nanos(row["cost_usd"])
        spent = sum(daily.values())
        limit = spent + spent // 2
        r = gw.admin.http.post("/admin/budgets", json={"scope": "user", "name": ident.user,
                                                       "limit_usd": str(Decimal(limit) * NANO), "period": "total"})
        assert r.status_code == 201, r.text
        total = r.json()

        answer = gw.admin.http.get("/admin/forecast", params={"scope": "user", "name": ident.user})
        assert answer.status_code == 200, answer.text
        by_id = {row["budget_id"]: row for row in answer.json()["data"]}
        assert set(by_id) == {monthly["id"], total["id"]}
        month_row, total_row = by_id[monthly["id"]], by_id[total["id"]]
        as_of = parse_time(month_row["as_of"])
        assert nanos(month_row["spent_usd"]) == spent and month_row["limit_usd"] == "100"
        assert_matches(month_row, expected_forecast(daily, spent, 100 * 10**9, "month", as_of))
        expected_total = expected_forecast(daily, spent, limit, "total", parse_time(total_row["as_of"]))
        assert_matches(total_row, expected_total)
        assert nanos(total_row["forecast_low_usd"]) > limit, "the test's limit is under the forecast's low bound"
        assert expected_total["exhaustion"] is not None

        # A subject without a budget: its own month, no limit.
        team = gw.admin.http.get("/admin/forecast", params={"scope": "team", "name": ident.team}).json()["data"]
        assert len(team) == 1 and team[0]["budget_id"] is None and team[0]["limit_usd"] is None
        assert team[0]["projected_exhaustion"] is None and nanos(team[0]["spent_usd"]) == spent
        assert abs(nanos(team[0]["forecast_usd"]) - nanos(month_row["forecast_usd"])) <= 1

        # The webhook: once, signed like the soft threshold's, for the total budget.
        assert wait_for(lambda: len(hooks()) >= 1), "no budget.forecast_exceeds webhook"
        time.sleep(1.0)
        assert len(hooks()) == 1, "the webhook was sent more than once in one period"
        hook = hooks()[0]
        payload = json.loads(hook["body"])
        assert payload["event"] == "budget.forecast_exceeds" and payload["budget"]["id"] == total["id"]
        assert nanos(payload["forecast"]["forecast_low_usd"]) > limit and payload["crossed_at"]
        expected_signature = "sha256=" + hmac.new(secret.encode(), hook["body"].encode(), hashlib.sha256).hexdigest()
        assert hook["headers"]["x-tollgate-signature"] == expected_signature
        assert hook["headers"]["x-tollgate-event"] == "budget.forecast_exceeds"

        # The CLI: the same numbers as a table, as CSV, and as JSON.
        cli = tollgate("spend", "--forecast", "--scope", "user", "--name", ident.user, url=gw.url)
        assert cli.returncode == 0, cli.stderr
        lines = [re.split(r"\s{2,}", line.strip()) for line in cli.stdout.splitlines()]
        assert lines[0] == ["scope", "name", "model", "period", "limit", "spent", "forecast", "low (80 %)", "high (80 %)",
                            "limit reached", "history", "method"]
        cells = next(dict(zip(lines[0], line)) for line in lines[1:] if line[3] == "total")
        assert cells["limit"] == "$" + total_row["limit_usd"] and cells["spent"] == "$" + total_row["spent_usd"]
        assert cells["limit reached"] == total_row["projected_exhaustion"]
        assert cells["history"] == f"{total_row['history_days']} d" and cells["method"] == total_row["method"]
        # The test clock kept running since the JSON answer: the rest of today shrank by a few nano-dollars.
        for column, field in (("forecast", "forecast_usd"), ("low (80 %)", "forecast_low_usd"), ("high (80 %)", "forecast_high_usd")):
            assert abs(nanos(cells[column].removeprefix("$")) - nanos(total_row[field])) < 1000, (column, cells, total_row)
        month_cells = next(dict(zip(lines[0], line)) for line in lines[1:] if line[3] == "month")
        assert month_cells["limit reached"] == "-" and month_cells["limit"] == "$100"
        cli_csv = tollgate("spend", "--forecast", "--scope", "user", "--name", ident.user, "--csv", url=gw.url)
        assert cli_csv.returncode == 0, cli_csv.stderr
        table = {row["budget_id"]: row for row in csv.DictReader(io.StringIO(cli_csv.stdout))}
        assert abs(nanos(table[total["id"]]["forecast_low"]) - nanos(total_row["forecast_low_usd"])) < 1000
        assert table[total["id"]]["spent"] == total_row["spent_usd"]
        assert table[total["id"]]["unit"] == "usd" and table[total["id"]]["limit"] == total_row["limit_usd"]
        assert table[monthly["id"]]["projected_exhaustion"] == ""
        cli_json = tollgate("spend", "--forecast", "--scope", "user", "--name", ident.user, "--json", url=gw.url)
        assert {row["budget_id"] for row in json.loads(cli_json.stdout)["data"]} == {monthly["id"], total["id"]}

        # A restart, the clock moved back to where it was: the crossing is remembered, nothing is sent again.
        offset = (advance(gw, 0) - datetime.now(timezone.utc)).total_seconds()
        gw.stop()
        gw = start_gateway(tmp_path / "gw", config, {"TOLLGATE_TEST_CLOCK": "1"})
        advance(gw, offset)
        again = gw.admin.http.get("/admin/forecast", params={"scope": "user", "name": ident.user}).json()["data"]
        assert nanos(next(r for r in again if r["budget_id"] == total["id"])["forecast_low_usd"]) > limit
        time.sleep(1.5)
        assert len(hooks()) == 1, "the webhook was sent again after a restart"
    finally:
        gw.stop()
        fake.stop()


def test_forecast_refuses_an_unknown_scope_and_names_a_missing_subject(tmp_path):
    fake = start_fake(tmp_path)
    gw = start_gateway(tmp_path / "gw", gateway_config(fake.port))
    try:
        r = gw.admin.http.get("/admin/forecast", params={"scope": "galaxy"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "scope"
        r = gw.admin.http.get("/admin/forecast", params={"scope": "team", "name": "nobody"})
        assert r.status_code == 404, r.text
        assert gw.admin.http.get("/admin/forecast").json() == {"data": []}
    finally:
        gw.stop()
        fake.stop()
