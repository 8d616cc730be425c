"""Medians of the rounds, what each setup adds over direct and costs beside nginx, and the report files."""
import json, os, statistics, time

SETUP_ORDER = ["direct", "nginx", "tollgate", "tollgate+budgets", "tollgate+auto", "tollgate+tracing", "tollgate+budgets@pg"]
MEDIAN_FIELDS = ["rps", "p50_ms", "p90_ms", "p99_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms", "cpu_us_per_request",
                 "peak_rss_mb", "upstream_cpu_us_per_request", "rate_sent", "send_lag_p50_ms", "send_lag_p99_ms",
                 "upstream_late_p99_us", "db_round_trips_per_request"]


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _load_order(load):
    return (1, float(load[:-2])) if load.endswith("/s") else (0, int(load[2:]))


def aggregate(results):
    """results: {(kind, load, setup): [run, ...]} -> rows with medians and the derived figures."""
    rows = []
    for (kind, load, setup), runs in results.items():
        row = {"kind": kind, "load": load, "setup": setup, "rounds": len(runs),
               "errors": sum(r.get("errors", 0) for r in runs), "tool": runs[0].get("tool")}
        row.update({f: _median(r.get(f) for r in runs) for f in MEDIAN_FIELDS})
        if row["cpu_us_per_request"] is not None:
            row["cpu_s_per_1k_requests"] = row["cpu_us_per_request"] / 1000
        rows.append(row)
    rows.sort(key=lambda r: (r["kind"] != "json", _load_order(r["load"]),
                             SETUP_ORDER.index(r["setup"]) if r["setup"] in SETUP_ORDER else 99))
    index = {(r["kind"], r["load"], r["setup"]): r for r in rows}
    diff = lambda a, b: a - b if a is not None and b is not None else None
    ratio = lambda a, b: a / b if a is not None and b else None
    for r in rows:
        direct = index.get((r["kind"], r["load"], "direct"), {}) if r["setup"] != "direct" else {}
        ng = index.get((r["kind"], r["load"], "nginx"), {}) if r["setup"] not in ("direct", "nginx") else {}
        r["added_p50_ms"] = diff(r["p50_ms"], direct.get("p50_ms"))
        r["added_p99_ms"] = diff(r["p99_ms"], direct.get("p99_ms"))
        r["added_ttft_p50_ms"] = diff(r["ttft_p50_ms"], direct.get("ttft_p50_ms")) if r["kind"] == "stream" else None
        r["added_ttft_p99_ms"] = diff(r["ttft_p99_ms"], direct.get("ttft_p99_ms")) if r["kind"] == "stream" else None
        r["cpu_ratio_to_nginx"] = ratio(r["cpu_us_per_request"], ng.get("cpu_us_per_request"))
        r["rps_ratio_to_nginx"] = ratio(r["rps"], ng.get("rps"))
    for r in rows:
        for k, v in r.items():
            if isinstance(v, float):
                r[k] = round(v, 4)
    return rows


def _f(value, fmt):
    return "–" if value is None else fmt % value


def _table(rows, kind):
    if kind == "json":
        head = ("| load | setup | req/s | p50 ms | p90 ms | p99 ms | added p50 | added p99 | CPU µs/req | CPU s/1k req "
                "| × nginx CPU | × nginx req/s | peak RSS MB |\n|---|---|" + "---:|" * 11)
        line = lambda r: "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["load"], r["setup"], _f(r["rps"], "%.0f"), _f(r["p50_ms"], "%.3f"), _f(r["p90_ms"], "%.3f"),
            _f(r["p99_ms"], "%.3f"), _f(r["added_p50_ms"], "%+.3f"), _f(r["added_p99_ms"], "%+.3f"),
            _f(r["cpu_us_per_request"], "%.1f"), _f(r.get("cpu_s_per_1k_requests"), "%.3f"),
            _f(r["cpu_ratio_to_nginx"], "%.2f"), _f(r["rps_ratio_to_nginx"], "%.2f"), _f(r["peak_rss_mb"], "%.0f"))
    else:
        head = ("| load | setup | streams/s | TTFT p50 ms | TTFT p99 ms | added TTFT p50 | added TTFT p99 | stream p50 ms "
                "| stream p99 ms | CPU µs/stream | CPU s/1k streams | × nginx CPU | × nginx streams/s | peak RSS MB |\n|---|---|" + "---:|" * 12)
        line = lambda r: "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["load"], r["setup"], _f(r["rps"], "%.0f"), _f(r["ttft_p50_ms"], "%.3f"), _f(r["ttft_p99_ms"], "%.3f"),
            _f(r["added_ttft_p50_ms"], "%+.3f"), _f(r["added_ttft_p99_ms"], "%+.3f"), _f(r["p50_ms"], "%.1f"),
            _f(r["p99_ms"], "%.1f"), _f(r["cpu_us_per_request"], "%.0f"), _f(r.get("cpu_s_per_1k_requests"), "%.3f"),
            _f(r["cpu_ratio_to_nginx"], "%.2f"), _f(r["rps_ratio_to_nginx"], "%.2f"), _f(r["peak_rss_mb"], "%.0f"))
    body = [line(r) for r in rows if r["kind"] == kind]
    return head + "\n" + "\n".join(body) if body else ""


def _pick(rows, kind, setup, load=None, closed=True):
    """The row at `load`, else at the highest closed-loop concurrency."""
    candidates = [r for r in rows if r["kind"] == kind and r["setup"] == setup and r["load"].startswith("c=") == closed]
    exact = [r for r in candidates if r["load"] == load]
    if exact:
        return exact[0]
    return max(candidates, key=lambda r: _load_order(r["load"]), default=None)


