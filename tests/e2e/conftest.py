"""Fixtures for Tollgate's end-to-end suite: a fake upstream, the real gateway binary, an admin client and
the ledger.

The gateway binary is $TOLLGATE_BIN, else <repo>/.build/debug/tollgate. Nothing here is skipped: a missing
binary or a gateway that does not come up is an error naming the cause (with the gateway's log).
"""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import fake_upstream as fu  # noqa: E402

ADMIN_KEY = "admin-test-key"
UPSTREAM_KEY = "sk-upstream-secret"
ANTHROPIC_UPSTREAM_KEY = "sk-ant-upstream"
LEDGER_TIMEOUT = 5.0
HEALTH_TIMEOUT = 30.0
STOP_GRACE = 10.0

# name -> (input, cached input, output) in USD per million tokens, as in the config below
PRICES = {
    "fake-gpt": (Decimal("2.50"), Decimal("1.25"), Decimal("10")),
    "fake-mini": (Decimal("0.15"), Decimal("0.075"), Decimal("0.60")),
    "fake-embed": (Decimal("0.02"), Decimal("0"), Decimal("0")),
    "fake-tls": (Decimal("0.15"), Decimal("0.075"), Decimal("0.60")),
    "claude-fake": (Decimal("3"), Decimal("0.30"), Decimal("15")),
}
# name -> cache write price in USD per million tokens (models that bill cache writes)
CACHE_WRITE_PRICES = {
    "claude-fake": Decimal("3.75"),
}
ALL_MODELS = {"fake-gpt", "fake-mini", "fake-embed", "claude-fake"}


def gateway_config(up_port: int, extra_models: str = "") -> str:
    base = f"http://127.0.0.1:{up_port}/v1"
    return f"""\
server: {{ max_body_bytes: 1048576, timeouts: {{ connect_ms: 2000, first_byte_ms: 3000, idle_ms: 5000 }} }}
ledger: {{ flush_ms: 50 }}
models:
  - {{ name: fake-gpt, provider: openai-compatible, base_url: "{base}", api_key: "{UPSTREAM_KEY}", upstream_model: fake-gpt-upstream, price: {{ input_per_mtok: "2.50", cached_input_per_mtok: "1.25", output_per_mtok: "10" }} }}
  - {{ name: fake-mini, provider: openai-compatible, base_url: "{base}", api_key: "{UPSTREAM_KEY}", price: {{ input_per_mtok: "0.15", cached_input_per_mtok: "0.075", output_per_mtok: "0.60" }} }}
  - {{ name: fake-embed, provider: openai-compatible, base_url: "{base}", api_key: "{UPSTREAM_KEY}", price: {{ input_per_mtok: "0.02", output_per_mtok: "0" }} }}
  - {{ name: claude-fake, provider: anthropic, base_url: "http://127.0.0.1:{up_port}", api_key: "{ANTHROPIC_UPSTREAM_KEY}", upstream_model: claude-fake-upstream, price: {{ input_per_mtok: "3", cached_input_per_mtok: "0.30", cache_write_per_mtok: "3.75", output_per_mtok: "15" }} }}
{extra_models}"""


# ------------------------------------------------------------------------------------------------ money

def fmt_money(d: Decimal) -> str:
    """A decimal string without exponent and without trailing zeros, as the gateway writes money."""
    d = d.quantize(Decimal("0.000000001"), rounding=ROUND_HALF_UP)
    s = format(d.normalize(), "f")
    return "0" if s in ("-0", "0") else s


def expected_cost(model: str, prompt_tokens: int, cached_tokens: int = 0, completion_tokens: int = 0) -> str:
    """OpenAI convention: prompt_tokens includes the cached ones; reasoning is inside completion_tokens."""
    p_in, p_cached, p_out = PRICES[model]
    uncached = prompt_tokens - cached_tokens
    total = (Decimal(uncached) * p_in + Decimal(cached_tokens) * p_cached
             + Decimal(completion_tokens) * p_out) / Decimal(10**6)
    return fmt_money(total)


def expected_anthropic_cost(input_tokens: int, cache_read: int = 0, cache_write: int = 0, output_tokens: int = 0,
                            model: str = "claude-fake") -> str:
    """Anthropic convention: input_tokens EXCLUDES cache reads and writes; each is priced at its own rate."""
    p_in, p_read, p_out = PRICES[model]
    p_write = CACHE_WRITE_PRICES[model]
    total = (Decimal(input_tokens) * p_in + Decimal(cache_read) * p_read + Decimal(cache_write) * p_write
             + Decimal(output_tokens) * p_out) / Decimal(10**6)
    return fmt_money(total)


