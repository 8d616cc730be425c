"""What the benchmark sends, and the two load generators: wrk (closed loop, non-streamed) and bench/c/tgload
(streams with time to first token, and the fixed-rate open loop)."""
import json, os, re, subprocess

# Four chat requests of different shapes, sent in turn on each connection: the learned route scores each
# and sends some to each of its two models.
PROMPTS = [
    [{"role": "system", "content": "You are a helpful assistant."},
     {"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are a helpful assistant."},
     {"role": "user", "content": "Summarise the benefits of keep-alive connections in two sentences."}],
    [{"role": "user", "content": "A train leaves at 3:40 pm at 84 km/h; a second one leaves the same station at 4:05 pm "
                                 "at 112 km/h on the same track. At what time does the second catch up with the first, and "
                                 "how far from the station? Show each step of the calculation."}],
    [{"role": "system", "content": "You are a senior Python engineer. Answer with code first, then a short explanation."},
     {"role": "user", "content": "Write a function that merges overlapping intervals in a list of (start, end) tuples, "
                                 "state its time and space complexity, and give three edge-case unit tests with pytest."}],
]


def bodies(model, stream):
    out = []
    for messages in PROMPTS:
        body = {"model": model, "messages": messages, "max_tokens": 256, "temperature": 0.2}
        if stream:
            body["stream"] = True
        out.append(json.dumps(body))
    return out


def http_requests(bodies_, headers):
    """The raw HTTP/1.1 requests for tgload, separated by NUL bytes."""
    reqs = []
    for body in bodies_:
        head = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        head += "".join("%s: %s\r\n" % kv for kv in headers.items())
        reqs.append((head + "Content-Length: %d\r\n\r\n" % len(body.encode())).encode() + body.encode())
    return b"\0".join(reqs)


def _latency_ms(text):
    value = re.match(r"([\d.]+)(us|ms|s)", text)
    return float(value.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[value.group(2)]


def wrk(port, connections, duration, bodies_, headers, workdir):
    """Closed loop at `connections`, the four bodies in turn (requests formatted once, in init)."""
    script = os.path.join(workdir, "wrk-%d.lua" % port)
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        for name, value in headers.items():
            f.write("wrk.headers[%s] = %s\n" % (json.dumps(name), json.dumps(value)))
        f.write("local bodies = {%s}\n" % ", ".join(json.dumps(b) for b in bodies_))
        f.write("local reqs, i = {}, 0\n"
                "function init(args) for k, b in ipairs(bodies) do reqs[k] = wrk.format(nil, nil, nil, b) end end\n"
                "function request() i = i % #reqs + 1; return reqs[i] end\n")
    threads = min(2, connections)
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration, "--latency", "-s", script,
                          "http://127.0.0.1:%d/v1/chat/completions" % port],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"tool": "wrk", "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "errors": (int(non2xx.group(1)) if non2xx else 0) + (sum(int(g) for g in sock.groups()) if sock else 0),
            "p50_ms": _latency_ms(lat["50"]), "p90_ms": _latency_ms(lat["90"]), "p99_ms": _latency_ms(lat["99"])}


def tgload(binary, port, request_file, duration, connections=None, rate=None, stream=False, threads=None, max_conns=None):
    """Closed loop at `connections`, or open loop at `rate` requests/s (`connections` then pre-opened)."""
    argv = [binary, "-p", str(port), "-f", request_file, "-d", "%g" % duration]
    if rate:
        argv += ["-R", str(rate), "-c", str(connections or 16)]
        if max_conns:
            argv += ["-m", str(max_conns)]
    else:
        argv += ["-c", str(connections), "-t", str(threads or (2 if connections >= 16 else 1))]
    if stream:
        argv.append("-s")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 90)
    if out.returncode != 0:
        raise RuntimeError("tgload failed: %s" % out.stderr.strip())
    raw = json.loads(out.stdout)
    lat, ttft, lag = raw["latency_ms"] or {}, raw["ttft_ms"] or {}, raw["send_lag_ms"] or {}
    run = {"tool": "tgload", "requests": raw["requests"], "rps": raw["rps"],
           "errors": raw["errors"] + raw["non2xx"] + raw["incomplete"] + raw["timeouts"],
           "p50_ms": lat.get("p50"), "p90_ms": lat.get("p90"), "p99_ms": lat.get("p99"),
           "ttft_p50_ms": ttft.get("p50"), "ttft_p90_ms": ttft.get("p90"), "ttft_p99_ms": ttft.get("p99"),
           "first_bytes": raw["first_bytes"], "connections_opened": raw["connections"]}
    if rate:
        run.update({"rate_target": raw["rate_target"], "rate_sent": raw["rate_sent"],
                    "send_lag_p50_ms": lag.get("p50"), "send_lag_p99_ms": lag.get("p99")})
    return run
