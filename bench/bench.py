"""Throughput, latency and CPU per request: the service vs. the upstream itself vs. an ordinary FastAPI proxy.

On loopback it starts a fast fake Zendesk (bench/fake_upstream.py; 0 ms and 50 ms), the service pointed at it
through the request's `config.base_url` and CONNECTORS_ALLOWED_HOSTS (logging on, LOG_LEVEL=INFO), and
bench/reference_proxy.py doing the same lookup, then drives each in turn with wrk at 1, 16 and 128 in flight,
in interleaved rounds, and reports medians. CPU per request is the target's whole process tree
(/proc/<pid>/stat utime+stime, children included) over the run divided by the requests wrk completed, which
stays honest on a shared machine where wall-clock figures do not. The service runs with its caller cache off, so
every lookup reaches the upstream; a later part repeats the 50 ms, 128-in-flight case with WORKERS=2 for both, and
a last one measures the known caller (the cache on: every lookup after the first is a hit) against the reference. Markdown on stdout; everything as JSON in bench/results/.

`make bench`, `python bench/bench.py --quick`, `--service-root DIR` to measure another checkout, or `--base-root DIR`
to measure another checkout beside this one in the same rounds (before/after on a shared machine).
The per-operation latency table against the sandbox emulators is the other mode: bench/operations.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
USER_PATH = "/api/v2/users/1001.json?include=organizations"
EMAIL, TOKEN = "bench@example.com", "bench-token"
AUTH = "Basic YmVuY2hAZXhhbXBsZS5jb20vdG9rZW46YmVuY2gtdG9rZW4="  # base64("bench@example.com/token:bench-token")


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian's `wrk` package when missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "wrk"], check=False)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("the benchmark needs wrk: `sudo apt-get install wrk` (Debian/Ubuntu) or `brew install wrk`")
    return found


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user+system) of a process and all its live descendants, plus what reaped children used."""
    parents: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid ...
        parents[int(entry)] = int(fields[1])
        stats[int(entry)] = fields
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        tree.update(children)
        frontier.extend(children)
    # utime, stime, cutime, cstime are fields 14-17 of /proc/<pid>/stat, i.e. 11-14 after the state.
    ticks = sum(sum(int(v) for v in stats[pid][11:15]) for pid in tree if pid in stats)
    return ticks / CLK_TCK


@dataclass
class Target:
    """A process under test and how to call it."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    method: str
    path: str
    bodies: dict[int, str] = field(default_factory=dict)  # upstream delay -> request body (service, reference)
    upstream_port: dict[int, int] = field(default_factory=dict)  # the upstream target's port per delay


def wait_until_up(port: int, path: str = "/", method: str = "GET", body: str | None = None) -> None:
    """Poll until a freshly started process answers one request."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body.encode() if body else None,
                                             method=method, headers={"Content-Type": "application/json",
                                                                     "Authorization": AUTH})
            with urllib.request.urlopen(request, timeout=2) as answer:
                if answer.status < 300:
                    return
                raise RuntimeError(f"port {port} answered {answer.status}")
        except (OSError, ConnectionError):
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not come up")


