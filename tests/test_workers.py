"""Several uvicorn workers (WORKERS=2) sharing one real Redis: a key creates once, a lookup cached by one is a hit.

The service runs as `python server.py` in a subprocess, as deployed, pointed at `python -m sandbox` (one set of
emulators for both workers) through FRESHDESK_BASE_URL and CONNECTORS_ALLOWED_HOSTS.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.hosts import host_of
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2


@pytest.fixture
def emulators() -> Iterator[dict[str, str]]:
    """`python -m sandbox` on a free port: each emulator's URL and the control URL, as it prints them."""
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    urls: dict[str, str] = {}
    while "control" not in urls:  # one "name: url" line each; blocking reads, no clock
        line = proc.stdout.readline()
        assert line, "the sandbox exited before printing its URLs"
        name, _, url = line.strip().partition(": ")
        urls[name] = url
    yield urls
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def workers(emulators: dict[str, str], redis_url: str) -> Iterator[str]:
    """The service with WORKERS=2 and REDIS_URL; ready once every worker has logged its start-up line."""
    port = free_port()
    env = {
        **os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": str(WORKERS), "REDIS_URL": redis_url,
        "SANDBOX": "false", "LOG_LEVEL": "INFO", "CONNECTORS_ALLOWED_HOSTS": host_of(emulators["freshdesk"]),
        "FRESHDESK_DOMAIN": "sandbox", "FRESHDESK_API_KEY": "sandbox-key", "FRESHDESK_BASE_URL": emulators["freshdesk"],
    }
    proc = subprocess.Popen([sys.executable, "server.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    started = threading.Semaphore(0)
    tail: list[str] = []

    def drain() -> None:
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            tail[:] = [*tail[-30:], line]
            if '"event":"started"' in line:
                started.release()
        for _ in range(WORKERS):
            started.release()  # it exited: nobody may wait on

    threading.Thread(target=drain, daemon=True).start()
    for _ in range(WORKERS):
        assert started.acquire(timeout=60), "".join(tail)
    assert proc.poll() is None, "".join(tail)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


async def creates(url: str, count: int) -> list[httpx.Response]:
    """`count` identical creates with one Idempotency-Key, all at once, each on its own connection."""
    body = {"crm_type": "freshdesk", "subject": "Callback", "description": "Call me back", "customer_id": "1001"}

    async def one() -> httpx.Response:
        async with httpx.AsyncClient(base_url=url, timeout=20, trust_env=False) as client:
            return await client.post("/crm/ticket/create", json=body, headers={"Idempotency-Key": "call-42-ticket"})

    return await asyncio.gather(*(one() for _ in range(count)))


def test_a_key_creates_once_across_workers_and_a_cached_lookup_serves_both(workers: str, emulators: dict[str, str]):
    control = emulators["control"]
    before = httpx.get(f"{control}/tickets", params={"vendor": "freshdesk"}, trust_env=False).json()
    answers = asyncio.run(creates(workers, 30))
    assert {r.status_code for r in answers} == {201}
    assert len({r.json()["id"] for r in answers}) == 1
    assert sorted(r.headers["Idempotent-Replayed"] for r in answers).count("false") == 1
    after = httpx.get(f"{control}/tickets", params={"vendor": "freshdesk"}, trust_env=False).json()
    assert len(after) == len(before) + 1  # one ticket at the vendor, whichever worker took each call
    lookup = {"crm_type": "freshdesk", "customer_id": "1001"}
    seen = []
    for _ in range(6):  # fresh connections, so the kernel may hand each to either worker
        with httpx.Client(base_url=workers, timeout=20, trust_env=False) as client:
            seen.append(client.post("/crm/customer", json=lookup).headers["X-Cache"])
    assert seen[0] == "miss" and set(seen[1:]) == {"hit"}  # filled once, in the Redis both workers share
