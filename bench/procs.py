"""Processes of the benchmark: tools, the fake upstream, nginx, Tollgate; and what /proc says about them."""
import json, os, resource, shutil, signal, socket, subprocess, sys, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "bench")
CLK_TCK = os.sysconf("SC_CLK_TCK")
ADMIN_KEY = "bench-admin"


def ensure_tools():
    """nginx, wrk and a C compiler, from Debian's packages when missing."""
    wanted = (("nginx-light", "nginx"), ("wrk", "wrk"), ("gcc", "cc"))
    missing = [pkg for pkg, binary in wanted if not shutil.which(binary) and not os.path.exists("/usr/sbin/" + binary)]
    if missing:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)


def compile_tools(workdir):
    """bench/c/*.c -> workdir: the fake upstream and the load generator (about a second)."""
    paths = {}
    for name in ("fakeup", "tgload"):
        out = os.path.join(workdir, name)
        extra = os.environ.get("BENCH_CFLAGS", "").split()  # e.g. "-g -fsanitize=address" to debug them
        subprocess.run(["cc", "-O2", "-pthread", *extra, "-o", out, os.path.join(HERE, "c", name + ".c")], check=True)
        paths[name] = out
    return paths


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process for port %d exited with %s" % (port, proc.returncode))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on %d" % port)


