"""The hot path's do-it-once parts (config cache, retry fast path, phone cache, pool, WORKERS) and issue 10's logs."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

import connectors.http as upstream_http
from connectors.vendor_config import ConfigCache
from connectors.zendesk import ZendeskConfig, ZendeskConnector
from errors import InvalidConfig
from observability import JSONFormatter, format_traceback, mask_pii
from phone import parse_phone, to_e164
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://acme.zendesk.com/api/v2"
CONFIG = {"subdomain": "acme", "email": "agent@acme.com", "api_token": "tok123"}


# --- config validated once per tenant --------------------------------------------------------------


def test_a_tenants_config_is_validated_once_and_reused(make_context):
    ctx = make_context()
    first = ZendeskConnector.from_request(CONFIG, ctx)
    again = ZendeskConnector.from_request(dict(CONFIG), ctx)
    other = ZendeskConnector.from_request({**CONFIG, "api_token": "another"}, ctx)
    assert first.config is again.config and other.config is not first.config
    assert other.config.api_token.get_secret_value() == "another"


def test_an_invalid_config_is_refused_every_time(make_context):
    for _ in range(2):
        with pytest.raises(InvalidConfig):
            ZendeskConnector.from_request({"subdomain": "acme"}, make_context())


def test_config_cache_is_bounded_and_keeps_types_apart():
    cache = ConfigCache(max_entries=2)
    configs = [cache.validated(ZendeskConfig, {"oauth_token": SecretStr(f"t{n}")}) for n in range(3)]
    assert len(cache._entries) == 2
    assert cache.validated(ZendeskConfig, {"oauth_token": SecretStr("t2")}) is configs[2]
    assert cache.validated(ZendeskConfig, {"oauth_token": SecretStr("t0")}) is not configs[0]  # evicted, rebuilt
    with pytest.raises(ValueError):  # pydantic's ValidationError: 1 is not "1", so it is validated (and refused)
        cache.validated(ZendeskConfig, {"oauth_token": "x", "subdomain": 1})


# --- retries cost nothing until a failure ----------------------------------------------------------


async def test_first_attempt_success_builds_no_retry_machinery(make_context, mock_http, monkeypatch):
    def no_tenacity(*args, **kwargs):
        raise AssertionError("tenacity was set up for a call that succeeded at once")

    monkeypatch.setattr(upstream_http, "AsyncRetrying", no_tenacity)
    mock_http.get(f"{BASE}/tickets/7.json", payload={"ticket": {"id": 7, "status": "open"}})
    assert (await ZendeskConnector.from_request(CONFIG, make_context()).get_ticket("7")).id == "7"


async def test_a_failed_first_attempt_still_backs_off_and_retries(make_context, mock_http, sleeps):
    mock_http.get(f"{BASE}/tickets/7.json", status=503, body="down")
    mock_http.get(f"{BASE}/tickets/7.json", status=503, body="down")
    mock_http.get(f"{BASE}/tickets/7.json", payload={"ticket": {"id": 7, "status": "open"}})
    ticket = await ZendeskConnector.from_request(CONFIG, make_context(request_deadline_seconds=10)).get_ticket("7")
    assert ticket.id == "7" and len(sleeps.calls) == 2


# --- phones parsed once per spelling ---------------------------------------------------------------


def test_phone_parsing_is_cached_and_unchanged():
    assert to_e164("+971 50 123 4567", "US") == to_e164("+971 50 123 4567", "US") == "+971501234567"
    assert to_e164("not a number", "US") == "not a number" and to_e164(None, "US") is None
    assert parse_phone("+971 50 123 4567", "US") is parse_phone("+971 50 123 4567", "US")
    assert parse_phone("+971 50 123 4567", "US").variants[0] == "+971501234567"


# --- pool, WORKERS ---------------------------------------------------------------------------------


def test_the_pool_has_no_per_host_ceiling_by_default():
    settings = make_settings()
    assert settings.http_pool_limit_per_host == 0 and settings.http_pool_limit >= 1000 // 2
    assert settings.workers == 1


async def test_the_shared_session_is_sized_from_settings():
    from server import create_app

    app = create_app(make_settings(sandbox=False, http_pool_limit=321, http_pool_limit_per_host=0))
    async with app.router.lifespan_context(app):
        assert (app.state.http.connector.limit, app.state.http.connector.limit_per_host) == (321, 0)


def test_workers_setting_runs_uvicorn_with_a_factory(monkeypatch):
    import uvicorn

    import server

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setattr(sys, "argv", ["server.py"])
    monkeypatch.setenv("WORKERS", "2")
    monkeypatch.setattr(server, "configure_logging", lambda level: None)
    server.main()
    app, options = calls[0]
    assert app == "server:worker_app" and options["factory"] and options["workers"] == 2


# --- issue 10: tracebacks, one JSON stream, readable addresses -------------------------------------


def _record_of(exc: BaseException) -> logging.LogRecord:
    return logging.LogRecord("connectors", logging.ERROR, __file__, 1, "unhandled error", None, (type(exc), exc, exc.__traceback__))


def test_a_failure_logs_its_full_traceback_with_causes():
    def inner() -> None:
        raise KeyError("missing")

    try:
        try:
            inner()
        except KeyError as exc:
            raise RuntimeError("wrapped for ahmed@example.ae") from exc
    except RuntimeError as exc:
        line = orjson.loads(JSONFormatter().format(_record_of(exc)))
    assert line["exception"] == "RuntimeError"
    text = line["traceback"]
    assert text.index("KeyError: 'missing'") < text.index("direct cause") < text.index("RuntimeError: wrapped")
    assert "in inner" in text and "ahmed@example.ae" not in text and "a***@example.ae" in text


def test_a_traceback_never_echoes_validation_input():
    secret = "-".join(("s3cret", "token"))  # not spelled out on the line the traceback shows
    payload = {"oauth_token": secret, "bogus": secret}
    try:
        ZendeskConfig.model_validate(payload)
    except Exception as exc:  # pydantic's own text would print input_value='s3cret-token'
        text = format_traceback(exc)
    assert "ValidationError" in text and "bogus" in text and "s3cret-token" not in text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Uvicorn running on http://127.0.0.1:8090", "Uvicorn running on http://127.0.0.1:8090"),
        ("peer 10.20.30.40:51234 and 192.168.1.1", "peer 10.20.30.40:51234 and 192.168.1.1"),
        ("caller +971 50 123 4567 or 212.555.0100", "caller ***4567 or ***0100"),
        ("write to ahmed@example.ae from 127.0.0.1", "write to a***@example.ae from 127.0.0.1"),
    ],
)
def test_addresses_stay_readable_while_emails_and_phones_are_masked(text, masked):
    assert mask_pii(text) == masked


LOGGING_SCRIPT = """
import asyncio, logging, sys, warnings
sys.path.insert(0, {root!r})
from observability import configure_logging
configure_logging("INFO")
logging.getLogger("some.library").warning("plain stdlib line")
warnings.warn("a deprecation")

