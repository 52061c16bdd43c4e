"""Vendors' webhooks in, on the real service: emulator → /webhooks → queue → subscriber, all on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest

from registry import CRMS
from sandbox.webhooks import SANDBOX_WEBHOOK_SECRET
from tests.conftest import Service, error_of, make_settings, start_service

WAIT_SECONDS = 10


class Subscriber:
    """A stdlib HTTP receiver in its own thread; tests wait on a condition for the events they expect."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (the stdlib's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(204)
                self.end_headers()
                with subscriber.changed:
                    subscriber.events.append(orjson.loads(body))
                    subscriber.changed.notify_all()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, found: Callable[[list[dict[str, Any]]], Any]) -> Any:
        """What `found` returns once it is truthy over the events received (fails after WAIT_SECONDS)."""
        with self.changed:
            assert self.changed.wait_for(lambda: found(self.events), timeout=WAIT_SECONDS), self.events
            return found(self.events)

    def of(self, event_type: str, object_id: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == event_type and object_id in (None, e["object_id"])]


@pytest.fixture
def subscriber(svc: Service) -> Iterator[Subscriber]:
    sub = Subscriber()
    r = svc.post("/subscriptions", {"url": sub.url, "events": ["ticket.created", "ticket.updated", "customer.updated",
                                                              "handoff.assigned", "handoff.queued", "handoff.closed"]})
    assert r.status_code == 201, r.text
    yield sub
    svc.client.delete(f"{svc.url}/subscriptions/{r.json()['id']}")
    sub.server.shutdown()


def target(svc: Service, vendor: str, connection: str = "default") -> None:
    svc.control(vendor, "webhooks", {"url": f"{svc.url}/webhooks/{vendor}/{connection}"})


