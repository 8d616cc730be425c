"""The memory scale test: Tollgate's RSS with many keys and budgets loaded, then with many streams held open.

The database is migrated by Tollgate itself (one start and stop on an empty file), then filled in one SQLite
transaction with the columns of Sources/TollgateStore/SQLiteStore.swift: users in teams, keys (only the SHA-256
of the plain key is stored, as the gateway does), and monthly USD budgets on users and teams.
"""
import hashlib, os, secrets, sqlite3, threading, time

import loads, procs


def _id(prefix):
    return prefix + "_" + secrets.token_hex(8)


def seed(db_path, keys, budgets, teams=100, keep=5000):
    """Fills a migrated database; returns the first `keep` plain keys (key i belongs to user i mod users)."""
    users = max(budgets, 1)
    now = int(time.time() * 1000)
    db = sqlite3.connect(db_path)
    try:
        (org_id,) = db.execute("SELECT id FROM orgs WHERE name = 'default'").fetchone()
        team_ids = [_id("team") for _ in range(teams)]
        db.executemany("INSERT INTO teams (id, name, org_id, created_at) VALUES (?, ?, ?, ?)",
                       [(t, "scale-team-%d" % i, org_id, now) for i, t in enumerate(team_ids)])
        user_ids = [_id("user") for _ in range(users)]
        db.executemany("INSERT INTO users (id, name, team_id, org_id, created_at) VALUES (?, ?, ?, ?, ?)",
                       [(u, "scale-user-%d" % i, team_ids[i % teams], org_id, now) for i, u in enumerate(user_ids)])
        plain_first = []
        rows = []
        for i in range(keys):
            plain = "tg-" + secrets.token_hex(24)
            if i < keep:
                plain_first.append(plain)
            u = i % users
            rows.append((_id("key"), None, hashlib.sha256(plain.encode()).hexdigest(), plain[:9], user_ids[u],
                         team_ids[u % teams], org_id, None, None, None, None, None, now))
        db.executemany("""INSERT INTO keys (id, name, hash_hex, prefix, user_id, team_id, org_id, allowed_models,
                          expires_at, revoked_at, rpm, tpm, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", rows)
        # Budgets: one per team, the rest on users; generous monthly USD limits, strict mode, reject.
        subjects = [("team", t, "scale-team-%d" % i) for i, t in enumerate(team_ids)][:budgets]
        subjects += [("user", u, "scale-user-%d" % i) for i, u in enumerate(user_ids)][:budgets - len(subjects)]
        db.executemany("""INSERT INTO budgets (id, scope, subject_id, subject_name, model, limit_usd_nanos, limit_tokens,
                          period, time_zone, mode, on_exhaust, soft_threshold_ppm, grace_usd_nanos, annual_salary_usd_nanos,
                          salary_share_ppm, soft_crossed_at, soft_window_start, created_at, updated_at)
                          VALUES (?, ?, ?, ?, '', ?, NULL, 'month', 'UTC', 'strict', 'reject', NULL, 0, NULL, NULL, NULL, NULL, ?, ?)""",
                       [(_id("budget"), scope, sid, name, 1000 * 10**9, now, now) for scope, sid, name in subjects])
        db.commit()
    finally:
        db.close()
    return plain_first


def run(ps, tools, binary, workdir, keys, budgets, streams, hold_s):
    """Returns the scale figures (RSS in MB)."""
    result = {"keys": keys, "budgets": budgets, "streams_target": streams}
    # A slow upstream: streams that last far longer than the test (50 events 0.5 s apart).
    slow_port, port = procs.free_port(), procs.free_port()
    slow = procs.start_fakeup(ps, tools, "fakeup-slow", slow_port, chunks=50, pace_us=500_000)
    db_path = os.path.join(workdir, "scale.db")
    config = procs.tollgate_config(slow_port)

    # An empty gateway first: its RSS is the baseline, and it migrates the database.
    gw = procs.start_tollgate(ps, binary, workdir, "tollgate-scale-empty", port, config, "sqlite:" + db_path)
    time.sleep(1)
    result["rss_empty_mb"] = procs.rss_mb(gw.pid)
    ps.stop(gw)

    started = time.time()
    plain = seed(db_path, keys, budgets, keep=streams)
    result["seed_s"] = round(time.time() - started, 2)

    started = time.time()
    gw = procs.start_tollgate(ps, binary, workdir, "tollgate-scale", port, config, "sqlite:" + db_path)
    result["startup_s"] = round(time.time() - started, 2)
    listing = procs.admin(port, "GET", "/admin/budgets")
    result["budgets_loaded"] = len(listing.get("data", []))
    time.sleep(1)
    result["rss_loaded_mb"] = procs.rss_mb(gw.pid)

    # `streams` streams at once, each with its own key (of a user or team with a budget), held open.
    n = min(streams, len(plain))
    request_file = os.path.join(workdir, "scale-streams.req")
    with open(request_file, "wb") as f:
        f.write(b"\0".join(loads.http_requests([loads.bodies("bench", True)[1]], {"Authorization": "Bearer " + k})
                           for k in plain[:n]))
    procs.reset_peak_rss(gw.pid)
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            samples.append((procs.established(port), procs.rss_mb(gw.pid), procs.established(slow_port)))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        load = loads.tgload(tools["tgload"], port, request_file, hold_s, connections=n, threads=2, stream=True)
    finally:
        stop.set()
        sampler.join()
    result["streams_open_max"] = max((s[0] for s in samples), default=0)
    result["timeline"] = [{"connections": c, "rss_mb": round(r, 1), "upstream_connections": u} for c, r, u in samples]
    result["streams_started"] = load["first_bytes"]
    result["ttft_p50_ms"], result["ttft_p99_ms"] = load["ttft_p50_ms"], load["ttft_p99_ms"]
    open_rss = [r for c, r, _ in samples if c >= n * 0.99]
    result["rss_streams_mb"] = max(open_rss) if open_rss else None
    result["peak_rss_streams_mb"] = procs.peak_rss_mb(gw.pid)
    time.sleep(1)
    result["rss_after_mb"] = procs.rss_mb(gw.pid)
    ps.stop(gw)
    ps.stop(slow)
    return result
