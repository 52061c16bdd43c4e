"""Each vendor's webhook verification and normalisation, and the poller's query and lock, without a service."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import orjson
import pytest
from starlette.datastructures import Headers

from events import EventType
from livechat_connector import LiveChatConnector
from models import HandoffStatus, Ticket
from sandbox import webhooks as sandbox_signers
from webhooks import vendors
from webhooks.inbound import Inbox, diff, ticket_fields
from webhooks.poller import LOCK_KEY, CasePoller, changed_cases_query
from webhooks.verify import VERIFIERS, Inbound, WebhookUnverified, hubspot_uri

SECRET = "s3cret-webhook-key"
URL = "https://connectors.example.com/webhooks/{vendor}/default?x=1"


def inbound(vendor: str, body: bytes, headers: dict[str, str], at: float | None = None,
            query: dict[str, str] | None = None) -> Inbound:
    return Inbound("POST", URL.format(vendor=vendor), Headers(headers), query or {}, body, at or time.time())


def signed(vendor: str, body: Any, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    """Signed the way the sandbox's emulators sign (written from the vendors' docs, independently of verify.py)."""
    return sandbox_signers.SIGNERS[vendor](URL.format(vendor=vendor), secret, body)


BODY = {"type": "zen:event-type:ticket.created", "id": "e1", "subject": "zen:ticket:1"}


@pytest.mark.parametrize("vendor", ["zendesk", "hubspot", "livechat", "freshdesk"])
def test_each_vendors_own_signature_verifies_and_a_wrong_secret_does_not(vendor):
    raw, headers = signed(vendor, BODY if vendor != "hubspot" else [BODY])
    verified = VERIFIERS[vendor](inbound(vendor, raw, headers), SECRET, 300)
    assert verified.strength in ("signature", "secret", "shared-secret")
    with pytest.raises(WebhookUnverified):
        VERIFIERS[vendor](inbound(vendor, raw, headers), "another-secret", 300)


@pytest.mark.parametrize("vendor", ["zendesk", "hubspot"])
def test_a_signed_timestamp_too_old_or_in_the_future_is_refused(vendor):
    raw, headers = signed(vendor, BODY)
    now = time.time()
    for skew in (-302, 302):
        with pytest.raises(WebhookUnverified, match="replay"):
            VERIFIERS[vendor](inbound(vendor, raw, headers, at=now - skew), SECRET, 300)
    assert VERIFIERS[vendor](inbound(vendor, raw, headers, at=now + 200), SECRET, 300).replay_key


@pytest.mark.parametrize("vendor", ["zendesk", "hubspot"])
def test_a_body_changed_after_signing_is_refused(vendor):
    raw, headers = signed(vendor, BODY)
    with pytest.raises(WebhookUnverified, match="does not match"):
        VERIFIERS[vendor](inbound(vendor, raw + b" ", headers), SECRET, 300)


def test_missing_headers_are_refused_not_errors():
    for vendor in ("zendesk", "hubspot", "intercom", "freshdesk"):
        with pytest.raises(WebhookUnverified):
            VERIFIERS[vendor](inbound(vendor, b"{}", {}), SECRET, 300)
    with pytest.raises(WebhookUnverified):
        VERIFIERS["livechat"](inbound("livechat", b"not json", {}), SECRET, 300)
    with pytest.raises(WebhookUnverified):  # the secret must be a string, not {"$ne": null}
        VERIFIERS["livechat"](inbound("livechat", b'{"secret_key": {"a": 1}}', {}), SECRET, 300)


def test_hubspot_signs_the_uri_with_some_characters_decoded():
    assert hubspot_uri("https://h.example.com/webhooks/hubspot/a%3Ab?q=%2Fx%40y") == "https://h.example.com/webhooks/hubspot/a:b?q=/x@y"


def test_intercom_x_hub_signature_is_sha1_hex_of_the_body():
    raw = b'{"type":"notification_event"}'
    header = "sha1=" + hmac.new(SECRET.encode(), raw, hashlib.sha1).hexdigest()
    assert VERIFIERS["intercom"](inbound("intercom", raw, {"X-Hub-Signature": header}), SECRET, 300).replay_key


def test_the_shared_secret_may_ride_in_the_url_and_has_no_replay_key():
    verified = VERIFIERS["freshdesk"](inbound("freshdesk", b"{}", {}, query={"secret": SECRET}), SECRET, 300)
    assert verified.replay_key is None and verified.strength == "shared-secret"


async def test_replay_keys_are_claimed_once_across_replicas_and_released_after_a_failure(state):
    one, two = Inbox(state), Inbox(state)  # two replicas over the same shared state (memory, then Redis)
    assert await one.first_time("k", 60) is True
    assert await two.first_time("k", 60) is False
    await one.forget("k")
    assert await two.first_time("k", 60) is True


# --- normalisation ------------------------------------------------------------------------------------------


def test_zendesk_events_map_onto_unified_types_and_changes():
    [status] = vendors.zendesk({"type": "zen:event-type:ticket.status_changed", "id": "01H", "time": "2026-12-01T14:00:00Z",
                                "subject": "zen:ticket:35436", "event": {"previous": "OPEN", "current": "SOLVED"}})
    assert status.type is EventType.ticket_updated and status.object_id == "35436" and status.vendor_event_id == "01H"
    assert status.changes["status"].model_dump() == {"old": "open", "new": "solved"}
    assert status.occurred_at == "2026-12-01T14:00:00Z"
    [priority] = vendors.zendesk({"type": "zen:event-type:ticket.priority_changed", "subject": "zen:ticket:1",
                                  "event": {"previous": "NORMAL", "current": "URGENT"}})
    assert priority.changes["priority"].model_dump() == {"old": "medium", "new": "urgent"}
    [assignee] = vendors.zendesk({"type": "zen:event-type:ticket.agent_assignment_changed", "subject": "zen:ticket:1",
                                  "event": {"previous": None, "current": 2001}})
    assert assignee.changes["assignee"].model_dump() == {"old": None, "new": "2001"}
    [comment] = vendors.zendesk({"type": "zen:event-type:ticket.comment_added", "subject": "zen:ticket:1",
                                 "event": {"comment": {"body": "Called back", "is_public": False}}})
    assert comment.comment == {"body": "Called back", "public": False} and comment.changes == {}
    [created] = vendors.zendesk({"type": "zen:event-type:ticket.created", "subject": "zen:ticket:9"})
    assert created.type is EventType.ticket_created
    [user] = vendors.zendesk({"type": "zen:event-type:user.name_changed", "subject": "zen:user:1001"})
    assert user.type is EventType.customer_updated and user.object_id == "1001"
    assert vendors.zendesk({"type": "zen:event-type:article.published", "subject": "zen:article:1"}) == []
    with pytest.raises(vendors.Unreadable):
        vendors.zendesk(["not", "an", "object"])


def test_hubspot_batches_become_one_notice_per_object_and_a_creation_absorbs_its_changes():
    batch = [
        {"eventId": 11, "subscriptionType": "ticket.propertyChange", "objectId": 7, "propertyName": "hs_pipeline_stage"},
        {"eventId": 12, "subscriptionType": "ticket.propertyChange", "objectId": 7, "propertyName": "hs_ticket_priority"},
        {"eventId": 13, "subscriptionType": "ticket.creation", "objectId": 8},
        {"eventId": 14, "subscriptionType": "ticket.propertyChange", "objectId": 8, "propertyName": "subject"},
        {"eventId": 15, "subscriptionType": "contact.propertyChange", "objectId": 501, "occurredAt": 1764600000000},
        {"eventId": 16, "subscriptionType": "deal.creation", "objectId": 1},
    ]
    notices = vendors.hubspot(batch)
    assert [(n.type, n.object_id, n.vendor_event_id) for n in notices] == [
        (EventType.ticket_updated, "7", "11"), (EventType.ticket_created, "8", "13"), (EventType.customer_updated, "501", "15"),
    ]
    assert notices[2].occurred_at == "2025-12-01T14:40:00Z"
    with pytest.raises(vendors.Unreadable):
        vendors.hubspot({"not": "a list"})


def test_freshdesk_reads_the_rules_body_and_refuses_another():
    [notice] = vendors.freshdesk({"event": "ticket_updated", "id": " 54321 "})
    assert notice.type is EventType.ticket_updated and notice.object_id == "54321"
    with pytest.raises(vendors.Unreadable):
        vendors.freshdesk({"event": "ticket_deleted", "id": "1"})


def livechat_connector(make_context) -> LiveChatConnector:
    connector = LiveChatConnector.from_request({"api_key": "k", "account_id": "a", "license_id": "1"}, make_context())
    assert isinstance(connector, LiveChatConnector)
    return connector


def test_livechat_events_become_handoff_states(make_context):
    chat = livechat_connector(make_context)
    [moved] = vendors.livechat({"action": "chat_transferred", "payload": {
        "chat_id": "PJ0MRSHTDG", "thread_id": "T1", "transferred_to": {"agent_ids": ["sara@example.com"]}}})
    state = moved.handoff(chat, None)
    assert state.status is HandoffStatus.assigned and state.agent_id == "sara@example.com" and state.chat_url
    [queued] = vendors.livechat({"action": "chat_transferred", "payload": {
        "chat_id": "PJ0MRSHTDG", "transferred_to": {"group_ids": [1]}, "queue": {"position": 3, "wait_time": 90}}})
    waiting = queued.handoff(chat, state)
    assert (waiting.status, waiting.queue_position, waiting.estimated_wait_seconds) == (HandoffStatus.queued, 3, 90)
    [closed] = vendors.livechat({"action": "chat_deactivated", "payload": {"chat_id": "PJ0MRSHTDG", "thread_id": "T1"}})
    over = closed.handoff(chat, state)
    assert over.status is HandoffStatus.closed and over.agent_id == "sara@example.com"  # who had it, from before
    [incoming] = vendors.livechat({"action": "incoming_chat", "payload": {"chat": {
        "id": "PJ1", "users": [{"id": "sara@example.com", "type": "agent", "name": "Sara Ahmed"}],
        "thread": {"id": "T9", "user_ids": ["sara@example.com"], "events": []}}}})
    started = incoming.handoff(chat, None)
    assert started.status is HandoffStatus.assigned and started.agent_name == "Sara Ahmed"
    assert vendors.livechat({"action": "incoming_event", "payload": {}}) == []
    with pytest.raises(vendors.Unreadable):
        vendors.livechat({"action": "chat_deactivated", "payload": {}})


@pytest.mark.parametrize(
    ("crm", "metadata"),
    [("zendesk", {"assignee_id": 17}), ("salesforce", {"owner_id": "17"}), ("freshdesk", {"responder_id": 17}),
     ("servicenow", {"assigned_to": "17", "assignment_group": "g1"}), ("dynamics", {"owner_id": "17"}),
     ("intercom", {"admin_assignee_id": 17, "team_assignee_id": 5001})],
)
def test_each_vendors_assignee_is_the_events_assignee(crm: str, metadata: dict[str, Any]):
    ticket = Ticket(id="1", subject="s", description="d", status="open", priority="high", customer_id="c",
                    created_at="2026-12-01T00:00:00Z", updated_at="2026-12-01T00:00:00Z", metadata=metadata)
    assert ticket_fields(ticket)["assignee"] == "17", crm


def test_changes_are_what_moved_since_the_snapshot():
    after = {"status": "pending", "priority": "high", "assignee": "17"}
    assert diff(None, after) == {}
    moved = diff({"status": "open", "priority": "high", "assignee": None}, after)
    assert {k: v.model_dump() for k, v in moved.items()} == {"status": {"old": "open", "new": "pending"},
                                                             "assignee": {"old": None, "new": "17"}}


# --- the poller -------------------------------------------------------------------------------------------------


def test_the_poll_query_pages_by_last_modified_date_and_id():
    first = changed_cases_query("2026-12-01T14:00:05.000+0000", None, inclusive=True)
    assert "WHERE LastModifiedDate >= 2026-12-01T14:00:05.000Z ORDER BY LastModifiedDate, Id LIMIT 200" in first
    later = changed_cases_query("2026-12-01T14:00:05.000+0000", "500000000000001AAA")
    assert ("(LastModifiedDate > 2026-12-01T14:00:05.000Z OR (LastModifiedDate = 2026-12-01T14:00:05.000Z "
            "AND Id > '500000000000001AAA'))") in later


async def test_only_one_replica_polls_and_another_takes_over_when_it_stops(state):
    one = CasePoller(None, state, Inbox(state), 5.0, ["default"])
    two = CasePoller(None, state, Inbox(state), 5.0, ["default"])
    assert await one.leader() is True
    assert await two.leader() is False
    assert await one.leader() is True  # renewed by its holder
    await one.stop()  # releases the lock
    assert await state.get(LOCK_KEY) is None
    assert await two.leader() is True


def test_sandbox_signatures_are_the_documented_formulas():
    raw, headers = signed("zendesk", {"a": 1})
    stamp = headers["X-Zendesk-Webhook-Signature-Timestamp"]
    expected = base64.b64encode(hmac.new(SECRET.encode(), stamp.encode() + raw, hashlib.sha256).digest()).decode()
    assert headers["X-Zendesk-Webhook-Signature"] == expected
    raw, _ = signed("livechat", {"action": "chat_deactivated"})
    assert orjson.loads(raw)["secret_key"] == SECRET