def assert_row_matches_anthropic_usage(row: dict, usage: dict, model: str = "claude-fake"):
    """The ledger row carries this Anthropic-style usage and its exact cost."""
    inp = usage["input_tokens"]
    read = usage.get("cache_read_input_tokens") or 0
    write = usage.get("cache_creation_input_tokens") or 0
    out = usage.get("output_tokens", 0)
    want = {
        "model": model,
        "provider": "anthropic",
        "input_tokens": inp,
        "cached_input_tokens": read,
        "cache_write_tokens": write,
        "output_tokens": out,
        "cost_usd": expected_anthropic_cost(inp, read, write, out, model),
    }
    got = {k: row.get(k) for k in want}
    assert got == want, f"ledger row {row.get('id')}: got {got}, want {want}\nrow: {row}"


def assert_row_matches_usage(row: dict, model: str, usage: dict):
    """The ledger row carries this OpenAI-style usage and its exact cost."""
    prompt = usage["prompt_tokens"]
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    completion = usage.get("completion_tokens", 0)
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    want = {
        "model": model,
        "input_tokens": prompt - cached,
        "cached_input_tokens": cached,
        "output_tokens": completion,
        "cost_usd": expected_cost(model, prompt, cached, completion),
    }
    got = {k: row.get(k) for k in want}
    assert got == want, f"ledger row {row.get('id')}: got {got}, want {want}\nrow: {row}"
    if reasoning:
        assert row.get("reasoning_tokens") == reasoning, row


def nonce() -> str:
    return "n" + uuid.uuid4().hex[:12]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 6000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return "(no log)"
    return data[-n:].decode("utf-8", errors="replace")


# ------------------------------------------------------------------------------------------ fake upstream

class FakeUpstream:
    def __init__(self, proc: subprocess.Popen, port: int, scheme: str, verify, log: Path):
        self.proc, self.port, self.scheme, self.log = proc, port, scheme, log
        self.url = f"{scheme}://127.0.0.1:{port}"
        self.v1 = self.url + "/v1"
        self.http = httpx.Client(base_url=self.url, timeout=10.0, verify=verify)

    def requests(self) -> list[dict]:
        r = self.http.get("/_requests")
        r.raise_for_status()
        return r.json()

    def reset(self):
        self.http.post("/_reset").raise_for_status()

    def connections(self) -> dict:
        r = self.http.get("/_connections")
        r.raise_for_status()
        return r.json()

    def find(self, marker: str) -> list[dict]:
        """The upstream requests whose body contains marker (e.g. a test's nonce)."""
        return [r for r in self.requests() if marker in r["body"]]

    def wait_conn_closed(self, conn_id: int, timeout: float = 5.0, by: str = "peer") -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            c = self.connections()
            if conn_id in c["closed_by_" + by]:
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()


def start_fake(tmp: Path, name: str = "fake", tls: dict | None = None) -> FakeUpstream:
    """Starts fake_upstream.py on a random port (with TLS when tls = {"cert", "key", "ca"} paths)."""
    cmd = [sys.executable, str(HERE / "fake_upstream.py"), "--port", "0"]
    verify = True
    if tls:
        cmd += ["--tls-cert", str(tls["cert"]), "--tls-key", str(tls["key"])]
        import ssl
        verify = ssl.create_default_context(cafile=str(tls["ca"]))
    log = tmp / f"{name}.log"
    with open(log, "wb") as errf:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL)
    ready, _, _ = select.select([proc.stdout], [], [], 15.0)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("PORT "):
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"fake upstream did not start (first line {line!r}): {_tail(log)}")
    return FakeUpstream(proc, int(line.split()[1]), "https" if tls else "http", verify, log)


# ------------------------------------------------------------------------------------------------ admin

@dataclass
class Identity:
    team: str
    user: str
    key_id: str
    key: str
    models: list | None


