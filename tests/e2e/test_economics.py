"""Self-host economics through the real server: known traffic on the test clock (three shapes in three 5-minute
slots of a two-hour window), then GET /admin/economics/self-host and `tollgate economics self-host` checked against
the README's method written again here from the ledger's own rows; the shipped data for Llama 3.1 8B on H100; and
`tollgate economics import-vllm`."""
from __future__ import annotations

import json
import math
import re
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal, ROUND_HALF_UP

import httpx

from cli import tollgate
from conftest import gateway_config, start_fake, start_gateway

NANO = Decimal("0.000000001")

# A GPU and an open model of the test's own, so that every figure is known: four shapes under a latency target,
# two GPUs per replica. Work per request = 1 / requests_per_s: 20, 50, 100 and 200 replica-seconds.
POINTS = [(100, 10, 0.05), (1100, 10, 0.02), (100, 210, 0.01), (1100, 210, 0.005)]
ECONOMICS = {
    "operations": {"hours_per_month": "1", "usd_per_hour": "73", "source": "test"},
    "settings": {"cached_prefix_weight": 0.1},
    "gpu_offers": [
        {"id": "test-gpu-on-demand", "gpu": "testgpu", "provider": "TestCloud", "provisioning": "on-demand",
         "usd_per_gpu_hour": "3", "source": "test", "checked": "2026-11-01"},
        {"id": "test-gpu-spot", "gpu": "testgpu", "provider": "TestCloud", "provisioning": "spot",
         "usd_per_gpu_hour": "1", "source": "test", "checked": "2026-11-01"},
    ],
    "throughput": [
        {"id": f"tiny-{i}-{o}", "model": "tiny-open", "precision": "fp8", "engine": "vllm", "engine_version": "0.11.0",
         "gpu": "testgpu", "gpus": 2, "input_tokens": i, "output_tokens": o, "output_tokens_per_s": r * o,
         "requests_per_s": r, "at": "latency_target", "latency_target": "TTFT p99 ≤ 1 s", "source": "test",
         "checked": "2026-11-01"} for i, o, r in POINTS
    ],
    "hosted_prices": [
        {"id": "dear", "model": "Tiny-Open", "provider": "Dear", "offered_as": "tiny", "input_per_mtok": "0.20",
         "output_per_mtok": "0.30", "source": "test", "checked": "2026-11-01"},
        {"id": "cheap", "model": "tiny-open", "provider": "Cheap", "offered_as": "org/tiny-open", "input_per_mtok": "0.05",
         "cached_input_per_mtok": "0.01", "output_per_mtok": "0.10", "source": "test", "checked": "2026-11-01"},
    ],
}
FAKE_MINI = (Decimal("0.15"), Decimal("0.075"), Decimal("0.60"))  # the config's price of fake-mini


def nanos(text: str) -> int:
    return int(Decimal(text) / NANO)


def money(amount: int) -> str:
    text = format((Decimal(amount) * NANO).normalize(), "f")
    return text