class Processes:
    """Every process the run starts, stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, workdir):
        self.workdir, self.procs = workdir, []

    def start(self, name, argv, env=None):
        log = open(os.path.join(self.workdir, name + ".log"), "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        self.procs.append(proc)
        return proc

    def stop(self, proc, timeout=15):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self):
        for proc in list(self.procs):
            self.stop(proc)


def start_fakeup(procs, tools, name, port, chunks=50, pace_us=2000, threads=2):
    proc = procs.start(name, [tools["fakeup"], "--port", str(port), "--threads", str(threads),
                              "--chunks", str(chunks), "--pace-us", str(pace_us)])
    wait_port(port, proc=proc)
    return proc


def start_otlp_sink(procs, port):
    """bench/otlp_sink.py: a trace collector that counts what it receives and keeps nothing."""
    proc = procs.start("otlp-sink", [sys.executable, os.path.join(HERE, "otlp_sink.py"), str(port)])
    wait_port(port, proc=proc)
    return proc


def fakeup_stats(port, reset=False):
    request = urllib.request.Request("http://127.0.0.1:%d/stats%s" % (port, "/reset" if reset else ""),
                                     method="POST" if reset else "GET", data=b"" if reset else None)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def start_nginx_proxy(procs, workdir, port, upstream_port):
    """nginx as a plain keep-alive reverse proxy: what a buyer compares a gateway's overhead with."""
    conf = os.path.join(workdir, "nginx-proxy.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes auto;
pid %(dir)s/nginx-proxy.pid;
error_log %(dir)s/nginx-proxy.error.log warn;
daemon off;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path %(dir)s/ngx-body; proxy_temp_path %(dir)s/ngx-proxy;
  fastcgi_temp_path %(dir)s/ngx-fcgi; uwsgi_temp_path %(dir)s/ngx-uwsgi; scgi_temp_path %(dir)s/ngx-scgi;
  keepalive_requests 1000000;
  upstream up { server 127.0.0.1:%(up)d; keepalive 512; keepalive_requests 1000000; }
  server { listen 127.0.0.1:%(port)d; keepalive_timeout 300s;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
}
""" % {"dir": workdir, "up": upstream_port, "port": port})
    proc = procs.start("nginx-proxy", ["nginx", "-c", conf, "-p", workdir])
    wait_port(port, proc=proc)
    return proc


PRICE = '{ input_per_mtok: "2.50", cached_input_per_mtok: "1.25", output_per_mtok: "10" }'


def tollgate_config(upstream_port, auto=False, metrics=True):
    base = "http://127.0.0.1:%d/v1" % upstream_port
    head = "ledger: { flush_ms: 100 }\n" + ("" if metrics else "metrics: { enabled: false }\n")
    if not auto:
        return (head + "models:\n"
                "  - { name: bench, provider: openai-compatible, base_url: \"%s\", api_key: sk-bench, price: %s }\n" % (base, PRICE))
    # Two models on the same fake upstream (their own api_key makes them two deployments), and the learned
    # route over them.
    return (head + "models:\n"
            "  - { name: bench-strong, provider: openai-compatible, base_url: \"%s\", api_key: sk-strong, price: %s }\n"
            "  - { name: bench-weak, provider: openai-compatible, base_url: \"%s\", api_key: sk-weak,"
            " price: { input_per_mtok: \"0.15\", output_per_mtok: \"0.60\" } }\n"
            "routes:\n  auto: { strategy: learned, strong: bench-strong, weak: bench-weak, strong_share: 0.5 }\n"
            % (base, PRICE, base))


def start_tollgate(procs, binary, workdir, name, port, config_text, db):
    """db: `sqlite:PATH` or a postgres:// URL."""
    config = os.path.join(workdir, name + ".yaml")
    with open(config, "w") as f:
        f.write(config_text)
    proc = procs.start(name, [binary, "serve", "--config", config, "--port", str(port), "--db", db],
                       env={"TOLLGATE_ADMIN_KEY": ADMIN_KEY})
    wait_port(port, proc=proc)
    return proc


def fresh_pg_database():
    """A new database on the cluster scripts/pg started (TOLLGATE_TEST_PG_URL), as a URL."""
    url = os.environ["TOLLGATE_TEST_PG_URL"]
    name = "bench_%d_%d" % (os.getpid(), int(time.time() * 1000) % 10**9)
    subprocess.run([os.path.join(os.environ["TOLLGATE_TEST_PG_BIN"], "psql"), url, "-qAtX", "-c", "CREATE DATABASE " + name],
                   check=True, capture_output=True)
    return url.rsplit("/", 1)[0] + "/" + name


def db_round_trips(port):
    """Statements this Tollgate process has sent to PostgreSQL (its /health; the call itself adds one)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=10) as response:
        return json.load(response)["database_round_trips"]


def admin(port, method, path, body=None):
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer " + ADMIN_KEY, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


class Scraper:
    """GET /metrics once a second while a run lasts, as a Prometheus server would (its CPU is the gateway's)."""

    def __init__(self, port, interval=1.0):
        self.port, self.interval, self.count = port, interval, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.done.wait(self.interval):
            request = urllib.request.Request("http://127.0.0.1:%d/metrics" % self.port,
                                             headers={"Authorization": "Bearer " + ADMIN_KEY})
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
            self.count += 1

    def stop(self):
        self.done.set()
        self.thread.join()
        return self.count


# ---- /proc --------------------------------------------------------------------------------------------

def tree(pid):
    """pid and its children (nginx's workers)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid] + [int(p) for p in out]


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


class CPUClock:
    """CPU time of a process tree between start() and stop(), to the nanosecond from each thread's schedstat;
    if a thread ended in between (its time would be lost), from utime + stime in clock ticks instead."""

    def __init__(self, pid):
        self.pid = pid

    def _sample(self):
        per_task, ticks = {}, 0.0
        for p in tree(self.pid):
            fields = _read("/proc/%d/stat" % p).rsplit(")", 1)[-1].split()
            if len(fields) > 12:
                ticks += (int(fields[11]) + int(fields[12])) / CLK_TCK
            try:
                tasks = os.listdir("/proc/%d/task" % p)
            except OSError:
                continue
            for t in tasks:
                text = _read("/proc/%d/task/%s/schedstat" % (p, t)).split()
                if text:
                    per_task[(p, t)] = int(text[0]) / 1e9
        return per_task, ticks

    def start(self):
        self.before = self._sample()

    def stop(self):
        (tasks0, ticks0), (tasks1, ticks1) = self.before, self._sample()
        if set(tasks0) - set(tasks1):
            return ticks1 - ticks0
        return sum(v - tasks0.get(k, 0.0) for k, v in tasks1.items())


def reset_peak_rss(pid):
    """Resets VmHWM (the peak resident set) of the tree to its current RSS (root only; ignored otherwise)."""
    for p in tree(pid):
        try:
            with open("/proc/%d/clear_refs" % p, "w") as f:
                f.write("5")
        except OSError:
            pass


def _status_kb(pid, field):
    total = 0
    for p in tree(pid):
        for line in _read("/proc/%d/status" % p).splitlines():
            if line.startswith(field + ":"):
                total += int(line.split()[1])
    return total


def peak_rss_mb(pid):
    return _status_kb(pid, "VmHWM") / 1024


def rss_mb(pid):
    return _status_kb(pid, "VmRSS") / 1024


def established(port):
    """Established TCP connections whose local port is `port` (the accepted side), from /proc/net/tcp."""
    count, hexport = 0, ":%04X" % port
    for line in _read("/proc/net/tcp").splitlines()[1:]:
        parts = line.split()
        if parts[1].endswith(hexport) and parts[3] == "01":
            count += 1
    return count
