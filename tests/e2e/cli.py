"""Runs the `tollgate` command line as an operator would."""
from __future__ import annotations

import os
import subprocess

from conftest import ADMIN_KEY, gateway_bin


def tollgate(*args: str, url: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """`tollgate ARGS…` against the gateway at url (TOLLGATE_URL), with the suite's admin key."""
    environment = {k: v for k, v in os.environ.items() if k not in ("TOLLGATE_URL", "TOLLGATE_ADMIN_KEY")}
    environment.update({"TOLLGATE_URL": url, "TOLLGATE_ADMIN_KEY": ADMIN_KEY, **(env or {})})
    return subprocess.run([str(gateway_bin()), *args], env=environment, capture_output=True, text=True, timeout=timeout)
