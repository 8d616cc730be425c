"""The generated admin key: written where an operator can find it before the gateway serves anything, even when
the process dies without a clean exit, and replaceable by `tollgate admin-key reset` with access to the database."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import HEALTH_TIMEOUT, free_port, fresh_pg_database, gateway_bin, requires_pg

GENERATED = re.compile(r"export TOLLGATE_ADMIN_KEY=(tga-[0-9a-f]{48})")


def environment() -> dict:
    """The suite's environment without an admin key, a gateway URL or provider keys."""
    return {k: v for k, v in os.environ.items()
            if k not in ("TOLLGATE_ADMIN_KEY", "TOLLGATE_URL", "TOLLGATE_DB", "OPENAI_API_KEY", "ANTHROPIC_API_KEY")}


class Started:
    def __init__(self, tmp: Path, db: str, run: int):
        self.out, self.err = tmp / f"stdout-{run}.log", tmp / f"stderr-{run}.log"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen([str(gateway_bin()), "serve", "--demo", "--host", "127.0.0.1", "--port", str(port),
                                          "--db", db], cwd=tmp, env=environment(), stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while True:
            assert self.proc.poll() is None, f"the gateway exited ({self.proc.returncode}): {self.err.read_text()}"
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"no /health after {HEALTH_TIMEOUT}s: {self.err.read_text()}"
            time.sleep(0.1)

    def admin_status(self, key: str) -> int:
        return httpx.get(self.url + "/admin/users", headers={"Authorization": f"Bearer {key}"}, timeout=5).status_code

    def await_status(self, key: str, status: int, timeout: float = 5):
        """Polls until the admin API answers `status` to key (a gateway reads the stored key at most once a second)."""
        deadline = time.monotonic() + timeout
        while (got := self.admin_status(key)) != status:
            assert time.monotonic() < deadline, f"the admin API still answers {got} to {key[:10]}… after {timeout}s"
            time.sleep(0.1)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def generated_keys(path: Path) -> list[str]:
    return GENERATED.findall(path.read_text(errors="replace"))


def test_a_generated_admin_key_is_in_stdout_and_stderr_files_even_after_kill_9_and_works_on_the_next_start(tmp_path):
    db = f"sqlite:{tmp_path / 'tollgate.db'}"
    first = Started(tmp_path, db, 1)
    first.stop(signal.SIGKILL)
    # stdout and stderr both went to files: a buffered write would have died with the process.
    keys = generated_keys(first.out)
    assert len(keys) == 1, f"stdout: {first.out.read_text()!r}"
    assert generated_keys(first.err) == keys, f"stderr: {first.err.read_text()!r}"
    key = keys[0]

    again = Started(tmp_path, db, 2)
    try:
        assert generated_keys(again.out) == [] and generated_keys(again.err) == [], "a second key was generated"
        assert again.admin_status(key) == 200
        assert again.admin_status("tga-" + "0" * 48) == 401
    finally:
        again.stop()


def reset(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(gateway_bin()), "admin-key", "reset", *args], cwd=tmp_path, env={**environment(), **(env or {})},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=requires_pg)])
def test_admin_key_reset_gives_a_key_that_works_at_once_and_after_a_restart_and_the_old_one_is_refused(tmp_path, backend):
    db = f"sqlite:{tmp_path / 'tollgate.db'}" if backend == "sqlite" else fresh_pg_database()
    gateway = Started(tmp_path, db, 1)
    try:
        old = generated_keys(gateway.out)[0]
        assert gateway.admin_status(old) == 200

        done = reset(tmp_path, "--db", db)
        assert done.returncode == 0, done.stderr
        new = GENERATED.findall(done.stdout)
        assert len(new) == 1 and new[0] != old, done.stdout
        new = new[0]
        assert "no longer works" in done.stdout and "TOLLGATE_ADMIN_KEY set" in done.stdout, done.stdout
        password = urlsplit(db).password
        assert not password or password not in done.stdout + done.stderr, "the database password was printed"

        # The running gateway takes the new key without a restart.
        gateway.await_status(old, 401)
        assert gateway.admin_status(new) == 200
    finally:
        gateway.stop()

    restarted = Started(tmp_path, db, 2)
    try:
        assert restarted.admin_status(new) == 200
        assert restarted.admin_status(old) == 401
        # TOLLGATE_DB names the database as --db does.
        done = reset(tmp_path, env={"TOLLGATE_DB": db})
        assert done.returncode == 0, done.stderr
        newest = GENERATED.findall(done.stdout)[0]
        restarted.await_status(newest, 200)
        assert restarted.admin_status(new) == 401
    finally:
        restarted.stop()


def test_admin_key_reset_refuses_a_sqlite_database_that_does_not_exist(tmp_path):
    done = reset(tmp_path, "--db", f"sqlite:{tmp_path / 'typo.db'}")
    assert done.returncode != 0
    assert "no database at" in done.stderr and "typo.db" in done.stderr, done.stderr
    assert not (tmp_path / "typo.db").exists()
    assert GENERATED.search(done.stdout) is None
