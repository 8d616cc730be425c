"""`tollgate route-eval` on a file it has never seen: the documented figures, random at APGR 0.5, rows
missing a model skipped and counted, and a model absent from the file named in the error."""
from __future__ import annotations

import json
import subprocess

from conftest import gateway_bin


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(gateway_bin()), "route-eval", *args], capture_output=True, text=True, timeout=60)


def test_route_eval_reports_the_figures_on_unseen_data(tmp_path):
    data = tmp_path / "unseen.jsonl"
    rows = []
    for i in range(40):
        hard = i % 2 == 0
        prompt = ("Prove, step by step, the following theorem about compact operators on Banach spaces " * (3 if hard else 0)
                  + f"question {i}: what is {i} + {i}?")
        rows.append({"id": f"r{i}", "prompt": prompt,
                     "scores": {"big": 1.0, "small": 0.0 if hard else 1.0},
                     "cost_usd": {"big": 0.01, "small": 0.001}})
    rows.append({"id": "only-one", "prompt": "x", "scores": {"big": 1.0, "other": 0.0}})
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    out = run("--data", str(data), "--strong", "big", "--weak", "small", "--json", "--models", "big,small")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["rows"] == 40 and report["skipped"] == 1
    assert report["quality_strong"] == 1 and report["quality_weak"] == 0.5
    assert report["random"]["apgr"] == 0.5
    for router in ("learned", "length_only"):
        assert {"apgr", "cpt50", "cpt80", "q20", "q50", "q80"} <= set(report[router])
    # The hard prompts are the long ones here: routing by length is perfect on this file, reaching PGR 1 at
    # half the calls strong, so its area is 0.5 × 0.5 + 0.5 × 1 = 0.75, the most any router can get here.
    assert abs(report["length_only"]["apgr"] - 0.75) < 1e-9

    table = run("--data", str(data), "--strong", "big", "--weak", "small")
    assert table.returncode == 0 and "APGR" in table.stdout and "random" in table.stdout

    missing = run("--data", str(data), "--strong", "big", "--weak", "absent")
    assert missing.returncode != 0 and "absent" in (missing.stderr + missing.stdout)