def run_wrk(wrk: str, port: int, method: str, path: str, body: str | None, conns: int, seconds: float) -> dict[str, Any]:
    """One wrk run; its Lua script prints a JSON summary line."""
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_PATH": path, "BENCH_AUTH": AUTH}
    if body:
        env["BENCH_BODY"] = body
    cmd = [wrk, f"-t{min(conns, 2)}", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(HERE / "post.lua"),
           f"http://127.0.0.1:{port}"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH_JSON "))
    return json.loads(line.removeprefix("BENCH_JSON "))


def measure(wrk: str, target: Target, delay: int, conns: int, seconds: float) -> dict[str, Any]:
    """req/s, p50, p99 and CPU µs per request of one target at one level."""
    port = target.upstream_port.get(delay, target.port)
    cpu_before = tree_cpu_seconds(target.proc.pid)
    summary = run_wrk(wrk, port, target.method, target.path, target.bodies.get(delay), conns, seconds)
    cpu = tree_cpu_seconds(target.proc.pid) - cpu_before
    done = max(1, summary["requests"])
    return {
        "rps": summary["requests"] / (summary["duration_us"] / 1e6),
        "p50_ms": summary["p50_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000,
        "cpu_us_per_req": cpu / done * 1e6,
        "errors": summary["errors"],
        "non2xx": summary["non2xx"],
        "requests": summary["requests"],
    }


def lookup_body(upstream_port: int) -> str:
    """POST /crm/customer as a multi-tenant caller sends it: the tenant's config in the body."""
    config = {"base_url": f"http://127.0.0.1:{upstream_port}", "email": EMAIL, "api_token": TOKEN}
    return json.dumps({"crm_type": "zendesk", "customer_id": "1001", "config": config})


class Bench:
    """Owns the processes of one benchmark run."""

    def __init__(self, service_root: Path, log_dir: Path, service_env: dict[str, str]) -> None:
        self.service_root = service_root
        self.service_env = service_env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.upstreams = {delay: free_port() for delay in (0, 50)}

    def spawn(self, args: list[str], cwd: Path, env: dict[str, str] | None = None, name: str = "") -> subprocess.Popen[bytes]:
        """A child process whose stdout (JSON logs: formatted, then dropped) goes to /dev/null."""
        stderr = open(self.log_dir / f"{name}.stderr", "ab")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        self.procs.append(proc)
        return proc

    def start_upstreams(self) -> Target:
        """Both fake Zendesks (0 ms and 50 ms); as a target, wrk calls them directly."""
        procs = [self.spawn([sys.executable, str(HERE / "fake_upstream.py"), "--port", str(port), "--delay-ms",
                             str(delay)], HERE, name=f"upstream-{delay}") for delay, port in self.upstreams.items()]
        for port in self.upstreams.values():
            wait_until_up(port, USER_PATH)
        # CPU is read from the process tree, so the upstream target's "process" is looked up per delay below.
        return Target("upstream", procs[0], self.upstreams[0], "GET", USER_PATH, upstream_port=dict(self.upstreams))

    def start_service(self, workers: int, cached: bool = False, root: Path | None = None) -> Target:
        """The service, configured by the environment like a deployment (WORKERS honoured by server.py).

        The ordinary request path runs with the caller cache off, so every lookup reaches the upstream;
        `cached` measures the known caller instead (every lookup after the first is a cache hit). `root`: another
        checkout measured in the same rounds (its target is named `...-base`), for before/after figures.
        """
        port = free_port()
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.upstreams.values())
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "INFO", "SANDBOX": "false",
               "CONNECTORS_ALLOWED_HOSTS": hosts, "WORKERS": str(workers),
               "CALLER_CACHE_ENABLED": str(cached).lower(), **self.service_env}
        name = ("cache-hit" if cached else "service") + ("-base" if root is not None else "")
        proc = self.spawn([sys.executable, "server.py"], root or self.service_root, env, name=f"{name}-w{workers}")
        bodies = {delay: lookup_body(p) for delay, p in self.upstreams.items()}
        wait_until_up(port, "/crm/customer", "POST", bodies[0])
        return Target(name, proc, port, "POST", "/crm/customer", bodies)

    def start_reference(self, workers: int) -> Target:
        """The ordinary FastAPI proxy."""
        port = free_port()
        proc = self.spawn([sys.executable, "reference_proxy.py", "--port", str(port), "--workers", str(workers)],
                          HERE, name=f"reference-w{workers}")
        bodies = {delay: lookup_body(p) for delay, p in self.upstreams.items()}
        wait_until_up(port, "/crm/customer", "POST", bodies[0])
        return Target("reference", proc, port, "POST", "/crm/customer", bodies)

    def stop(self, procs: list[subprocess.Popen[bytes]] | None = None) -> None:
        """Terminate (then wait for) the given processes, or all of them."""
        for proc in procs or list(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            self.procs.remove(proc)


# The targets whose rows get ratios to the reference: the service, its cache-hit run, and the base checkout's.
SERVICE_TARGETS = frozenset({"service", "cache-hit", "service-base", "cache-hit-base"})


def rounds_of(wrk: str, targets: list[Target], plan: list[tuple[int, int]], rounds: int, seconds: float,
              upstream_procs: dict[int, subprocess.Popen[bytes]]) -> list[dict[str, Any]]:
    """Every (delay, level) for every target, target order rotated each round so drift hits all alike."""
    runs = []
    for round_no in range(rounds):
        for delay, conns in plan:
            order = targets[round_no % len(targets):] + targets[:round_no % len(targets)]
            for target in order:
                if target.name == "upstream":
                    target.proc = upstream_procs[delay]
                result = measure(wrk, target, delay, conns, seconds)
                runs.append({"round": round_no, "target": target.name, "delay_ms": delay, "conns": conns, **result})
                print(f"  round {round_no + 1} {target.name:14} {delay:>2} ms upstream, {conns:>3} in flight: "
                      f"{result['rps']:8.0f} req/s p50 {result['p50_ms']:7.2f} ms p99 {result['p99_ms']:8.2f} ms "
                      f"{result['cpu_us_per_req']:6.0f} µs CPU/req", file=sys.stderr)
    return runs


def medians(runs: list[dict[str, Any]], workers: int) -> list[dict[str, Any]]:
    """Median per (target, delay, level) across rounds, with the spread of CPU/request as the noise figure."""
    keys = sorted({(r["delay_ms"], r["conns"], r["target"]) for r in runs})
    rows = []
    for delay, conns, target in keys:
        group = [r for r in runs if (r["delay_ms"], r["conns"], r["target"]) == (delay, conns, target)]
        row = {"workers": workers, "target": target, "delay_ms": delay, "conns": conns, "rounds": len(group)}
        for metric in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req"):
            row[metric] = statistics.median(r[metric] for r in group)
        cpus = [r["cpu_us_per_req"] for r in group]
        row["cpu_spread_pct"] = (max(cpus) - min(cpus)) / row["cpu_us_per_req"] * 100 if row["cpu_us_per_req"] else 0
        row["errors"] = sum(r["errors"] + r["non2xx"] for r in group)
        rows.append(row)
    by_key = {(r["workers"], r["delay_ms"], r["conns"], r["target"]): r for r in rows}
    for row in rows:
        upstream = by_key.get((row["workers"], row["delay_ms"], row["conns"], "upstream"))
        reference = by_key.get((row["workers"], row["delay_ms"], row["conns"], "reference"))
        if upstream and row["target"] != "upstream":
            row["rps_vs_upstream"] = row["rps"] / upstream["rps"]
            row["added_p50_ms"] = row["p50_ms"] - upstream["p50_ms"]
        if reference and row["target"] in SERVICE_TARGETS:
            row["rps_vs_reference"] = row["rps"] / reference["rps"]
            row["cpu_vs_reference"] = row["cpu_us_per_req"] / reference["cpu_us_per_req"]
            row["p99_p50"] = row["p99_ms"] / row["p50_ms"]
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The medians as Markdown."""
    def fmt(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = ["| workers | upstream | in flight | target | req/s | p50 ms | p99 ms | p99/p50 | CPU µs/req (spread) | "
             "added p50 ms | req/s vs upstream | req/s vs ref | CPU vs ref | errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['delay_ms']} ms | {r['conns']} | {r['target']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {fmt(r['p99_ms'] / r['p50_ms'] if r['p50_ms'] else None, '.1f')} | "
            f"{r['cpu_us_per_req']:.0f} (±{r['cpu_spread_pct'] / 2:.0f}%) | {fmt(r.get('added_p50_ms'), '.2f')} | "
            f"{fmt(r.get('rps_vs_upstream'), '.2f')} | {fmt(r.get('rps_vs_reference'), '.2f')} | "
            f"{fmt(r.get('cpu_vs_reference'), '.2f')} | {r['errors']} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run both parts, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of 1 s per run (a smoke run, not figures)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each wrk run")
    parser.add_argument("--service-root", type=Path, default=ROOT, help="checkout whose server.py is measured")
    parser.add_argument("--label", default="", help="tag for the JSON file, e.g. before/after")
    parser.add_argument("--base-root", type=Path, default=None,
                        help="a second checkout (e.g. main) measured in the same rounds as `service-base`")
    parser.add_argument("--no-workers", action="store_true", help="skip the WORKERS=2 part")
    parser.add_argument("--no-cache", action="store_true", help="skip the known-caller (cache hit) part")
    parser.add_argument("--service-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the service (experiments, e.g. LOG_LEVEL=WARNING)")
    parser.add_argument("--levels", default="1,16,128", help="requests in flight, comma-separated")
    parser.add_argument("--delays", default="0,50", help="upstream delays in ms, from 0 and 50")
    args = parser.parse_args()
    rounds, seconds = (1, 1.0) if args.quick else (args.rounds, args.seconds)
    wrk = ensure_wrk()
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    bench = Bench(args.service_root.resolve(), RESULTS, dict(item.split("=", 1) for item in args.service_env))
    load_before = os.getloadavg()
    try:
        upstream = bench.start_upstreams()
        upstream_procs = {0: bench.procs[0], 50: bench.procs[1]}
        levels = [int(n) for n in args.levels.split(",")]
        plan = [(int(delay), conns) for delay in args.delays.split(",") for conns in levels]
        base = args.base_root.resolve() if args.base_root else None

        def services(workers: int, cached: bool = False) -> list[Target]:
            """The service under test, and the base checkout's when one is given."""
            found = [bench.start_service(workers, cached)]
            return found + ([bench.start_service(workers, cached, root=base)] if base else [])

        targets = [upstream, *services(1), bench.start_reference(1)]
        for target in targets[1:]:  # warm-up: caches, pools and the first-request imports
            run_wrk(wrk, target.port, target.method, target.path, target.bodies[0], 16, 1)
        runs = rounds_of(wrk, targets, plan, rounds, seconds, upstream_procs)
        rows = medians(runs, 1)
        if not args.no_workers:
            bench.stop([t.proc for t in targets[1:]])
            targets = [upstream, *services(2), bench.start_reference(2)]
            for target in targets[1:]:
                run_wrk(wrk, target.port, target.method, target.path, target.bodies[50], 128, 1)
            more = rounds_of(wrk, targets, [(50, 128)], rounds, seconds, upstream_procs)
            runs += [{**r, "workers": 2} for r in more]
            rows += medians(more, 2)
        if not args.no_cache:  # the known caller: cache hits against the reference's full lookups
            bench.stop([t.proc for t in targets[1:]])
            targets = [upstream, *services(1, cached=True), bench.start_reference(1)]
            for target in targets[1:]:
                run_wrk(wrk, target.port, target.method, target.path, target.bodies[0], 16, 1)
            more = rounds_of(wrk, targets, [(0, 1), (0, 16)], rounds, seconds, upstream_procs)
            runs += [{**r, "part": "cache"} for r in more]
            rows += [{**r, "part": "cache"} for r in medians(more, 1)]
    finally:
        bench.stop()
    report = {"stamp": stamp, "label": args.label, "service_root": str(args.service_root),
              "base_root": str(args.base_root) if args.base_root else None, "rounds": rounds,
              "service_env": bench.service_env,
              "seconds": seconds, "cpus": os.cpu_count(), "loadavg_before": load_before,
              "loadavg_after": os.getloadavg(), "medians": rows, "runs": runs}
    out = RESULTS / f"bench-{stamp}{'-' + args.label if args.label else ''}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\n{rounds} round(s) of {seconds:g} s per run, medians; load average {load_before[0]:.1f} -> "
          f"{report['loadavg_after'][0]:.1f} on {os.cpu_count()} CPUs (other work on the machine shows up as noise)\n")
    print(table(rows))
    print(f"\nJSON: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