def targets(rows, scale, rate):
    """The issue's targets, measured: (what, measured, target, met)."""
    out = []
    fixed = "%g/s" % rate
    r = _pick(rows, "json", "tollgate+budgets", fixed, closed=False)
    if r and r["load"] == fixed:
        out.append(("added p50, non-streamed, budgets on, %s" % fixed, r["added_p50_ms"], "≤ 0.25 ms", 0.25))
        out.append(("added p99, non-streamed, budgets on, %s" % fixed, r["added_p99_ms"], "≤ 1 ms", 1.0))
    for kind, label in (("json", "non-streamed"), ("stream", "streams")):
        r = _pick(rows, kind, "tollgate+budgets", "c=64")
        if r:
            out.append(("CPU per request ÷ nginx's, %s, %s" % (label, r["load"]), r["cpu_ratio_to_nginx"], "≤ 2×", 2.0))
    best = lambda setup: max((x["rps"] for x in rows if x["kind"] == "json" and x["setup"] == setup and x["load"].startswith("c=")), default=None)
    if best("tollgate+budgets") and best("nginx"):
        out.append(("saturated req/s ÷ nginx's (best of the concurrency levels)", best("tollgate+budgets") / best("nginx"),
                    "≥ 0.60", -0.60))
    r = _pick(rows, "stream", "tollgate+budgets", fixed, closed=False) or _pick(rows, "stream", "tollgate+budgets", "c=16")
    if r:
        out.append(("added TTFT p50, streams, budgets on, %s" % r["load"], r["added_ttft_p50_ms"], "≤ 0.5 ms", 0.5))
    if scale and scale.get("peak_rss_streams_mb"):
        out.append(("peak RSS, %d keys, %d budgets, %d open streams (MB)" % (scale["keys"], scale["budgets"], scale["streams_started"]),
                    scale["peak_rss_streams_mb"], "≤ 150 MB", 150.0))
    table = []
    for what, value, target, bound in out:
        met = None if value is None else (value >= -bound if bound < 0 else value <= bound)
        table.append({"what": what, "measured": value, "target": target, "met": met})
    return table


def write(out_dir, meta, rows, scale, extras):
    os.makedirs(out_dir, exist_ok=True)
    goal = targets(rows, scale, meta["rate"])
    with open(os.path.join(out_dir, "latest.json"), "w") as f:
        json.dump({**meta, "rows": rows, "scale": scale, "targets": goal, **extras}, f, indent=2)
    md = ["Machine: %s; %s; load average %s before, %s after; %s s per run, %d rounds interleaved (medians); "
          "bench/run %s" % (meta["machine"], meta["date"], meta["loadavg_before"], meta["loadavg_after"], meta["duration_s"],
                            meta["rounds"], " ".join(meta["argv"]) or "(defaults)")]
    if meta.get("tollgate"):
        t = meta["tollgate"]
        md.append("\nTollgate: release binary built %s, checked-out commit %s%s." % (
            t["binary_built"], t["head"], " (Sources/ had uncommitted changes)" if t["sources_uncommitted_changes"] else ""))
    up = extras.get("upstream")
    if up:
        md.append("\nFake upstream (bench/c/fakeup.c, 2 threads): %s" % up)
    if rows and any(r["kind"] == "json" for r in rows):
        md.append("\nNon-streamed (`added` = over direct, ms; CPU = the proxy's own process, from /proc):\n\n" + _table(rows, "json"))
    if rows and any(r["kind"] == "stream" for r in rows):
        md.append("\nStreams (%s; TTFT = to the first SSE byte, measured by tgload):\n\n" % extras.get("stream_shape", "")
                  + _table(rows, "stream"))
    notes = extras.get("notes") or []
    if notes:
        md.append("\n" + "\n".join("- " + n for n in notes))
    if scale:
        md.append("\nMemory scale: %s" % scale_line(scale))
    if goal:
        md.append("\n| target | measured | goal | met |\n|---|---:|---|---|\n" + "\n".join(
            "| %s | %s | %s | %s |" % (g["what"], _f(g["measured"], "%.3f"), g["target"],
                                       "–" if g["met"] is None else ("yes" if g["met"] else "**no**")) for g in goal))
    text = "\n".join(md) + "\n"
    with open(os.path.join(out_dir, "latest.md"), "w") as f:
        f.write(text)
    return text


def scale_line(s):
    return ("%d keys and %d budgets seeded in %.1f s; Tollgate starts in %.1f s (%s budgets listed); RSS %.0f MB empty, "
            "%.0f MB loaded, %s MB with %d streams open at once (peak %.0f MB; %d streams started, TTFT p50 %s ms); "
            "%.0f MB after they closed." % (
                s["keys"], s["budgets"], s["seed_s"], s["startup_s"], s.get("budgets_loaded"), s["rss_empty_mb"],
                s["rss_loaded_mb"], _f(s.get("rss_streams_mb"), "%.0f"), s["streams_open_max"], s["peak_rss_streams_mb"],
                s["streams_started"], _f(s.get("ttft_p50_ms"), "%.2f"), s["rss_after_mb"]))


def machine():
    model = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = next((int(l.split()[1]) // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    return "%d cores, %s, %d MB" % (os.cpu_count(), model, mem)


def loadavg():
    return "%.2f" % os.getloadavg()[0]


def today():
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
