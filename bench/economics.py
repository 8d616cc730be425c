#!/usr/bin/env python3
"""The self-host estimate on a generated month: a gateway whose ledger holds ROWS requests over 30 days (240
people, tests/e2e/seed_ledger.py's mix: gpt-4o-mini, gpt-4o, claude-sonnet-4-5, local-llama), then
`tollgate economics self-host` for gpt-4o-mini sized as Llama 3.1 8B and for gpt-4o as Llama 3.1 70B on H100,
timed, with the gateway's peak memory (VmHWM) before and after; the CLI's output is printed as it came.

    bench/economics.py [--binary .build/debug/tollgate] [--rows 1000000] [--keep]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
import seed_ledger  # noqa: E402
from dashboard import ADMIN, call, free_port, people, start as start_gateway, stop  # noqa: E402
import json  # noqa: E402

# The seeded models at the seed's own prices, so that the ledger's cost can be re-priced at today's.
CONFIG = """models:
  - { name: gpt-4o, provider: openai-compatible, base_url: "http://127.0.0.1:9/v1", price: { input_per_mtok: "2.50", cached_input_per_mtok: "1.25", output_per_mtok: "10" } }
  - { name: gpt-4o-mini, provider: openai-compatible, base_url: "http://127.0.0.1:9/v1", price: { input_per_mtok: "0.15", cached_input_per_mtok: "0.075", output_per_mtok: "0.60" } }
  - { name: claude-sonnet-4-5, provider: openai-compatible, base_url: "http://127.0.0.1:9/v1", price: { input_per_mtok: "3", cached_input_per_mtok: "0.30", output_per_mtok: "15" } }
  - { name: local-llama, provider: openai-compatible, base_url: "http://127.0.0.1:9/v1", price: free }
routes:
  auto: { strategy: fallback, models: [gpt-4o, gpt-4o-mini] }
"""


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(HERE.parent / ".build" / "debug" / "tollgate"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tollgate-economics-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, _ = start_gateway(args.binary, folder, port, CONFIG)
    entities = people(base)
    stop(proc)
    end_ms = (int(time.time() * 1000) // 86_400_000) * 86_400_000  # midnight UTC today: a window of whole days
    totals = seed_ledger.seed(str(folder / "bench.db"), entities, rows=args.rows, end_ms=end_ms, days=30)
    proc, _ = start_gateway(args.binary, folder, port, CONFIG)
    window = ["--from", time.strftime("%Y-%m-%d", time.gmtime(end_ms / 1000 - 30 * 86400)),
              "--to", time.strftime("%Y-%m-%d", time.gmtime(end_ms / 1000))]
    env = {**os.environ, "TOLLGATE_URL": base, "TOLLGATE_ADMIN_KEY": ADMIN}
    try:
        print(f"{args.rows:,} rows over 30 days; per model (requests, cost nano-dollars): {json.dumps(totals['model'])}")
        print(f"gateway peak RSS before: {peak_rss_mb(proc.pid):.0f} MB\n")
        for model, open_model, extra in (("gpt-4o-mini", "llama-3.1-8b-instruct", []), ("gpt-4o", "llama-3.1-70b-instruct", []),
                                         ("gpt-4o", "llama-3.1-70b-instruct", ["--provisioning", "owned"])):
            command = [args.binary, "economics", "self-host", "--model", model, "--as", open_model, "--gpu", "h100", *window, *extra]
            began = time.monotonic()
            out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
            took = time.monotonic() - began
            print("$ tollgate " + " ".join(command[1:]))
            print(out.stdout + out.stderr)
            print(f"(answered in {took:.1f} s; gateway peak RSS now {peak_rss_mb(proc.pid):.0f} MB)\n")
    finally:
        stop(proc)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"kept {folder}")


if __name__ == "__main__":
    main()
