"""Intercom, ServiceNow and Dynamics 365 webhooks: verification and normalisation, without a service."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.datastructures import Headers

from connectors.intercom import IntercomConnector
from events import EventType
from models import HandoffResponse, HandoffStatus
from sandbox import webhook_payloads
from sandbox import webhooks as sandbox_signers
from webhooks import vendors
from webhooks.verify import VERIFIERS, Inbound, WebhookUnverified

SECRET = "s3cret-webhook-key"
URL = "https://connectors.example.com/webhooks/{vendor}/default"
VENDORS = ("intercom", "servicenow", "dynamics")


def inbound(vendor: str, body: bytes, headers: dict[str, str], query: dict[str, str] | None = None) -> Inbound:
    return Inbound("POST", URL.format(vendor=vendor), Headers(headers), query or {}, body, time.time())


def signed(vendor: str, body: Any, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    """Signed as the sandbox's emulators sign (written from the vendors' docs, independently of verify.py)."""
    return sandbox_signers.SIGNERS[vendor](URL.format(vendor=vendor), secret, body)


SAMPLES: dict[str, Any] = {
    "intercom": webhook_payloads.intercom("ticket.created", {"type": "ticket", "id": "201"}),
    "servicenow": webhook_payloads.servicenow("update", {"sys_id": "9d385017c611228701d22104cc95c371",
                                                         "sys_updated_on": "2026-12-01 14:00:00"}, 3),
    "dynamics": webhook_payloads.dynamics("Create", {"incidentid": "a1b2c3d4-0000-4000-8000-000000054321"}),
}


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_vendors_webhook_verifies_with_its_secret_and_not_with_another(vendor):
    body, headers = signed(vendor, SAMPLES[vendor])
    verified = VERIFIERS[vendor](inbound(vendor, body, headers), SECRET, 300)
    assert verified.strength == ("signature" if vendor == "intercom" else "shared-secret")
    wrong_body, wrong = signed(vendor, SAMPLES[vendor], secret="not-the-secret")
    with pytest.raises(WebhookUnverified):
        VERIFIERS[vendor](inbound(vendor, wrong_body, wrong), SECRET, 300)
    with pytest.raises(WebhookUnverified):
        VERIFIERS[vendor](inbound(vendor, body, {}), SECRET, 300)  # nothing at all


def test_intercom_signs_the_body_so_a_changed_body_is_refused_and_a_resend_is_a_replay():
    body, headers = signed("intercom", SAMPLES["intercom"])
    first = VERIFIERS["intercom"](inbound("intercom", body, headers), SECRET, 300)
    again = VERIFIERS["intercom"](inbound("intercom", body, headers), SECRET, 300)
    assert first.replay_key == again.replay_key is not None  # the same body twice: the route drops the second
    with pytest.raises(WebhookUnverified):
        VERIFIERS["intercom"](inbound("intercom", body.replace(b"201", b"202"), headers), SECRET, 300)


def test_dynamics_takes_each_dataverse_authentication_option_and_servicenow_the_url():
    for query in ({"code": SECRET}, {"secret": SECRET}):  # WebhookKey, HttpQueryString
        assert VERIFIERS["dynamics"](inbound("dynamics", b"{}", {}, query), SECRET, 300).replay_key is None
    assert VERIFIERS["servicenow"](inbound("servicenow", b"{}", {}, {"secret": SECRET}), SECRET, 300).replay_key is None
    with pytest.raises(WebhookUnverified):
        VERIFIERS["dynamics"](inbound("dynamics", b"{}", {}, {"code": "guess"}), SECRET, 300)


def test_intercom_topics_map_onto_unified_types():
    [ticket] = vendors.PARSERS["intercom"](SAMPLES["intercom"])
    assert (ticket.type, ticket.object_id) == (EventType.ticket_created, "201")
    assert ticket.vendor_event_id.startswith("notif_") and ticket.occurred_at.endswith("Z")
    [moved] = vendors.PARSERS["intercom"](webhook_payloads.intercom("ticket.state.updated", {"id": "201"}))
    assert moved.type is EventType.ticket_updated and moved.changes is None  # what moved: the snapshot diff
    [contact] = vendors.PARSERS["intercom"](webhook_payloads.intercom("contact.user.updated", {"id": "6657a"}))
    assert (contact.type, contact.object_id) == (EventType.customer_updated, "6657a")
    assert vendors.PARSERS["intercom"](webhook_payloads.intercom("conversation.user.replied", {"id": "1"})) == []
    assert vendors.PARSERS["intercom"]({"type": "notification_event", "topic": "ping", "data": {"item": {}}}) == []
    with pytest.raises(vendors.Unreadable):
        vendors.PARSERS["intercom"]({"topic": "ticket.created", "data": {"item": {"type": "ticket"}}})


def test_intercom_conversation_topics_become_handoff_states(make_context):
    chat = IntercomConnector.from_request({"access_token": "t"}, make_context())
    conversation = {"type": "conversation", "id": "1911149811", "state": "open", "admin_assignee_id": 991267001}
    [assigned] = vendors.PARSERS["intercom"](webhook_payloads.intercom("conversation.admin.assigned", conversation))
    known = HandoffResponse(handoff_id="1911149811", agent_id="991267001", agent_name="Sara Ahmed", status=HandoffStatus.assigned)
    state = assigned.handoff(chat, known)
    assert (state.status, state.agent_id, state.agent_name) == (HandoffStatus.assigned, "991267001", "Sara Ahmed")
    closed = {**conversation, "state": "closed", "open": False}
    [over] = vendors.PARSERS["intercom"](webhook_payloads.intercom("conversation.admin.closed", closed))
    assert over.handoff(chat, state).status is HandoffStatus.closed


def test_servicenow_reads_the_business_rules_body():
    [notice] = vendors.PARSERS["servicenow"](SAMPLES["servicenow"])
    assert (notice.type, notice.object_id) == (EventType.ticket_updated, "9d385017c611228701d22104cc95c371")
    assert notice.vendor_event_id == "9d385017c611228701d22104cc95c371:3"  # a replay of it: the same event id
    assert notice.occurred_at == "2026-12-01T14:00:00Z"
    [made] = vendors.PARSERS["servicenow"]({"operation": "insert", "sys_id": "abc", "table": "incident"})
    assert made.type is EventType.ticket_created and made.vendor_event_id is None
    for bad in ({"operation": "delete", "sys_id": "abc"}, {"operation": "update"},
                {"operation": "update", "sys_id": "abc", "table": "sys_user"}):
        with pytest.raises(vendors.Unreadable):
            vendors.PARSERS["servicenow"](bad)


def test_dynamics_reads_the_remote_execution_context():
    body = {**SAMPLES["dynamics"], "PrimaryEntityId": "A1B2C3D4-0000-4000-8000-000000054321",
            "OperationCreatedOn": "/Date(1764597600000)/"}
    [notice] = vendors.PARSERS["dynamics"](body)
    assert (notice.type, notice.object_id) == (EventType.ticket_created, "a1b2c3d4-0000-4000-8000-000000054321")
    assert notice.vendor_event_id == body["OperationId"] and notice.occurred_at == "2025-12-01T14:00:00Z"
    [update] = vendors.PARSERS["dynamics"]({**body, "MessageName": "Update"})
    assert update.type is EventType.ticket_updated
    assert vendors.PARSERS["dynamics"]({**body, "MessageName": "Delete"}) == []
    assert vendors.PARSERS["dynamics"]({**body, "PrimaryEntityName": "contact"}) == []
    with pytest.raises(vendors.Unreadable):
        vendors.PARSERS["dynamics"]({**body, "PrimaryEntityId": ""})