def zendesk_signed(body: bytes, secret: str = SANDBOX_WEBHOOK_SECRET, stamp: str | None = None) -> dict[str, str]:
    stamp = stamp or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sig = base64.b64encode(hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()).decode()
    return {"X-Zendesk-Webhook-Signature": sig, "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "Content-Type": "application/json"}


def zendesk_event(event_id: str, ticket_id: str = "12345", kind: str = "status_changed") -> bytes:
    return orjson.dumps({"type": f"zen:event-type:ticket.{kind}", "id": event_id, "time": "2026-12-01T14:00:00Z",
                         "subject": f"zen:ticket:{ticket_id}", "detail": {"id": ticket_id},
                         "event": {"previous": "OPEN", "current": "PENDING"}})


def webhook(svc: Service, vendor: str, body: bytes, headers: dict[str, str], connection: str = "default") -> httpx.Response:
    return svc.client.post(f"{svc.url}/webhooks/{vendor}/{connection}", content=body, headers=headers)


# --- end to end: an emulator's object changes, a subscriber hears of it ---------------------------------


def test_a_zendesk_ticket_solved_in_the_emulator_reaches_a_subscriber(svc: Service, subscriber: Subscriber):
    target(svc, "zendesk")
    created = svc.post("/crm/ticket/create", {"crm_type": "zendesk", "subject": "Refund", "description": "Charged twice",
                                              "customer_id": "1001", "priority": "high"}).json()
    tid = created["id"]
    svc.post("/crm/ticket/update", {"crm_type": "zendesk", "ticket_id": tid, "status": "solved",
                                    "comment": {"body": "Refunded", "public": False}})
    [made] = subscriber.wait_for(lambda _, tid=tid: subscriber.of("ticket.created", tid))
    assert made["vendor"] == "zendesk" and made["connection_id"] == "default" and made["data"]["ticket"]["subject"] == "Refund"
    updates = subscriber.wait_for(lambda _: len(subscriber.of("ticket.updated", tid)) >= 2 and subscriber.of("ticket.updated", tid))
    changes = {k: v for u in updates for k, v in u["changes"].items()}
    assert changes["status"] == {"old": created["status"], "new": "solved"}  # Zendesk's own previous/current
    assert changes["comment"] == {"new": {"body": "Refunded", "public": False}}
    assert all(u["data"]["ticket"]["status"] == "solved" for u in updates)  # fetched through the connector


def test_hubspot_and_freshdesk_updates_say_what_changed_from_the_last_known_state(svc: Service, subscriber: Subscriber):
    for vendor in ("hubspot", "freshdesk"):
        customer = CRMS.connector_class(vendor).sandbox_seed["customer_id"]
        target(svc, vendor)
        body = {"crm_type": vendor, "subject": "Callback", "description": "Caller asked", "customer_id": customer,
                "priority": "low"}
        created = svc.post("/crm/ticket/create", body)
        assert created.status_code == 201, created.text
        tid = created.json()["id"]
        subscriber.wait_for(lambda _, tid=tid: subscriber.of("ticket.created", tid))
        svc.post("/crm/ticket/update", {"crm_type": vendor, "ticket_id": tid, "status": "pending", "priority": "urgent"})
        [update] = subscriber.wait_for(lambda _, tid=tid: subscriber.of("ticket.updated", tid))
        assert update["vendor"] == vendor
        assert update["changes"]["priority"] == {"old": "low", "new": "urgent"}, update
        assert update["changes"]["status"]["new"] == "pending"


def test_handoff_status_comes_from_livechat_events(svc: Service, subscriber: Subscriber):
    target(svc, "livechat")
    r = svc.post("/handoff/create", {"chat_type": "livechat", "context": {"call_id": "call_wh1", "customer_name": "Ahmed",
                                                                       "reason": "customer_request", "urgency": "medium"}})
    assert r.status_code == 201, r.text
    chat_id = r.json()["handoff_id"]
    [assigned] = subscriber.wait_for(lambda _: subscriber.of("handoff.assigned", chat_id))
    assert assigned["data"]["handoff"]["agent_id"] == r.json()["agent_id"]
    # LiveChat failing now does not matter: the state came with the event.
    svc.fault("livechat", "error", status=500, count=10)
    status = svc.post("/handoff/status", {"chat_type": "livechat", "handoff_id": chat_id})
    assert status.status_code == 200 and status.json()["status"] == "assigned"
    assert status.json()["agent_id"] == r.json()["agent_id"]
    svc.client.delete(f"{svc.sandbox_root}/_sandbox/faults")
    creds = svc.client.get(f"{svc.url}/sandbox").json()["credentials"]["livechat"]
    auth = (creds["account_id"], creds["api_key"]) if "account_id" in creds else None
    closed = svc.client.post(f"{svc.emulators['livechat']}/v3.6/agent/action/deactivate_chat", json={"id": chat_id},
                             auth=auth, headers={} if auth else {"Authorization": "Bearer sandbox"})
    assert closed.status_code == 200, closed.text
    subscriber.wait_for(lambda _: subscriber.of("handoff.closed", chat_id))
    assert svc.post("/handoff/status", {"chat_type": "livechat", "handoff_id": chat_id}).json()["status"] == "closed"


# --- verification over HTTP ----------------------------------------------------------------------------


def test_unverified_webhooks_are_401_and_never_processed(svc: Service, subscriber: Subscriber):
    body = zendesk_event("zd-bad-1")
    wrong = webhook(svc, "zendesk", body, zendesk_signed(body, secret="not-the-secret"))
    assert wrong.status_code == 401 and error_of(wrong)["code"] == "webhook_unverified"
    stale = webhook(svc, "zendesk", body, zendesk_signed(body, stamp="2020-01-01T00:00:00Z"))
    assert stale.status_code == 401 and "replay" in error_of(stale)["message"]
    unsigned = webhook(svc, "zendesk", body, {"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    nobody = webhook(svc, "zendesk", body, zendesk_signed(body), connection="conn_nonexistent")
    assert nobody.status_code == 401 and error_of(nobody)["code"] == "webhook_unverified"
    livechat = webhook(svc, "livechat", orjson.dumps({"secret_key": "guess", "action": "chat_deactivated",
                                                      "payload": {"chat_id": "C1"}}), {})
    assert livechat.status_code == 401
    freshdesk = webhook(svc, "freshdesk", b'{"event": "ticket_updated", "id": "1"}', {"X-Webhook-Secret": "guess"})
    assert freshdesk.status_code == 401
    assert error_of(webhook(svc, "salesforce", b"{}", {}))["code"] == "not_found"  # polled, not pushed
    assert subscriber.events == []
    assert SANDBOX_WEBHOOK_SECRET not in wrong.text + nobody.text


def test_replays_and_duplicate_event_ids_are_dropped(svc: Service, subscriber: Subscriber):
    body = zendesk_event("zd-dup-1")
    headers = zendesk_signed(body)
    first = webhook(svc, "zendesk", body, headers)
    assert first.status_code == 200 and first.json() == {"published": 1, "replay": False}, first.text
    again = webhook(svc, "zendesk", body, headers)  # the same signature and timestamp
    assert again.status_code == 200 and again.json() == {"published": 0, "replay": True}
    resent = webhook(svc, "zendesk", body, zendesk_signed(body, stamp=time.strftime("%Y-%m-%dT%H:%M:%S+00:00")))
    assert resent.status_code == 200 and resent.json()["published"] == 0  # a new signature, the same event id
    [event] = subscriber.wait_for(lambda _: subscriber.of("ticket.updated", "12345"))
    assert event["vendor_event_id"] == "zd-dup-1" and event["changes"]["status"] == {"old": "open", "new": "pending"}


def test_a_stored_connection_has_its_own_webhook_secret(svc: Service, subscriber: Subscriber):
    from sandbox import SANDBOX_CREDENTIALS

    credentials = {**SANDBOX_CREDENTIALS["zendesk"], "webhook_secret": "acme-zendesk-secret"}
    r = svc.post("/connections", {"crm_type": "zendesk", "display_name": "Acme", "credentials": credentials})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    body = zendesk_event("zd-conn-1")
    assert webhook(svc, "zendesk", body, zendesk_signed(body), connection=cid).status_code == 401  # not its secret
    ok = webhook(svc, "zendesk", body, zendesk_signed(body, secret="acme-zendesk-secret"), connection=cid)
    assert ok.status_code == 200 and ok.json()["published"] == 1, ok.text
    [event] = subscriber.wait_for(lambda _: [e for e in subscriber.events if e["connection_id"] == cid])
    assert event["type"] == "ticket.updated"
    svc.client.delete(f"{svc.url}/connections/{cid}")


# --- the Salesforce poller --------------------------------------------------------------------------------


def test_the_salesforce_poller_publishes_changed_cases(tmp_path):
    server, thread, url = start_service(make_settings(salesforce_poll_seconds=0.2))
    sub = Subscriber()
    try:
        with httpx.Client(base_url=url, timeout=10, trust_env=False) as http:
            r = http.post("/subscriptions", json={"url": sub.url, "events": ["ticket.created", "ticket.updated"]})
            assert r.status_code == 201, r.text
            made = http.post("/crm/ticket/create", json={"crm_type": "salesforce", "subject": "Polled", "priority": "low",
                                                         "description": "via SOQL", "customer_id": "003000000000001AAA"})
            assert made.status_code == 201, made.text
            case_id = made.json()["id"]
            [created] = sub.wait_for(lambda _: sub.of("ticket.created", case_id))
            assert created["vendor"] == "salesforce" and created["vendor_event_id"].startswith(case_id)
            http.post("/crm/ticket/update", json={"crm_type": "salesforce", "ticket_id": case_id, "priority": "urgent"})
            [updated] = sub.wait_for(lambda _: sub.of("ticket.updated", case_id))
            assert updated["changes"]["priority"] == {"old": "low", "new": "high"}  # urgent is High in a default org
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sub.server.shutdown()
