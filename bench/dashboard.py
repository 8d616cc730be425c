#!/usr/bin/env python3
"""Dashboard render times on a month of traffic: a gateway whose ledger holds ROWS requests (default 1,000,000)
over 30 days, 12 teams and 240 people, then every dashboard page (and /admin/spend) asked for the whole month,
REPEAT times each, timed from a client on loopback. The rows are written straight into SQLite by
tests/e2e/seed_ledger.py; the gateway's own migration then builds the per-day rollups from them on start
(that start is timed too).

    bench/dashboard.py [--binary .build/release/tollgate] [--rows 1000000] [--repeat 10] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
import seed_ledger  # noqa: E402

ADMIN = "bench-admin-key"
PAGES = ["/dashboard", "/dashboard/people", "/dashboard/adoption", "/dashboard/models", "/dashboard/routing", "/dashboard/requests",
         "/dashboard/requests?user=user-7", "/dashboard/requests?model=claude-sonnet-4-5&status=502",
         "/dashboard/deployments", "/admin/spend?group_by=user", "/admin/spend?group_by=day",
         "/admin/usage?group_by=user", "/admin/usage/trend"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.read()


CONFIG = ("models:\n  - { name: local-llama, provider: openai-compatible, base_url: \"http://127.0.0.1:9/v1\", price: free }\n"
          "routes:\n  auto: { strategy: fallback, models: [local-llama] }\n")


def start(binary: str, folder: Path, port: int, config_text: str = CONFIG) -> tuple[subprocess.Popen, float]:
    config = folder / "tollgate.yaml"
    config.write_text(config_text)
    env = {**os.environ, "TOLLGATE_ADMIN_KEY": ADMIN}
    began = time.monotonic()
    proc = subprocess.Popen([binary, "serve", "--config", str(config), "--port", str(port), "--db", f"sqlite:{folder / 'bench.db'}"],
                            env=env, stdout=open(folder / "gateway.log", "ab"), stderr=subprocess.STDOUT)
    while True:
        try:
            if call(f"http://127.0.0.1:{port}/health")[0] == 200:
                return proc, time.monotonic() - began
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"the gateway exited: {(folder / 'gateway.log').read_text()[-2000:]}")
            time.sleep(0.1)


def stop(proc: subprocess.Popen):
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


def people(base: str) -> list[dict]:
    """12 teams of 20 people, each with a key, made through the admin API: the entities seed_ledger writes rows for."""
    (org,) = [o["id"] for o in json.loads(call(base + "/admin/orgs")[1])["data"]]
    entities = []
    for t in range(12):
        team = json.loads(call(base + "/admin/teams", "POST", {"name": f"team-{t}"})[1])
        for u in range(20):
            name = f"user-{t * 20 + u}"
            user = json.loads(call(base + "/admin/users", "POST", {"name": name, "team": team["name"]})[1])
            key = json.loads(call(base + "/admin/keys", "POST", {"user": name})[1])
            entities.append({"user": name, "user_id": user["id"], "team": team["name"], "team_id": team["id"], "org_id": org,
                             "key_id": key["id"], "weight": 1 + (t * 20 + u) % 7, "agentic": u % 3 != 0})
    return entities


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(HERE.parent / ".build" / "release" / "tollgate"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tollgate-dashboard-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, _ = start(args.binary, folder, port)
    entities = people(base)
    for t in range(12):
        call(base + "/admin/budgets", "POST", {"scope": "team", "name": f"team-{t}", "limit_usd": "20000", "period": "month"})
    stop(proc)
    began = time.monotonic()
    seed_ledger.seed(str(folder / "bench.db"), entities, rows=args.rows, end_ms=int(time.time() * 1000), days=30)
    seeded = time.monotonic() - began
    proc, started = start(args.binary, folder, port)
    now = time.time()
    window = f"from={time.strftime('%Y-%m-%d', time.gmtime(now - 29 * 86400))}&to={time.strftime('%Y-%m-%d', time.gmtime(now))}"
    results = []
    try:
        for page in PAGES:
            url = base + page + (("&" if "?" in page else "?") + window if not page.startswith("/dashboard/requests")
                                 and not page.startswith("/dashboard/deployments") and page.startswith("/dashboard") else "")
            if page.startswith("/admin/spend"):
                url += f"&from={time.strftime('%Y-%m-%d', time.gmtime(now - 29 * 86400))}"
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                status, body = call(url)
                times.append((time.perf_counter() - t0) * 1000)
                assert status == 200, (url, status)
            results.append({"page": page, "median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
                            "bytes": len(body)})
    finally:
        stop(proc)
    db_bytes = sum(f.stat().st_size for f in folder.glob("bench.db*"))
    report = {"rows": args.rows, "binary": args.binary, "seed_s": round(seeded, 1), "start_with_rollup_backfill_s": round(started, 1),
              "database_mb": round(db_bytes / 1e6, 1), "pages": results}
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "dashboard.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Dashboard render times, {args.rows:,} ledger rows over 30 days", "",
             f"Binary `{Path(args.binary).relative_to(HERE.parent) if HERE.parent in Path(args.binary).parents else args.binary}`; "
             f"start with the rollup backfill {started:.1f} s; database {db_bytes / 1e6:.0f} MB; {args.repeat} requests per page, "
             "client on loopback.", "", "| page | median ms | max ms | bytes |", "|---|---:|---:|---:|"]
    lines += [f"| `{r['page']}` | {r['median_ms']} | {r['max_ms']} | {r['bytes']:,} |" for r in results]
    (out / "dashboard.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"kept {folder}")


if __name__ == "__main__":
    main()