async def main():
    async def boom():
        raise ValueError("never awaited")
    task = asyncio.get_running_loop().create_task(boom())
    await asyncio.sleep(0)
    del task
import uvloop
uvloop.run(main())
import gc; gc.collect()
raise RuntimeError("uncaught at top level")
"""


def test_every_log_in_the_process_is_one_json_stream():
    proc = subprocess.run([sys.executable, "-c", LOGGING_SCRIPT.format(root=str(ROOT))], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert proc.stderr == ""
    lines = [orjson.loads(line) for line in proc.stdout.splitlines()]
    by_logger = {line.get("logger", "connectors"): line for line in lines}
    assert by_logger["some.library"]["event"] == "plain stdlib line"
    assert "a deprecation" in by_logger["py.warnings"]["event"]
    assert "never awaited" in by_logger["asyncio"]["traceback"]
    assert by_logger["connectors"]["event"] == "uncaught exception" and "uncaught at top level" in by_logger["connectors"]["traceback"]


def test_the_running_service_writes_json_with_its_address_readable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "SANDBOX": "false", "LOG_LEVEL": "INFO"}
    proc = subprocess.Popen([sys.executable, "server.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    guard = threading.Timer(30, proc.kill)  # a hung start-up fails the test instead of hanging it
    guard.start()
    try:
        running = None
        for raw in proc.stdout:
            line = orjson.loads(raw)
            if "Uvicorn running" in line["event"]:
                running = line
                break
    finally:
        guard.cancel()
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert running and running["logger"] == "uvicorn.error" and "http://127.0.0.1:" in running["event"]
    assert "***" not in running["event"]
    assert stderr == ""
