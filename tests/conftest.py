"""Fixtures: a real service with its sandbox on loopback (integration), and connectors over aioresponses (unit)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import pytest
import uvicorn
from aioresponses import aioresponses

from connectors.context import ConnectorContext
from connectors.deadline import Deadline
from settings import Settings

# Tight but honest budgets: faults in the emulators are what make calls slow, never sleeps in tests.
TEST_SETTINGS: dict[str, Any] = {
    "sandbox": True,
    "http_connect_timeout_seconds": 0.5,
    "http_total_timeout_seconds": 0.8,
    "request_deadline_seconds": 1.5,
    "retry_max_attempts": 3,
    "retry_backoff_initial_seconds": 0.01,
    "retry_backoff_max_seconds": 0.05,
    "retry_after_max_seconds": 2.0,
    "log_level": "WARNING",
    # The session-wide service's tests reseed and fault the emulators between calls: no caller cache there
    # (tests/test_cache.py starts services with it on).
    "caller_cache_enabled": False,
    # Their faults would add up across tests in the breaker (tests/test_etiquette*.py switch it on).
    "breaker_enabled": False,
    # The sandbox's LiveChat has no limit; the default budget would pace the suite's bursts of handoffs.
    "governor_default_limit_per_minute": 100_000,
}


def make_settings(**overrides: Any) -> Settings:
    """Settings that ignore any .env on the developer's machine."""
    return Settings(_env_file=None, **{**TEST_SETTINGS, **overrides})


@dataclass
class Service:
    """The running service and its sandbox, with helpers for tests."""

    url: str
    client: httpx.Client
    sandbox_root: str = ""
    emulators: dict[str, str] = field(default_factory=dict)
    app: Any = None  # the FastAPI app: its state holds the sandbox's emulators, whose records tests count

    def post(self, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        """POST JSON to the service."""
        return self.client.post(f"{self.url}{path}", json=body, headers=headers)

    def fault(self, vendor: str, kind: str, **options: Any) -> None:
        """Switch a fault on in one emulator."""
        r = self.client.post(f"{self.sandbox_root}/_sandbox/faults", json={"vendor": vendor, "kind": kind, **options})
        r.raise_for_status()

    def control(self, vendor: str, action: str, payload: dict[str, Any] | None = None) -> Any:
        """A vendor-specific sandbox switch."""
        r = self.client.post(f"{self.sandbox_root}/_sandbox/{vendor}/{action}", json=payload or {})
        r.raise_for_status()
        return r.json()

    def vendor_requests(self, vendor: str) -> list[dict[str, Any]]:
        """What an emulator received since the last reset."""
        return self.client.get(f"{self.sandbox_root}/_sandbox/requests", params={"vendor": vendor}).json()

    def reset(self) -> None:
        """Reseed every emulator and clear faults."""
        self.client.post(f"{self.sandbox_root}/_sandbox/reset").raise_for_status()


class SignallingServer(uvicorn.Server):
    """uvicorn that says when it is listening (or gave up), so tests wait on an event, not a clock."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()

    def run(self, sockets: Any = None) -> None:
        try:
            super().run(sockets)
        finally:
            self.ready.set()  # a failed start-up must not leave the fixture waiting


def start_service(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Run the real app under uvicorn on an ephemeral loopback port, in a thread."""
    from limits import uvicorn_options
    from server import create_app

    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_config=None, **uvicorn_options(settings))
    server = SignallingServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if not server.ready.wait(timeout=30) or not server.started:
        raise RuntimeError("service did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def service() -> Iterator[Service]:
    """One service in sandbox mode for the whole session."""
    server, thread, url = start_service(make_settings())
    client = audited_client(url, timeout=10, trust_env=False)
    info = client.get(f"{url}/sandbox").json()
    svc = Service(url=url, client=client, sandbox_root=info["control"].removesuffix("/_sandbox"),
                  emulators=info["emulators"], app=server.config.app)
    yield svc
    client.close()
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def svc(service: Service) -> Service:
    """The service, with every emulator reseeded and its faults cleared before the test."""
    service.reset()
    return service


# --- unit-test helpers ----------------------------------------------------------------------------------


@dataclass
class Sleeps:
    """Records the waits the retry layer asked for, instead of sleeping."""

    calls: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The contract error of an answer: the only key is `error`, and it names the answer's request id."""
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["request_id"] == response.headers["X-Request-ID"]
    return body["error"]


def sent(mock_http: aioresponses, method: str, url_prefix: str) -> list[Any]:
    """The calls aioresponses saw for a method and URL prefix, in order."""
    return [
        call
        for (m, url), calls in mock_http.requests.items()
        if m == method and str(url).startswith(url_prefix)
        for call in calls
    ]


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def mock_http() -> Iterator[aioresponses]:
    with aioresponses() as mocked:
        yield mocked


@pytest.fixture
def make_context(http_session: aiohttp.ClientSession, sleeps: Sleeps):
    """Build a ConnectorContext (not in sandbox mode) for unit tests."""

    def build(**overrides: Any) -> ConnectorContext:
        settings = make_settings(sandbox=False, **overrides)
        return ConnectorContext(
            session=http_session,
            settings=settings,
            deadline=Deadline(settings.request_deadline_seconds),
            allowed_hosts=frozenset(settings.connectors_allowed_hosts),
            shared={},
            sleep=sleeps,
        )

    return build


# --- shared state: a real Redis for the Redis-backed tests (tests/redis_server.py) ---------------------

from tests.redis_server import redis_server, redis_url, state  # noqa: E402,F401  (fixtures)


# --- the secrets audit: no credential the service was given in any log line or answer of the session ------

from tests.secrets_audit import AUDIT, audited_client  # noqa: E402


@pytest.fixture(autouse=True)
def _secrets_audit_names_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """What the audit saw during a test is charged to that test."""
    AUDIT.current = request.node.nodeid
    yield
    AUDIT.current = "(between tests)"


def pytest_configure(config: pytest.Config) -> None:
    AUDIT.install()


# --- the wire audit -------------------------------------------------------------------------------------


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when the service called anything its vendor does not document (see wire/README.md)."""
    from sandbox.core import SERVICE_CALLS
    from tests.wire_audit import undocumented

    bad = undocumented(SERVICE_CALLS)
    session.config.stash[WIRE_AUDIT] = (len(SERVICE_CALLS), bad)
    if (bad or AUDIT.leaks) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Say what the wire audit checked, and name every undocumented call."""
    terminalreporter.section("secrets audit")
    terminalreporter.write_line(AUDIT.summary())
    for test, secret_id, where in sorted(AUDIT.leaks):
        terminalreporter.write_line(f"LEAKED {secret_id} in {where} of {test}", red=True)
    checked, bad = config.stash.get(WIRE_AUDIT, (0, []))
    if not checked:
        return
    terminalreporter.section("wire audit")
    terminalreporter.write_line(f"{checked} distinct service calls to the emulators checked against wire/*.txt")
    for call in bad:
        terminalreporter.write_line(f"UNDOCUMENTED {call}", red=True)


WIRE_AUDIT = pytest.StashKey[tuple[int, list[str]]]()


# --- stored connections: a real PostgreSQL for the store tests (tests/pg_server.py) --------------------

from tests.pg_server import postgres_server  # noqa: E402,F401  (fixture)
