"""Fills a Tollgate SQLite database with a generated month of traffic, for the dashboard's browser test and its
benchmark: teams, users and keys made through the admin API (real entities), then ledger rows written straight
into the `requests` table, and the per-day rollups rebuilt by the gateway's own migration on its next start
(the rollup tables are dropped and their migration forgotten, so the real backfill code runs).

    python seed_ledger.py DB_PATH --rows N --end-ms MS --days D      (entities from --entities FILE.json)
"""
from __future__ import annotations

import argparse
import json
import random
import sqlite3

# name -> (provider, input, cached input, output) in nano-dollars per million tokens... per token here: USD/Mtok
MODELS = {
    "gpt-4o": ("openai", 2.50, 1.25, 10.0),
    "gpt-4o-mini": ("openai", 0.15, 0.075, 0.60),
    "claude-sonnet-4-5": ("anthropic", 3.0, 0.30, 15.0),
    "local-llama": ("openai-compatible", 0.0, 0.0, 0.0),
}
NANO_PER_USD_PER_MTOK = 1000  # $1 per million tokens = 1,000 nano-dollars per token


def price_nanos(model: str, uncached: int, cached: int, output: int) -> int:
    _, p_in, p_cached, p_out = MODELS[model]
    total = uncached * round(p_in * 1000) + cached * round(p_cached * 1000) + output * round(p_out * 1000)
    return total  # nano-dollars (prices × 1000 per token are whole numbers for these prices)


def seed(db_path: str, entities: list[dict], rows: int, end_ms: int, days: int, seed_value: int = 7) -> dict:
    """entities: [{"user", "user_id", "team", "team_id", "org_id", "key_id", "weight", "agentic"}]. Returns totals
    per user, team and model (requests, cost nanos) for the tests to compare with."""
    rng = random.Random(seed_value)
    start_ms = end_ms - days * 86_400_000
    weights = [e["weight"] for e in entities]
    totals: dict = {"user": {}, "team": {}, "model": {}, "all": [0, 0]}
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode=WAL")
    cols = ("id, created_at, endpoint, key_id, user_id, user_name, team_id, team_name, org_id, requested_model, model, "
            "provider, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, "
            "reasoning_tokens, usage_estimated, cost_nanos, baseline_cost_nanos, status, latency_ms, ttft_ms, stream, tags, "
            "agentic, route, route_reason, error, client, tools_offered, tool_results, messages")
    sql = f"INSERT INTO requests ({cols}) VALUES ({', '.join('?' * 34)})"
    batch = []
    model_names = list(MODELS)
    for n in range(rows):
        e = rng.choices(entities, weights)[0]
        t = rng.randrange(start_ms, end_ms)
        weekday = ((t // 86_400_000) + 3) % 7 < 5  # 1970-01-01 was a Thursday
        if not weekday and rng.random() < 0.85:
            t = t - 2 * 86_400_000 if t - 2 * 86_400_000 >= start_ms else t + 2 * 86_400_000  # agents rest at weekends
            if t >= end_ms:
                t = end_ms - 1
        route = "auto" if rng.random() < 0.3 else None
        if route:
            model = "gpt-4o" if rng.random() < 0.35 else "gpt-4o-mini"
            reason = "learned p=0.71" if model == "gpt-4o" else "learned p=0.22"
        else:
            model = rng.choices(model_names, [3, 4, 3, 1])[0]
            reason = None
        if rng.random() < 0.01:
            reason = "fallback after 503"
        agentic = e["agentic"] and rng.random() < 0.8
        inp = rng.randint(200, 40_000 if agentic else 3_000)
        cached = rng.randint(0, inp // 2) if agentic else 0
        out = rng.randint(20, 1_500)
        status = 200 if rng.random() > 0.02 else rng.choice([429, 502])
        cost = price_nanos(model, inp - cached, cached, out) if status == 200 else 0
        baseline = price_nanos("gpt-4o", inp - cached, cached, out) if route and status == 200 else None
        tags = json.dumps(["agent"] if agentic else ["chat"])
        stream = 1 if rng.random() < 0.6 else 0
        batch.append((f"req_seed{n:012x}", t, "chat.completions", e["key_id"], e["user_id"], e["user"], e["team_id"],
                      e["team"], e["org_id"], route or model, model, MODELS[model][0], inp - cached, cached, 0, 0, out, 0, 0,
                      cost, baseline, status, rng.randint(200, 9000), rng.randint(100, 900) if stream else None, stream, tags,
                      1 if agentic else 0, route, reason, None if status == 200 else f"upstream answered {status}",
                      # People marked agentic work in Claude Code (tool loops); the others ask through the OpenAI SDK.
                      "claude-cli" if e["agentic"] else "openai-sdk", 12 if agentic else 0, 1 if agentic else 0,
                      rng.randint(3, 40) if agentic else rng.randint(1, 4)))
        for group, key in (("user", e["user"]), ("team", e["team"]), ("model", model)):
            entry = totals[group].setdefault(key, [0, 0])
            entry[0] += 1
            entry[1] += cost
        totals["all"][0] += 1
        totals["all"][1] += cost
        if len(batch) >= 20_000:
            con.executemany(sql, batch)
            batch.clear()
    if batch:
        con.executemany(sql, batch)
    # The rollups are rebuilt from these rows by the gateway's own migration on its next start.
    con.execute("DROP TABLE IF EXISTS spend_daily")
    con.execute("DROP TABLE IF EXISTS spend_daily_tags")
    con.execute("DELETE FROM grdb_migrations WHERE identifier = 'v7-spend-rollups'")
    con.commit()
    con.close()
    return totals


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--entities", required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--end-ms", type=int, required=True)
    parser.add_argument("--days", type=int, default=30)
    a = parser.parse_args()
    print(json.dumps(seed(a.db, json.load(open(a.entities)), a.rows, a.end_ms, a.days)["all"]))
