"""Per-operation latency against the sandbox emulators (the second benchmark mode; `make bench` runs bench.py).

Prints a Markdown table of p50/p95/p99 per operation and the latency the service adds on top of the
vendor call itself (service p50 minus direct p50). Usage: `python bench/operations.py --requests 300 --concurrency 8`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from itertools import count
from typing import Any

import aiohttp

CALL_IDS = count()
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

@dataclass(frozen=True)
class Operation:
    """One service call, and (where one exists) the single vendor call it wraps, for the overhead figure."""

    name: str
    path: str
    body: dict[str, Any] | Callable[[], dict[str, Any]]  # a callable gives each request its own body
    direct: tuple[str, str] | None = None  # (vendor, path under the emulator) for a GET

OPERATIONS: tuple[Operation, ...] = (
    Operation("health", "/health", {}),
    Operation("zendesk get_ticket", "/crm/ticket", {"crm_type": "zendesk", "ticket_id": "12345"},
              ("zendesk", "/api/v2/tickets/12345.json")),
    Operation("zendesk get_customer", "/crm/customer", {"crm_type": "zendesk", "customer_id": "1001"},
              ("zendesk", "/api/v2/users/1001.json?include=organizations")),
    Operation("zendesk find by phone", "/crm/customer/search", {"crm_type": "zendesk", "phone": "+971 50 123 4567"},
              ("zendesk", "/api/v2/users/search.json?query=phone:*501234567&include=organizations")),
    Operation("zendesk create_ticket", "/crm/ticket/create",
              {"crm_type": "zendesk", "subject": "Bench", "description": "benchmark ticket", "customer_id": "1001"}),
    Operation("salesforce get_customer (SOQL + Account)", "/crm/customer",
              {"crm_type": "salesforce", "customer_id": "003000000000001AAA"}),
    Operation("salesforce find by phone (SOSL)", "/crm/customer/search",
              {"crm_type": "salesforce", "phone": "+971 50 123 4567"}),
    Operation("hubspot get_customer (+ deals batch)", "/crm/customer", {"crm_type": "hubspot", "customer_id": "12345"}),
    Operation("hubspot find by phone", "/crm/customer/search", {"crm_type": "hubspot", "phone": "+971 50 123 4567"}),
    Operation("freshdesk get_ticket", "/crm/ticket", {"crm_type": "freshdesk", "ticket_id": "54321"}),
    Operation("freshdesk find by phone", "/crm/customer/search", {"crm_type": "freshdesk", "phone": "+971 50 123 4567"}),
    Operation("livechat handoff (full sequence)", "/handoff/create", lambda: {
        "chat_type": "livechat",
        "context": {"call_id": f"bench-{next(CALL_IDS)}", "customer_name": "Ahmed Al-Mansoori",
                    "customer_email": "ahmed@example.ae", "reason": "customer_request", "urgency": "medium",
                    "transcript": [{"role": "user", "text": "I need help with my order"},
                                   {"role": "bot", "text": "What's your order number?"},
                                   {"role": "user", "text": "ORD12345"}]},
    }),
)

def free_port() -> int:
    """A free loopback port for the service under test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

def percentile(samples: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) in milliseconds."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]

async def measure(session: aiohttp.ClientSession, method: str, url: str, body: Any, n: int, concurrency: int,
                  headers: dict[str, str] | None = None) -> list[float]:
    """Latencies (ms) of n calls, `concurrency` in flight at once; every answer must be 2xx."""
    samples: list[float] = []
    queue = iter(range(n))

    async def worker() -> None:
        for _ in queue:
            started = time.perf_counter()
            payload = body() if callable(body) else body
            async with session.request(method, url, json=payload if method == "POST" else None, headers=headers) as r:
                await r.read()
                if r.status >= 300:
                    raise RuntimeError(f"{url} answered {r.status}")
            samples.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples

async def wait_until_up(session: aiohttp.ClientSession, url: str) -> None:
    """Poll until a freshly started process answers."""
    for _ in range(400):
        try:
            async with session.get(url) as r:
                if r.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")

def service_env(service_port: int, sandbox_root: str) -> dict[str, str]:
    """Environment for the service: each vendor's base URL and credentials pointing at the emulators."""
    from sandbox import SANDBOX_CREDENTIALS

    env = {**os.environ, "PORT": str(service_port), "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING", "SANDBOX": "false",
           "CONNECTORS_ALLOWED_HOSTS": sandbox_root.removeprefix("http://")}
    for vendor, creds in SANDBOX_CREDENTIALS.items():
        env[f"{vendor}_BASE_URL".upper()] = f"{sandbox_root}/{vendor}"
        env.update({f"{vendor}_{key}".upper(): value for key, value in creds.items()})
    return env

async def run(requests: int, concurrency: int) -> str:
    """Emulators and service in separate processes (as in production, the vendor is not on our event loop)."""
    sandbox_port, service_port = free_port(), free_port()
    sandbox_root = f"http://127.0.0.1:{sandbox_port}"
    sandbox = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", str(sandbox_port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL)
    service = subprocess.Popen([sys.executable, "server.py"], cwd=ROOT, env=service_env(service_port, sandbox_root),
                               stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{service_port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_until_up(session, f"{base}/health")
            await wait_until_up(session, f"{sandbox_root}/_sandbox/requests?vendor=zendesk")
            from sandbox import SANDBOX_CREDENTIALS

            rows = ["| operation | p50 ms | p95 ms | p99 ms | direct vendor p50 ms | added by service p50 ms |",
                    "|---|---|---|---|---|---|"]
            for op in OPERATIONS:
                method = "GET" if op.path == "/health" else "POST"
                await measure(session, method, f"{base}{op.path}", op.body, 20, 2)  # warm-up
                samples = await measure(session, method, f"{base}{op.path}", op.body, requests, concurrency)
                direct_p50 = added = "-"
                if op.direct:
                    vendor, path = op.direct
                    creds = SANDBOX_CREDENTIALS[vendor]
                    auth = aiohttp.BasicAuth(f"{creds['email']}/token", creds["api_token"])
                    url = f"{sandbox_root}/{vendor}{path}"
                    hdrs = {"Authorization": auth.encode()}
                    await measure(session, "GET", url, None, 20, 2, hdrs)
                    direct = await measure(session, "GET", url, None, requests, concurrency, hdrs)
                    direct_p50 = f"{statistics.median(direct):.1f}"
                    added = f"{statistics.median(samples) - statistics.median(direct):.1f}"
                rows.append(f"| {op.name} | {percentile(samples, 50):.1f} | {percentile(samples, 95):.1f} | "
                            f"{percentile(samples, 99):.1f} | {direct_p50} | {added} |")
                await session.post(f"{sandbox_root}/_sandbox/reset")  # keep the emulators' request logs small
    finally:
        for proc in (service, sandbox):
            proc.terminate()
            proc.wait(timeout=10)
    return "\n".join(rows)

def main() -> None:
    """Parse arguments, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(f"{args.requests} requests per operation, {args.concurrency} in flight, loopback, sandbox emulators\n")
    print(asyncio.run(run(args.requests, args.concurrency)))

if __name__ == "__main__":
    main()
