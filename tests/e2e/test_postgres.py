"""The real binary on PostgreSQL: it serves and bills a request into a ledger kept in PostgreSQL, reports spend
from it, migrates with `tollgate db migrate`, and refuses to start, in one line naming the server, when the
server cannot be reached."""
from __future__ import annotations

import os
import subprocess
from decimal import Decimal
from urllib.parse import urlsplit

import httpx

import fake_upstream as fu
from conftest import (ADMIN_KEY, assert_row_matches_usage, expected_cost, free_port, fresh_pg_database,
                      gateway_bin, gateway_config, nonce, psql, requires_pg, start_gateway)

pytestmark = requires_pg


def run_tollgate(*args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "TOLLGATE_ADMIN_KEY": ADMIN_KEY, **(env or {})}
    return subprocess.run([str(gateway_bin()), *args], capture_output=True, text=True, timeout=timeout, env=full_env,
                          stdin=subprocess.DEVNULL)


def test_a_request_is_served_billed_into_postgres_and_reported(tmp_path, fake):
    db = fresh_pg_database()
    gw = start_gateway(tmp_path / "gw", gateway_config(fake.port), db=db)
    try:
        health = httpx.get(gw.url + "/health", timeout=5).json()
        assert health["status"] == "ok" and health["database"] == "postgres" and health["database_reachable"] is True, health

        ident = gw.admin.new_identity()
        msgs = [{"role": "user", "content": f"on postgres {nonce()} REPLY_WORDS 9"}]
        r = httpx.post(gw.v1 + "/chat/completions", timeout=15, headers={"Authorization": f"Bearer {ident.key}"},
                       json={"model": "fake-gpt", "messages": msgs})
        assert r.status_code == 200, r.text
        rid = r.headers["x-tollgate-request-id"]
        cost = expected_cost("fake-gpt", fu.prompt_tokens_for(msgs), 0, 9)
        assert r.headers["x-tollgate-cost-usd"] == cost

        # The row the admin API pages is the one in PostgreSQL, cost in integer nano-dollars.
        assert_row_matches_usage(gw.ledger_row(rid), "fake-gpt", fu.chat_usage(msgs))
        stored = psql(db, f"SELECT user_name, model, output_tokens, cost_nanos FROM requests WHERE id = '{rid}'")
        assert stored == f"{ident.user}|fake-gpt|9|{int(Decimal(cost) * 10**9)}"

        spend = gw.admin.spend("user").json()["data"]
        assert [(row["user"], row["requests"], row["cost_usd"]) for row in spend] == [(ident.user, 1, cost)]
        # What other instances follow: the key made above is in the change feed.
        assert psql(db, f"SELECT kind FROM changes WHERE subject = '{ident.key_id}'") == "key"
    finally:
        gw.stop()
    assert urlsplit(db).password not in gw.log_tail(1_000_000)


def test_db_migrate_applies_the_schema_once(tmp_path):
    db = fresh_pg_database()
    first = run_tollgate("db", "migrate", "--db", db)
    assert first.returncode == 0, first.stderr
    assert "applied migration 1 " in first.stdout, first.stdout
    assert urlsplit(db).password not in first.stdout + first.stderr
    # TOLLGATE_DB names the database as well; the schema is current now.
    again = run_tollgate("db", "migrate", env={"TOLLGATE_DB": db})
    assert again.returncode == 0 and "the schema is up to date" in again.stdout, again
    assert psql(db, "SELECT count(*) FROM schema_migrations WHERE version = 1") == "1"
    assert psql(db, "SELECT name FROM orgs") == "default"


def test_an_unreachable_postgres_stops_the_start_with_one_clear_line(tmp_path, fake):
    port = free_port()  # nothing listens there
    url = f"postgres://tollgate:not-a-real-secret@127.0.0.1:{port}/tollgate"
    (tmp_path / "tollgate.yaml").write_text(gateway_config(fake.port))
    serve = run_tollgate("serve", "--config", str(tmp_path / "tollgate.yaml"), "--port", str(free_port()), "--db", url)
    assert serve.returncode != 0
    lines = [line for line in serve.stderr.splitlines() if line.startswith("tollgate:")]
    assert len(lines) == 1, serve.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "cannot reach PostgreSQL" in lines[0], lines[0]
    assert "not-a-real-secret" not in serve.stdout + serve.stderr

    migrate = run_tollgate("db", "migrate", "--db", url)
    assert migrate.returncode != 0 and f"127.0.0.1:{port}" in migrate.stderr, migrate
    assert "not-a-real-secret" not in migrate.stdout + migrate.stderr
