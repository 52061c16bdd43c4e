"""A real redis-server for the tests (no mocks of Redis): CI's (TEST_REDIS_URL), else one started here, else skip."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import redis

from state import MemoryState, RedisState, State


@dataclass
class RedisServer:
    """A redis-server on loopback; `process` is set when the tests started it (and so stop it)."""

    url: str
    process: subprocess.Popen[str] | None = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis_server() -> RedisServer:
    """A throwaway redis-server (no persistence) on a free loopback port, returned once it accepts connections."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (.ci/run installs it from Debian's packages)")
    port = free_port()
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--logfile", ""]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:  # its own log says when it is ready: nothing here waits on a clock
        if "Ready to accept connections" in line:
            process.stdout.close()
            return RedisServer(f"redis://127.0.0.1:{port}/0", process)
    process.wait(timeout=10)
    pytest.skip(f"redis-server did not start (exit {process.returncode})")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """CI's Redis when TEST_REDIS_URL is set, else one started for the session."""
    url = os.environ.get("TEST_REDIS_URL")
    server = RedisServer(url) if url else start_redis_server()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The test Redis, emptied before each test."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    return redis_server.url


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest) -> AsyncIterator[State]:
    """Each backend in turn: the embedded store and a real Redis."""
    store: State = (
        MemoryState(16 * 1024 * 1024) if request.param == "memory" else RedisState(request.getfixturevalue("redis_url"))
    )
    yield store
    await store.close()