class Admin:
    def __init__(self, url: str):
        self.http = httpx.Client(base_url=url, timeout=10.0,
                                 headers={"Authorization": f"Bearer {ADMIN_KEY}"})

    def _ok(self, r: httpx.Response, *codes: int) -> httpx.Response:
        assert r.status_code in codes, f"{r.request.method} {r.request.url} → {r.status_code}: {r.text}"
        return r

    def create_team(self, name: str) -> dict:
        return self._ok(self.http.post("/admin/teams", json={"name": name}), 201).json()

    def create_user(self, name: str, team: str) -> dict:
        return self._ok(self.http.post("/admin/users", json={"name": name, "team": team}), 201).json()

    def create_key(self, user: str, models: list | None = None, name: str | None = None) -> dict:
        body: dict = {"user": user}
        if models is not None:
            body["models"] = models
        if name is not None:
            body["name"] = name
        out = self._ok(self.http.post("/admin/keys", json=body), 201).json()
        assert out.get("key", "").startswith("tg-"), out
        return out

    def revoke_key(self, key_id: str):
        self._ok(self.http.delete(f"/admin/keys/{key_id}"), 200)

    def requests(self, limit: int = 200, cursor: str | None = None) -> dict:
        params: dict = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return self._ok(self.http.get("/admin/requests", params=params), 200).json()

    def all_requests(self, max_pages: int = 200) -> list[dict]:
        rows, cursor = [], None
        for _ in range(max_pages):
            page = self.requests(200, cursor)
            rows += page["data"]
            cursor = page.get("next")
            if not cursor or not page["data"]:
                return rows
        raise AssertionError("ledger paging did not end")

    def spend(self, group_by: str, **params) -> httpx.Response:
        return self._ok(self.http.get("/admin/spend", params={"group_by": group_by, **params}), 200)

    def new_identity(self, models: list | None = None) -> Identity:
        n = nonce()
        team, user = f"team-{n}", f"user-{n}"
        self.create_team(team)
        self.create_user(user, team)
        k = self.create_key(user, models=models, name=f"key-{n}")
        return Identity(team=team, user=user, key_id=str(k["id"]), key=k["key"], models=models)


# ---------------------------------------------------------------------------------------------- gateway

GATEWAYS: list["Gateway"] = []


class Gateway:
    def __init__(self, proc: subprocess.Popen, port: int, tmp: Path, log: Path, cmd: list[str]):
        self.proc, self.port, self.tmp, self.log, self.cmd = proc, port, tmp, log, cmd
        self.url = f"http://127.0.0.1:{port}"
        self.v1 = self.url + "/v1"
        self.admin = Admin(self.url)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 6000) -> str:
        return _tail(self.log, n)

    def client(self, key: str, **kw) -> OpenAI:
        kw.setdefault("timeout", 30.0)
        return OpenAI(base_url=self.v1, api_key=key, max_retries=0, **kw)

    def anthropic(self, key: str, **kw):
        """The official `anthropic` SDK pointed at the gateway (it appends /v1/messages). This SDK release sends
        api_key as `Authorization: Bearer`; see anthropic_x_api_key for a client that sends `x-api-key`."""
        import anthropic
        kw.setdefault("timeout", 30.0)
        kw.setdefault("api_key", key)
        return anthropic.Anthropic(base_url=self.url, max_retries=0, **kw)

    def anthropic_x_api_key(self, key: str, **kw):
        """An `anthropic` SDK client that authenticates with `x-api-key` only (no Authorization header)."""
        import anthropic
        headers = {**kw.pop("default_headers", {}), "x-api-key": key, "Authorization": anthropic.omit}
        return self.anthropic(key, default_headers=headers, **kw)

    def ledger_row(self, request_id: str, timeout: float = LEDGER_TIMEOUT) -> dict:
        """Polls the ledger (flushed every ledger.flush_ms) until the row with this id appears."""
        assert request_id, "no request id"
        deadline = time.monotonic() + timeout
        seen: list = []
        while True:
            data = self.admin.requests(200)["data"]
            for row in data:
                if str(row.get("id")) == str(request_id):
                    return row
            seen = [r.get("id") for r in data[:5]]
            if time.monotonic() > deadline:
                raise AssertionError(f"ledger row {request_id} not there after {timeout}s; newest ids: {seen}")
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.admin.http.close()
        if self in GATEWAYS:
            GATEWAYS.remove(self)


def gateway_bin() -> Path:
    return Path(os.environ.get("TOLLGATE_BIN") or REPO / ".build" / "debug" / "tollgate")


