"""Sessions, clients and agentic use per person (issue 16, section 1), through the real gateway: a known mix of
traffic on the test clock, then /admin/usage, /admin/usage/trend and `tollgate usage` checked against the same
figures worked out here by hand from each request's own usage.

- ada works in a Claude Code-like client (its user agent, `x-app: cli`, `x-claude-code-session-id`) over the
  Anthropic API: session S1 on Monday (tools, then two tool results), S2 on Tuesday (tools, no result yet).
- otto runs his own agent on the OpenAI SDK: a tool call and its result, then, 36 minutes later, one more request
  with the same system prompt: the gap makes it a new session, with no tool loop: assisted.
- quinn only asks questions with the OpenAI SDK: two five minutes apart on Monday (one session), one on Tuesday,
  and one on the Monday after (outside the report's window, inside the trend).
"""
from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from cli import tollgate
import pytest

from conftest import (expected_anthropic_cost, expected_cost, fmt_money, fresh_pg_database, gateway_config, nonce,
                      requires_pg, start_gateway)

CLAUDE_HEADERS = {"User-Agent": "claude-cli/2.0.62 (external, cli)", "x-app": "cli",
                  "anthropic-beta": "claude-code-20250219"}
TOOLS_ANTHROPIC = [{"name": n, "description": n, "input_schema": {"type": "object", "properties": {}}}
                   for n in ("Bash", "Read", "Edit")]
TOOLS_OPENAI = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}},
                {"type": "function", "function": {"name": "time", "parameters": {"type": "object", "properties": {}}}}]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def advance(gw, seconds: float) -> datetime:
    r = gw.admin.http.post("/admin/test/clock", json={"advance_seconds": seconds})
    assert r.status_code == 200, r.text
    return parse_time(r.json()["now"])


def advance_to(gw, when: datetime) -> datetime:
    now = advance(gw, 0)
    return advance(gw, (when - now).total_seconds())


