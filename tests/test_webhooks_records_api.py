"""Intercom, ServiceNow and Dynamics 365 webhooks on the real service: emulator → /webhooks → queue → heard."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from registry import CRMS
from sandbox import webhook_payloads
from sandbox.webhooks import SANDBOX_WEBHOOK_SECRET
from tests.conftest import Service, error_of
from tests import test_webhooks_api
from tests.test_webhooks_api import Subscriber, target, webhook

VENDORS = ("intercom", "servicenow", "dynamics")
heard = test_webhooks_api.subscriber  # the subscriber fixture, under this name here


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_ticket_made_and_changed_in_the_emulator_reaches_a_subscriber(svc: Service, heard: Subscriber, vendor):
    target(svc, vendor)
    customer = CRMS.connector_class(vendor).sandbox_seed["customer_id"]
    created = svc.post("/crm/ticket/create", {"crm_type": vendor, "subject": "Callback", "description": "Caller asked",
                                              "customer_id": customer, "priority": "low"})
    assert created.status_code == 201, created.text
    tid = created.json()["id"]
    [made] = heard.wait_for(lambda _, tid=tid: heard.of("ticket.created", tid))
    assert made["vendor"] == vendor and made["data"]["ticket"]["subject"] == "Callback"
    updated = svc.post("/crm/ticket/update", {"crm_type": vendor, "ticket_id": tid, "status": "pending"})
    assert updated.status_code == 200, updated.text
    [update] = heard.wait_for(lambda _, tid=tid: [u for u in heard.of("ticket.updated", tid)
                                                       if u["data"]["ticket"]["status"] == "pending"])
    assert update["changes"]["status"]["new"] == "pending", update  # from the last known state
    svc.control(vendor, "webhooks", {"url": None})


def test_an_intercom_handoff_is_assigned_then_closed_by_its_webhooks(svc: Service, heard: Subscriber):
    from tests.test_api_intercom import handoff

    target(svc, "intercom")
    r = svc.post("/handoff/create", handoff("ic-wh-1"))
    assert r.status_code == 201, r.text
    chat_id = r.json()["handoff_id"]
    [assigned] = heard.wait_for(lambda _: heard.of("handoff.assigned", chat_id))
    assert assigned["vendor"] == "intercom" and assigned["data"]["handoff"]["agent_id"] == r.json()["agent_id"]
    svc.fault("intercom", "error", status=500, count=10)  # the state now comes from the event
    state = svc.post("/handoff/status", {"chat_type": "intercom", "handoff_id": chat_id})
    svc.client.delete(f"{svc.sandbox_root}/_sandbox/faults")
    assert state.status_code == 200 and state.json()["status"] == "assigned", state.text
    close = {"message_type": "close", "type": "admin", "admin_id": r.json()["agent_id"]}
    closed = svc.client.post(f"{svc.emulators['intercom']}/conversations/{chat_id}/parts", json=close,
                             headers={"Authorization": "Bearer sandbox"})
    assert closed.status_code == 200, closed.text
    heard.wait_for(lambda _: heard.of("handoff.closed", chat_id))
    svc.control("intercom", "webhooks", {"url": None})


def test_wrong_secrets_and_signatures_are_401_and_never_processed(svc: Service, heard: Subscriber):
    body = orjson.dumps(webhook_payloads.intercom("ticket.created", {"id": "201"}))
    forged = "sha1=" + hmac.new(b"not-the-secret", body, hashlib.sha1).hexdigest()
    wrong = webhook(svc, "intercom", body, {"X-Hub-Signature": forged})
    assert wrong.status_code == 401 and error_of(wrong)["code"] == "webhook_unverified"
    assert webhook(svc, "intercom", body, {}).status_code == 401
    for vendor in ("servicenow", "dynamics"):
        r = webhook(svc, vendor, b'{"operation": "insert", "sys_id": "x"}', {"X-Webhook-Secret": "guess"})
        assert r.status_code == 401 and error_of(r)["code"] == "webhook_unverified"
        assert SANDBOX_WEBHOOK_SECRET not in r.text
    assert heard.events == []


def test_replays_are_dropped(svc: Service, heard: Subscriber):
    ticket = CRMS.connector_class("intercom").sandbox_seed["ticket_id"]
    body = orjson.dumps(webhook_payloads.intercom("ticket.state.updated", {"id": ticket}))
    signed = {"X-Hub-Signature": "sha1=" + hmac.new(SANDBOX_WEBHOOK_SECRET.encode(), body, hashlib.sha1).hexdigest()}
    assert webhook(svc, "intercom", body, signed).json() == {"published": 1, "replay": False}
    assert webhook(svc, "intercom", body, signed).json() == {"published": 0, "replay": True}
    secret = {"X-Webhook-Secret": SANDBOX_WEBHOOK_SECRET}
    incident = {"sys_id": CRMS.connector_class("servicenow").sandbox_seed["ticket_id"]}
    for vendor, sent in (("servicenow", webhook_payloads.servicenow("update", incident, 41)),
                         ("dynamics", webhook_payloads.dynamics(
                             "Update", {"incidentid": CRMS.connector_class("dynamics").sandbox_seed["ticket_id"]}))):
        raw = orjson.dumps(sent)
        first = webhook(svc, vendor, raw, secret)
        assert first.status_code == 200 and first.json()["published"] == 1, first.text
        again = webhook(svc, vendor, raw, secret)  # no signature to replay-check: the same event id is dropped
        assert again.status_code == 200 and again.json()["published"] == 0, again.text
    heard.wait_for(lambda _: len(heard.of("ticket.updated")) >= 3)