def start_gateway(tmp: Path, config_text: str, extra_env: dict | None = None, db: str | None = None) -> Gateway:
    """Writes tollgate.yaml in tmp, starts `tollgate serve` on a free port, waits for /health. The database is
    `db` (e.g. a URL from fresh_pg_database()), else a SQLite file in tmp."""
    binary = gateway_bin()
    if not binary.exists():
        raise RuntimeError(f"gateway binary {binary} not found: build it (swift build) or set TOLLGATE_BIN")
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = tmp / "tollgate.yaml"
    cfg.write_text(config_text)
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOLLGATE_URL", "SSL_CERT_FILE", "SSL_CERT_DIR")}
    env["TOLLGATE_ADMIN_KEY"] = ADMIN_KEY
    env.update(extra_env or {})
    last_error = ""
    for attempt in range(3):  # a free port can be taken between our probe and the gateway's bind
        port = free_port()
        log = tmp / f"gateway-{attempt}.log"
        cmd = [str(binary), "serve", "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
               "--db", db or f"sqlite:{tmp / 'tollgate.db'}"]
        with open(log, "wb") as logf:
            proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        gw = Gateway(proc, port, tmp, log, cmd)
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                r = httpx.get(gw.url + "/health", timeout=2.0)
                if r.status_code == 200:
                    GATEWAYS.append(gw)
                    return gw
                last_error = f"/health answered {r.status_code}: {r.text[:500]}"
            except httpx.HTTPError as e:
                last_error = f"/health: {e!r}"
            time.sleep(0.1)
        running = proc.poll() is None
        gw.stop()
        tail = _tail(log)
        if not running and "in use" in tail.lower() and attempt < 2:
            continue
        why = "exited with status %s" % proc.returncode if not running else \
            f"not healthy after {HEALTH_TIMEOUT:.0f}s ({last_error})"
        raise RuntimeError(f"gateway {' '.join(cmd)} {why}; its output:\n{tail}")
    raise RuntimeError("gateway did not start")


# ------------------------------------------------------------------------------------------- postgresql

# scripts/test runs the suite under scripts/pg, a throwaway cluster: TOLLGATE_TEST_PG_URL, and _BIN (psql,
# pg_ctl), _DATA and _RUNAS (the user pg_ctl must run as when the suite runs as root) beside it.
PG_URL = os.environ.get("TOLLGATE_TEST_PG_URL") or None
PG_BIN = Path(os.environ.get("TOLLGATE_TEST_PG_BIN") or "/usr/bin")
requires_pg = pytest.mark.skipif(PG_URL is None, reason="TOLLGATE_TEST_PG_URL is not set (scripts/test runs the suite under scripts/pg)")


def psql(url: str, sql: str) -> str:
    """Runs SQL with psql against url; returns its unaligned, tuples-only output."""
    out = subprocess.run([str(PG_BIN / "psql"), url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"psql: {out.stderr.strip()}"
    return out.stdout.strip()


def fresh_pg_database() -> str:
    """A new, empty database on the suite's cluster, as a postgres:// URL (each test its own)."""
    assert PG_URL, "TOLLGATE_TEST_PG_URL is not set"
    name = "e2e_" + uuid.uuid4().hex[:16]
    psql(PG_URL, f"CREATE DATABASE {name}")
    return PG_URL.rsplit("/", 1)[0] + "/" + name


# ---------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def e2e_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tollgate-e2e")


@pytest.fixture(scope="session")
def fake(e2e_tmp):
    f = start_fake(e2e_tmp, "fake")
    yield f
    f.stop()


@pytest.fixture(scope="session")
def gateway(e2e_tmp, fake):
    gw = start_gateway(e2e_tmp / "gw", gateway_config(fake.port))
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def _gateway_still_running():
    """After each test, every gateway started must still be running (a crash fails the test that caused it)."""
    yield
    for gw in list(GATEWAYS):
        if not gw.alive():
            GATEWAYS.remove(gw)
            pytest.fail(f"the gateway exited (status {gw.proc.returncode}) during this test; "
                        f"its output:\n{gw.log_tail()}")


@pytest.fixture(scope="session")
def admin(gateway) -> Admin:
    return gateway.admin


@pytest.fixture(scope="session")
def ledger_row(gateway):
    return gateway.ledger_row


@pytest.fixture
def new_identity(admin):
    """new_identity(models=None) → a fresh team, user and virtual key."""
    return admin.new_identity


@pytest.fixture
def ident(admin) -> Identity:
    """A fresh team/user/key allowed every model."""
    return admin.new_identity()


@pytest.fixture
def client(gateway, ident) -> OpenAI:
    c = gateway.client(ident.key)
    yield c
    c.close()


@pytest.fixture
def aclient(gateway, ident):
    """The official `anthropic` SDK with the `ident` fixture's virtual key."""
    c = gateway.anthropic(ident.key)
    yield c
    c.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and GATEWAYS:
        for gw in GATEWAYS:
            report.sections.append((f"gateway :{gw.port} output (tail)", gw.log_tail(4000)))
    return report