class Tally:
    """What one group's requests add up to, kept the way the report defines it."""

    def __init__(self):
        self.requests = 0
        self.cost = Decimal(0)
        self.agentic_requests = 0
        self.agentic_cost = Decimal(0)
        self.tokens = 0
        self.input_tokens = 0
        self.cached = 0
        self.days: set = set()

    def add(self, cost: str, day, uncached: int, cached: int, written: int, output: int, agentic_session: bool):
        self.requests += 1
        self.cost += Decimal(cost)
        if agentic_session:
            self.agentic_requests += 1
            self.agentic_cost += Decimal(cost)
        self.input_tokens += uncached + cached + written
        self.cached += cached
        self.tokens += uncached + cached + written + output
        self.days.add(day)


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=requires_pg)])
def test_usage_report_sessions_clients_and_agentic_use(tmp_path, fake, database):
    db = fresh_pg_database() if database == "postgres" else None
    gw = start_gateway(tmp_path / "gw", gateway_config(fake.port), {"TOLLGATE_TEST_CLOCK": "1"}, db=db)
    try:
        n = nonce()
        team = f"eng-{n}"
        gw.admin.create_team(team)
        keys = {}
        for person in ("ada", "otto", "quinn"):
            gw.admin.create_user(f"{person}-{n}", team)
            keys[person] = gw.admin.create_key(f"{person}-{n}")["key"]
        ada, otto, quinn = (f"{p}-{n}" for p in ("ada", "otto", "quinn"))
        r = gw.admin.http.post("/admin/budgets", json={"scope": "user", "name": quinn, "limit_usd": "50", "period": "month"})
        assert r.status_code == 201, r.text

        now = advance(gw, 0)
        monday = (now + timedelta(days=7 - now.weekday())).replace(hour=9, minute=0, second=0, microsecond=0)
        tuesday, next_monday = monday + timedelta(days=1), monday + timedelta(days=7)
        tallies = {name: Tally() for name in (ada, otto, quinn)}
        by_client = {"claude-cli": Tally(), "openai-sdk": Tally()}

        def record(user: str, client: str, cost: str, day, uncached, cached, written, output, agentic_session: bool):
            tallies[user].add(cost, day, uncached, cached, written, output, agentic_session)
            by_client[client].add(cost, day, uncached, cached, written, output, agentic_session)

        def claude_code(session: str, messages: list, day):
            c = gw.anthropic(keys["ada"], default_headers={**CLAUDE_HEADERS, "x-claude-code-session-id": session})
            m = c.messages.create(model="claude-fake", max_tokens=32000, tools=TOOLS_ANTHROPIC, messages=messages,
                                  system=[{"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."}],
                                  metadata={"user_id": f"user_abc_account__session_{session}"})
            c.close()
            u = m.usage
            read, write = u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0
            record(ada, "claude-cli", expected_anthropic_cost(u.input_tokens, read, write, u.output_tokens), day,
                   u.input_tokens, read, write, u.output_tokens, True)
            return m

        def ask(person: str, messages: list, day, agentic_session: bool, **kw):
            c = gw.client(keys[person])
            resp = c.chat.completions.create(model="fake-mini", messages=messages, **kw)
            c.close()
            u = resp.usage
            cached = (u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else 0) or 0
            record(f"{person}-{n}", "openai-sdk", expected_cost("fake-mini", u.prompt_tokens, cached, u.completion_tokens), day,
                   u.prompt_tokens - cached, cached, 0, u.completion_tokens, agentic_session)
            return resp

        # Monday: ada's session S1, a tool loop.
        advance_to(gw, monday)
        s1 = f"s1-{n}"
        first = [{"role": "user", "content": "fix the build CACHE_READ 400 TOOL_USE Bash"}]
        m1 = claude_code(s1, first, monday.date())
        tool_use = next(b for b in m1.content if b.type == "tool_use")
        loop = first + [{"role": "assistant", "content": [{"type": "tool_use", "id": tool_use.id, "name": "Bash", "input": {}}]},
                        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "ok"},
                                                     {"type": "text", "text": "CACHE_READ 800"}]}]
        claude_code(s1, loop, monday.date())
        claude_code(s1, loop + [{"role": "assistant", "content": "done"},
                                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "again"},
                                                             {"type": "text", "text": "CACHE_READ 900"}]}], monday.date())
        # otto's agent: a tool call and its result (one session), then 36 minutes later a new session.
        otto_system = {"role": "system", "content": "You are otto's release agent."}
        ask("otto", [otto_system, {"role": "user", "content": "weather in Paris? CACHED 4"}], monday.date(), True, tools=TOOLS_OPENAI)
        advance(gw, 60)
        ask("otto", [otto_system, {"role": "user", "content": "weather in Paris?"},
                     {"role": "assistant", "content": None,
                      "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
                     {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}], monday.date(), True, tools=TOOLS_OPENAI)
        # quinn: two questions five minutes apart.
        ask("quinn", [{"role": "user", "content": "what is a monad? REPLY_WORDS 9"}], monday.date(), False)
        advance(gw, 300)
        ask("quinn", [{"role": "user", "content": "and a functor?"}], monday.date(), False)
        advance(gw, 31 * 60)
        ask("otto", [otto_system, {"role": "user", "content": "summarise the release notes"}], monday.date(), False, tools=TOOLS_OPENAI)

        # Tuesday: ada's session S2 (tools offered, no result yet: agentic by its client); quinn asks once more.
        advance_to(gw, tuesday)
        s2 = f"s2-{n}"
        claude_code(s2, [{"role": "user", "content": "write the changelog CACHE_READ 100"}], tuesday.date())
        claude_code(s2, [{"role": "user", "content": "write the changelog CACHE_READ 100"},
                         {"role": "assistant", "content": "Which release?"},
                         {"role": "user", "content": "1.4 CACHE_WRITE 50"}], tuesday.date())
        ask("quinn", [{"role": "user", "content": "how do I revert a commit?"}], tuesday.date(), False)

        # The Monday after, outside the window below: only in the trend.
        advance_to(gw, next_monday)
        c = gw.client(keys["quinn"])
        c.chat.completions.create(model="fake-mini", messages=[{"role": "user", "content": "one more question"}])
        c.close()

        window = {"from": monday.date().isoformat(), "to": (tuesday + timedelta(days=1)).date().isoformat()}
        wait_for_rows(gw, 12)

        # The ledger rows carry what the report reads.
        rows = {r["user"]: [] for r in gw.admin.all_requests()}
        for r in gw.admin.all_requests():
            rows[r["user"]].append(r)
        assert {r["client"] for r in rows[ada]} == {"claude-cli"}
        assert sorted(r["session_id"] for r in rows[ada]) == sorted([s1] * 3 + [s2] * 2)
        assert all(r["tools_offered"] == 3 for r in rows[ada])
        assert sorted(r["tool_results"] for r in rows[ada]) == [False, False, False, True, True]
        assert sorted(r["messages"] for r in rows[ada]) == [1, 1, 3, 3, 5]
        assert {r["client"] for r in rows[otto]} == {"openai-sdk"} and all(r["session_id"] is None for r in rows[otto])
        assert sorted(r["messages"] for r in rows[otto]) == [2, 2, 4] and all(r["tools_offered"] == 2 for r in rows[otto])

        # Per user: sessions are S1, S2 (ada); the tool loop and the one after the gap (otto); Monday's and
        # Tuesday's (quinn).
        sessions = {ada: (2, 2), otto: (2, 1), quinn: (2, 0)}
        report = gw.admin._ok(gw.admin.http.get("/admin/usage", params={"group_by": "user", **window}), 200).json()
        got = {row["group"]: row for row in report["data"]}
        assert set(got) == {ada, otto, quinn}
        for user, tally in tallies.items():
            check_row(got[user], tally, *sessions[user])
        assert got[quinn]["budget_limit_usd"] == "50" and got[quinn]["budget_period"] == "month"
        assert got[ada]["budget_limit_usd"] is None
        assert [row["group"] for row in report["data"]] == sorted(tallies, key=lambda u: (-tallies[u].cost, u))

        by_team = gw.admin._ok(gw.admin.http.get("/admin/usage", params={"group_by": "team", **window}), 200).json()["data"]
        assert [row["group"] for row in by_team] == [team]
        whole = Tally()
        for tally in tallies.values():
            for field in ("requests", "agentic_requests", "tokens", "input_tokens", "cached"):
                setattr(whole, field, getattr(whole, field) + getattr(tally, field))
            whole.cost += tally.cost
            whole.agentic_cost += tally.agentic_cost
            whole.days |= tally.days
        check_row(by_team[0], whole, 6, 3)

        by_client_rows = {row["group"]: row for row in
                          gw.admin._ok(gw.admin.http.get("/admin/usage", params={"group_by": "client", **window}), 200).json()["data"]}
        assert set(by_client_rows) == {"claude-cli", "openai-sdk"}
        check_row(by_client_rows["claude-cli"], by_client["claude-cli"], 2, 2)
        check_row(by_client_rows["openai-sdk"], by_client["openai-sdk"], 4, 1)

        # The weekly trend: ada and otto of the three ran an agentic session in the first week; quinn alone in the next.
        trend = gw.admin._ok(gw.admin.http.get("/admin/usage/trend"), 200).json()["data"]
        mine = [w for w in trend if w["team"] == team]
        y1, w1, _ = monday.isocalendar()
        y2, w2, _ = next_monday.isocalendar()
        assert [(w["week"], w["week_start"], w["people"], w["agentic_people"]) for w in mine] == [
            (f"{y1}-W{w1:02d}", monday.date().isoformat(), 3, 2), (f"{y2}-W{w2:02d}", next_monday.date().isoformat(), 1, 0)]
        assert abs(mine[0]["agentic_share"] - 2 / 3) < 1e-4 and mine[1]["agentic_share"] == 0

        # The command line: the same report as JSON, as CSV and as a table; the trend as a table.
        env_url = gw.url
        out = tollgate("usage", "--by", "user", "--from", window["from"], "--to", window["to"], "--json", url=env_url)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == report
        out = tollgate("usage", "--by", "user", "--from", window["from"], "--to", window["to"], "--csv", url=env_url)
        assert out.returncode == 0, out.stderr
        lines = list(csv.DictReader(io.StringIO(out.stdout)))
        assert {l["group"]: (int(l["sessions"]), int(l["agentic_sessions"]), l["cost_per_active_day_usd"]) for l in lines} == {
            u: (*sessions[u], per_day_money(t)) for u, t in tallies.items()}
        out = tollgate("usage", "--by", "user", "--from", window["from"], "--to", window["to"], url=env_url)
        assert out.returncode == 0, out.stderr
        table = out.stdout.splitlines()
        assert "sessions" in table[0] and "$/active day" in table[0]
        ada_line = next(l for l in table if l.startswith(ada))
        assert f"${per_day_money(tallies[ada])}" in ada_line and "100.0 %" in ada_line
        assert "$50/month" in next(l for l in table if l.startswith(quinn))
        out = tollgate("usage", "--trend", url=env_url)
        assert out.returncode == 0, out.stderr
        week_line = next(l for l in out.stdout.splitlines() if l.startswith(team) and f"W{w1:02d}" in l)
        assert "66.7 %" in week_line
        bad = tollgate("usage", "--by", "model", url=env_url)
        assert bad.returncode != 0 and "group_by must be one of user, team, client" in bad.stderr
    finally:
        gw.stop()


def per_day_money(t: Tally) -> str:
    return fmt_money((t.cost / len(t.days)).quantize(Decimal("0.000000001"), rounding=ROUND_HALF_UP))


def check_row(row: dict, t: Tally, sessions: int, agentic_sessions: int):
    days = len(t.days)
    want = {
        "requests": t.requests, "sessions": sessions, "agentic_sessions": agentic_sessions,
        "assisted_sessions": sessions - agentic_sessions, "agentic_requests": t.agentic_requests,
        "active_days": days, "cost_usd": fmt_money(t.cost), "agentic_cost_usd": fmt_money(t.agentic_cost),
        "cost_per_active_day_usd": per_day_money(t), "tokens": t.tokens,
        "tokens_per_active_day": (2 * t.tokens + days) // (2 * days),
        "input_tokens": t.input_tokens, "cached_input_tokens": t.cached,
    }
    assert {k: row[k] for k in want} == want, row
    assert abs(row["agentic_request_share"] - t.agentic_requests / t.requests) < 1e-4, row
    assert abs(row["agentic_cost_share"] - float(t.agentic_cost / t.cost)) < 1e-4, row
    assert abs(row["cached_input_share"] - t.cached / t.input_tokens) < 1e-4, row


def wait_for_rows(gw, count: int, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(gw.admin.all_requests()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} ledger rows after {timeout}s")