def half_up(numerator: int, denominator: int) -> int:
    return int((Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def price_nanos(text: str) -> int:
    return int(Decimal(text) / NANO)


def request_cost(row: dict, rates: tuple[str, str | None, str]) -> int:
    """One request at per-million rates, rounded half up once, as the gateway bills."""
    inp, cached, out = (price_nanos(r) if r is not None else None for r in rates)
    total = row["input_tokens"] * inp + row["cached_input_tokens"] * (cached if cached is not None else inp) \
        + row["output_tokens"] * out
    return half_up(total, 1_000_000)


def bucket(row: dict) -> tuple[int, int, int]:
    def index(value, edges):
        return next((i for i, edge in enumerate(edges) if value < edge), len(edges))
    return (index(row["input_tokens"] + row.get("cache_write_tokens", 0), [256, 1024, 4096, 16384, 65536]),
            index(row["cached_input_tokens"], [1, 1024, 8192, 65536]),
            index(row["output_tokens"], [64, 256, 1024, 4096]))


def work(i: float, o: float) -> float:
    """Bilinear over the four shapes (u, v floored at 0, extrapolated above)."""
    w00, w10, w01, w11 = (1 / r for _, _, r in POINTS)
    u = max(0.0, (i - 100) / 1000)
    v = max(0.0, (o - 10) / 200)
    return w00 + (w10 - w00) * u + (w01 - w00) * v + (w11 - w10 - w01 + w00) * u * v


def expected(rows: list[dict], start: datetime, end: datetime) -> dict:
    """The README's method, written again from its description."""
    t0, t1 = (int(t.timestamp() * 1000) for t in (start, end))
    slot = 300_000
    slots = math.ceil((t1 - t0) / slot)
    length = [min(slot, t1 - (t0 + k * slot)) for k in range(slots)]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(bucket(row), []).append(row)
    loads = [0.0] * slots
    for rows_of in groups.values():
        n = len(rows_of)
        mean_in = sum(r["input_tokens"] + r.get("cache_write_tokens", 0) for r in rows_of) / n
        mean_cached = sum(r["cached_input_tokens"] for r in rows_of) / n
        mean_out = sum(r["output_tokens"] for r in rows_of) / n
        w = work(mean_in + 0.1 * mean_cached, mean_out)
        for r in rows_of:
            s = int(parse_time(r["created_at"]).timestamp() * 1000)
            d = max(r["latency_ms"], 1)
            e = min(s + d, t1)
            k = (s - t0) // slot
            while k < slots and t0 + k * slot < e:
                overlap = min(e, t0 + (k + 1) * slot) - max(s, t0 + k * slot)
                loads[k] += w * (overlap / d) * 1000 / length[k]
                k += 1
    ordered = sorted(loads)
    p95 = ordered[min(max(math.ceil(0.95 * slots), 1), slots) - 1]
    replicas = max(1, math.ceil(p95 - 1e-9))
    window = t1 - t0
    gpu_cost = half_up(replicas * 2 * 3 * 10**9 * window, 3_600_000)
    replica_cost = half_up(2 * 3 * 10**9 * window, 3_600_000)
    ops_month = half_up(1 * 10**9 * 73 * 10**9, 10**9)
    ops = half_up(ops_month * window, 730 * 3_600_000)
    api = sum(nanos(r["cost_usd"]) for r in rows)
    hosted = {pid: sum(request_cost(r, rates) for r in rows)
              for pid, rates in (("dear", ("0.20", None, "0.30")), ("cheap", ("0.05", "0.01", "0.10")))}
    mean_load = sum(load * length[k] for k, load in enumerate(loads)) / window

    def break_even(a: int):
        margin = a / p95 - replica_cost
        if margin <= 0:
            return None
        r = max(1, math.ceil(ops / margin - 1e-9))
        factor = (r * replica_cost + ops) / a
        return math.ceil(factor * len(rows) / (window / 86_400_000))

    return {"loads": loads, "p95": p95, "replicas": replicas, "gpu_cost": gpu_cost, "ops": ops, "api": api,
            "hosted": min(hosted.values()), "hosted_id": min(hosted, key=hosted.get), "mean_load": mean_load,
            "self_host": gpu_cost + ops, "break_even": break_even(api), "break_even_hosted": break_even(min(hosted.values())),
            "repriced": sum(request_cost(r, tuple(str(p) for p in FAKE_MINI)) for r in rows)}


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def advance(gw, seconds: float) -> datetime:
    r = gw.admin.http.post("/admin/test/clock", json={"advance_seconds": seconds})
    assert r.status_code == 200, r.text
    return parse_time(r.json()["now"])


def chat(gw, key: str, text: str) -> None:
    r = httpx.post(gw.v1 + "/chat/completions", timeout=20, headers={"Authorization": f"Bearer {key}"},
                   json={"model": "fake-mini", "max_tokens": 500, "messages": [{"role": "user", "content": text}]})
    assert r.status_code == 200, r.text


def test_self_host_estimate_matches_the_method_on_known_traffic(tmp_path):
    fake = start_fake(tmp_path)
    data_file = tmp_path / "economics.json"
    data_file.write_text(json.dumps(ECONOMICS))
    config = gateway_config(fake.port) + f'economics: {{ file: "{data_file}" }}\n'
    gw = start_gateway(tmp_path / "gw", config, {"TOLLGATE_TEST_CLOCK": "1"})
    try:
        ident = gw.admin.new_identity()
        # To the next whole minute plus a day: the window starts there and nothing else falls in it.
        now = advance(gw, 0)
        start = (now + timedelta(days=1)).replace(second=0, microsecond=0)
        advance(gw, (start - now).total_seconds())
        # Slot 0: four short questions (about 20 prompt tokens, 20 out).
        for n in range(4):
            chat(gw, ident.key, f"q{n} REPLY_WORDS 20")
        advance(gw, 300)
        # Slot 1: ten long prompts with a cached prefix (about 760 prompt tokens, 200 of them cached; 150 out).
        for n in range(10):
            chat(gw, ident.key, f"doc{n} " + "lorem ipsum " * 250 + " CACHED 200 REPLY_WORDS 150")
        advance(gw, 4 * 300)
        # Slot 5: five medium ones (about 330 prompt tokens, 90 out).
        for n in range(5):
            chat(gw, ident.key, f"mid{n} " + "dolor sit " * 128 + " REPLY_WORDS 90")
        end = start + timedelta(hours=2)

        def ours():
            return [r for r in gw.admin.all_requests() if r["model"] == "fake-mini" and r["user"] == ident.user]
        deadline = time.monotonic() + 10
        while len(ours()) < 19 and time.monotonic() < deadline:
            time.sleep(0.1)  # the ledger writes every flush_ms
        rows = ours()
        assert len(rows) == 19
        want = expected(rows, start, end)
        assert want["loads"][1] > want["loads"][5] > 1 > want["loads"][0] > 0, want["loads"]
        # 24 slots: the p95 is the second busiest (slot 5), not the peak (slot 1).
        assert want["p95"] == want["loads"][5] and want["replicas"] < math.ceil(want["loads"][1])

        params = {"model": "fake-mini", "as": "tiny-open", "gpu": "TestGPU",
                  "from": start.isoformat().replace("+00:00", "Z"), "to": end.isoformat().replace("+00:00", "Z")}
        answer = gw.admin.http.get("/admin/economics/self-host", params=params)
        assert answer.status_code == 200, answer.text
        got = answer.json()
        assert got["requests"] == 19
        assert got["api_cost_usd"] == money(want["api"]) == money(sum(nanos(r["cost_usd"]) for r in rows))
        assert got["api_cost_repriced_usd"] == money(want["repriced"]) == got["api_cost_usd"]
        assert got["hosted_cost_usd"] == money(want["hosted"]) and got["hosted"]["id"] == want["hosted_id"] == "cheap"
        assert got["replicas"] == want["replicas"] and got["gpus_per_replica"] == 2 and got["gpus"] == 2 * want["replicas"]
        assert got["gpu_cost_usd"] == money(want["gpu_cost"])
        assert got["operations_cost_usd"] == money(want["ops"])
        assert got["self_host_cost_usd"] == money(want["self_host"])
        assert abs(got["load"]["p95"] - want["p95"]) < 1e-9 and abs(got["load"]["peak"] - want["loads"][1]) < 1e-9
        assert abs(got["utilisation"] - want["mean_load"] / want["replicas"]) < 1e-9
        assert got["break_even_requests_per_day"] == want["break_even"]
        assert got["break_even_vs_hosted_requests_per_day"] == want["break_even_hosted"]
        assert got["provisioning"] == "on-demand", "on-demand is the default (spot is cheaper here)"
        assert got["window"]["from"].startswith(start.strftime("%Y-%m-%dT%H:%M:%S")) and got["window"]["days"] == 2 / 24
        assert sum(b["requests"] for b in got["buckets"]) == 19 and len(got["buckets"]) == 3
        text = "\n".join(got["assumptions"])
        assert "quality of tiny-open is not known to be equivalent" in text
        assert "Idle hours billed" in text and "Operations: 1 hours a month at $73" in text
        assert "Latency target of tiny-100-10: TTFT p99 ≤ 1 s" in text
        assert "checked 2026-11-01" in text and "cached prompt token counts as 0.10" in text

        # The CLI: the same JSON, and a table with the same figures.
        cli = tollgate("economics", "self-host", "--model", "fake-mini", "--as", "tiny-open", "--gpu", "testgpu",
                       "--from", params["from"], "--to", params["to"], "--json", url=gw.url)
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout) == got
        table = tollgate("economics", "self-host", "--model", "fake-mini", "--as", "tiny-open", "--gpu", "testgpu",
                         "--from", params["from"], "--to", params["to"], url=gw.url)
        assert table.returncode == 0, table.stderr
        lines = {re.split(r"\s{2,}", line.strip())[0]: re.split(r"\s{2,}", line.strip())[-1]
                 for line in table.stdout.splitlines() if line.strip()}
        assert lines["self-host cost"] == "$" + got["self_host_cost_usd"]
        assert lines["API cost (ledger)"] == "$" + got["api_cost_usd"]
        assert lines["replicas × GPUs"] == f"{got['replicas']} × 2 = {got['gpus']}"
        assert "- " + got["assumptions"][1] in table.stdout

        # The shipped data: Llama 3.1 8B on H100 (names in any case), sized from NVIDIA's points.
        shipped = gw.admin.http.get("/admin/economics/self-host", params={**params, "as": "Llama-3.1-8B-Instruct", "gpu": "h100"})
        assert shipped.status_code == 200, shipped.text
        body = shipped.json()
        assert body["api_cost_usd"] == got["api_cost_usd"] and body["replicas"] >= 1
        assert body["offer"]["id"] == "lambda-h100-sxm-on-demand" and all(p.startswith("trtllm-") for p in body["throughput_points"])
        owned = gw.admin.http.get("/admin/economics/self-host", params={**params, "as": "llama-3.1-70b-instruct", "gpu": "h100",
                                                                        "provisioning": "owned"})
        assert owned.status_code == 200, owned.text
        assert owned.json()["gpus_per_replica"] == 2 and owned.json()["offer"]["usd_per_gpu_hour"] == "1.257428447"

        # Refusals name the parameter.
        for bad, param in (({"gpu": "tpu9"}, "gpu"), ({"as": "no-such-model"}, "as"), ({"provisioning": "weekly"}, "provisioning"), ({"gpu": None}, "gpu")):
            query = {k: v for k, v in {**params, **bad}.items() if v is not None}
            r = gw.admin.http.get("/admin/economics/self-host", params=query)
            assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    finally:
        gw.stop()
        fake.stop()


def test_import_vllm_writes_points_the_gateway_sizes_with(tmp_path):
    result = {"date": "20261201-101500", "backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B-Instruct",
              "request_rate": "inf", "max_concurrency": 64, "completed": 200, "total_input_tokens": 409600,
              "total_output_tokens": 51200, "request_throughput": 9.5, "output_throughput": 2432.0,
              "total_token_throughput": 21888.0, "mean_ttft_ms": 120.0, "p99_ttft_ms": 480.2, "mean_tpot_ms": 21.0,
              "p99_tpot_ms": 30.0}
    files = []
    for n, (inp, out, rate) in enumerate([(128, 128, 40.0), (2048, 128, 9.5), (128, 1024, 6.0), (2048, 1024, 3.0)]):
        path = tmp_path / f"run{n}.json"
        path.write_text(json.dumps({**result, "total_input_tokens": inp * 200, "total_output_tokens": out * 200,
                                    "request_throughput": rate, "output_throughput": rate * out}))
        files.append(str(path))
    out_file = tmp_path / "mine.json"
    cli = tollgate("economics", "import-vllm", *files, "--out", str(out_file), "--gpu", "h100", "--gpus", "1",
                   "--precision", "bf16", "--engine-version", "0.11.0", "--checked", "2026-12-01", url="http://127.0.0.1:1")
    assert cli.returncode == 0, cli.stderr
    written = json.loads(out_file.read_text())["throughput"]
    assert [p["id"] for p in written] == ["vllm-run0", "vllm-run1", "vllm-run2", "vllm-run3"]
    assert written[1]["input_tokens"] == 2048 and written[1]["requests_per_s"] == 9.5 and written[1]["at"] == "latency_target"
    assert written[1]["concurrency"] == 64 and written[1]["latency_target"] == "TTFT p99 480 ms, TPOT p99 30.0 ms"
    # Importing one again replaces it by id.
    again = tollgate("economics", "import-vllm", files[0], "--out", str(out_file), "--gpu", "h100", "--precision", "bf16",
                     "--engine-version", "0.11.0", url="http://127.0.0.1:1")
    assert again.returncode == 0, again.stderr
    assert len(json.loads(out_file.read_text())["throughput"]) == 4

    fake = start_fake(tmp_path)
    config = gateway_config(fake.port) + f'economics: {{ file: "{out_file}" }}\n'
    gw = start_gateway(tmp_path / "gw", config)
    try:
        ident = gw.admin.new_identity()
        chat(gw, ident.key, "hello REPLY_WORDS 30")
        r = gw.admin.http.get("/admin/economics/self-host", params={"model": "fake-mini", "as": "llama-3.1-8b-instruct", "gpu": "h100"})
        assert r.status_code == 200, r.text
        body = r.json()
        # The user's own points come before the shipped ones.
        assert body["throughput_points"] == ["vllm-run0", "vllm-run1", "vllm-run2", "vllm-run3"]
        assert body["requests"] == 1
    finally:
        gw.stop()
        fake.stop()

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"gpu_offers": [{"id": "x", "gpu": "h100", "provider": "p", "provisioning": "spot",
                                                  "usd_per_gpu_hour": 1.5, "source": "s", "checked": "2026-01-01"}]}))
    config = gateway_config(fake.port) + f'economics: {{ file: "{broken}" }}\n'
    try:
        start_gateway(tmp_path / "gw-broken", config)
        raise AssertionError("a broken economics file must stop the start")
    except Exception as error:  # noqa: BLE001 - start_gateway raises with the gateway's output
        assert "usd_per_gpu_hour" in str(error) and "x" in str(error), error
