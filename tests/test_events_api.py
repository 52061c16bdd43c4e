"""The /subscriptions admin API on the real service (lifespan, worker and all), with a loopback subscriber."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncio
from dataclasses import dataclass

import httpx
import pytest

import events
from tests.conftest import error_of, make_settings, start_service
from tests.events_helpers import ticket_event


class Receiver:
    """A stdlib HTTP server in a thread (independent of the service's loop) that records each POST."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.got = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (the stdlib's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                self.send_response(204)
                self.end_headers()
                receiver.got.set()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@dataclass
class Running:
    """The service under uvicorn in its thread, an HTTP client for it, and a way to call into its event loop."""

    http: httpx.Client
    loop: asyncio.AbstractEventLoop

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)  # get, post, delete

    def publish(self, event: events.Event) -> bool:
        """`events.publish` as the inbound webhooks call it: inside the service's own loop."""
        return asyncio.run_coroutine_threadsafe(events.publish(event), self.loop).result(timeout=10)


@contextmanager
def running(**settings: Any) -> Iterator[Running]:
    server, thread, url = start_service(make_settings(**settings))
    try:
        with httpx.Client(base_url=url, timeout=10, trust_env=False) as http:
            yield Running(http, server.servers[0].get_loop())
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture(params=["memory", "redis"])
def client(request: pytest.FixtureRequest) -> Iterator[Running]:
    """The whole service in sandbox mode (admin API open), its event queue in memory or in Redis."""
    extra = {"redis_url": request.getfixturevalue("redis_url")} if request.param == "redis" else {}
    with running(**extra) as service:
        yield service


def test_register_publish_deliver_and_delete(client, receiver):
    r = client.post("/subscriptions", json={"url": receiver.url, "events": ["ticket.created", "ticket.updated"]})
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["secret"].startswith("whsec_") and sub["enabled"] is True
    assert sub["secret"] not in client.get("/subscriptions").text  # shown once, at creation
    assert client.get(f"/subscriptions/{sub['id']}").json() == {k: v for k, v in sub.items() if k != "secret"}

    event = ticket_event(vendor_event_id="zd-1")
    assert client.publish(event) is True
    assert client.publish(ticket_event(vendor_event_id="zd-1")) is False
    assert receiver.got.wait(timeout=10)  # the background worker delivered it
    [got] = receiver.requests
    key = base64.b64decode(sub["secret"].removeprefix("whsec_"))
    signed = f"{got['headers']['webhook-id']}.{got['headers']['webhook-timestamp']}.".encode() + got["body"]
    assert got["headers"]["webhook-signature"] == "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert got["headers"]["webhook-id"] == event.id

    assert client.get(f"/subscriptions/{sub['id']}/dead-letters").json() == {"dead_letters": []}
    metrics = client.get("/metrics").text
    assert "connectors_events_deliveries" in metrics and "connectors_events_published" in metrics
    assert client.delete(f"/subscriptions/{sub['id']}").status_code == 204
    assert error_of(client.get(f"/subscriptions/{sub['id']}"))["code"] == "not_found"


@pytest.mark.parametrize("body, status, code", [
    ({"url": "https://169.254.169.254/hook", "events": ["ticket.created"]}, 400, "invalid_config"),
    ({"url": "http://hooks.example.com/x", "events": ["ticket.created"]}, 400, "invalid_config"),
    ({"url": "https://hooks.example.com/x", "events": []}, 422, "validation_error"),
    ({"url": "https://hooks.example.com/x", "events": ["ticket.deleted"]}, 422, "validation_error"),
    ({"url": "https://hooks.example.com/x", "events": ["ticket.created"], "secret": "plain"}, 422, "validation_error"),
])
def test_bad_registrations_are_contract_errors(client, body, status, code):
    r = client.post("/subscriptions", json=body)
    assert r.status_code == status and error_of(r)["code"] == code


def test_unknown_dead_letters_and_replays_are_not_found(client):
    sub = client.post("/subscriptions", json={"url": "https://hooks.example.com/x", "events": ["handoff.assigned"]}).json()
    assert error_of(client.get("/subscriptions/sub_nope/dead-letters"))["code"] == "not_found"
    r = client.post(f"/subscriptions/{sub['id']}/dead-letters/evt_nope/replay")
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"


def test_the_admin_api_is_closed_without_admin_keys_outside_the_sandbox():
    with running(sandbox=False, events_worker=False) as c:
        r = c.post("/subscriptions", json={"url": "https://hooks.example.com/x", "events": ["ticket.created"]})
        assert r.status_code == 403 and error_of(r)["code"] == "admin_disabled"
    with running(sandbox=False, connectors_admin_keys="ops:adm1n-key", connectors_api_keys="bot:caller-key") as c:
        assert c.get("/subscriptions", headers={"Authorization": "Bearer caller-key"}).status_code == 401
        assert c.get("/subscriptions", headers={"Authorization": "Bearer adm1n-key"}).json() == {"subscriptions": []}
