"""Each vendor's webhook body read as notices: which unified event, for which object, with what the vendor said.

Tables map the vendor's event names onto unified types. Tickets and customers are then fetched through the
connector (inbound.py), so every event carries the same Ticket or Customer the REST API answers; LiveChat's
events carry the chat state themselves and are published as they arrive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.zendesk import PRIORITY_FROM_ZENDESK, STATUS_FROM_ZENDESK
from events import EventType, FieldChange
from livechat_answers import dict_or_empty, whole_number
from livechat_connector import LiveChatConnector
from api_models.values import iso_utc
from models import HandoffResponse, HandoffStatus

from .notice import HandoffBuilder, Notice, Unreadable, _object
from .records import dynamics, intercom, servicenow

__all__ = ["PARSERS", "HANDOFF_TYPES", "HandoffBuilder", "Notice", "Unreadable"]

# --- Zendesk: event webhooks (https://developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/) --

ZENDESK_TICKET_TYPES: dict[str, EventType] = {
    "zen:event-type:ticket.created": EventType.ticket_created,
}
ZENDESK_TICKET_PREFIX = "zen:event-type:ticket."  # every other ticket event: an update
ZENDESK_USER_PREFIX = "zen:event-type:user."  # https://developer.zendesk.com/api-reference/webhooks/event-types/user-events/
# event type -> (changed field, how the vendor's value reads in the unified model)
ZENDESK_CHANGES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "zen:event-type:ticket.status_changed": ("status", lambda v: STATUS_FROM_ZENDESK.get(str(v).lower(), v)),
    "zen:event-type:ticket.priority_changed": (
        "priority", lambda v: PRIORITY_FROM_ZENDESK.get(str(v).lower() if v else None, v),
    ),
    "zen:event-type:ticket.agent_assignment_changed": ("assignee", lambda v: None if v in (None, "") else str(v)),
}
ZENDESK_COMMENT = "zen:event-type:ticket.comment_added"


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


def zendesk(body: Any) -> list[Notice]:
    """One event per request: `type`, `id`, `time`, `subject` (zen:ticket:<id>), `detail`, `event` {previous, current}."""
    data = _object(body, "zendesk webhook body")
    kind, subject = str(data.get("type") or ""), str(data.get("subject") or "")
    object_id = subject.rsplit(":", 1)[-1] or str(_object(data.get("detail") or {}, "detail").get("id") or "")
    if not object_id:
        raise Unreadable("zendesk webhook without subject or detail.id")
    stamp = {"vendor_event_id": str(data["id"]) if data.get("id") else None, "occurred_at": iso_utc(data.get("time"))}
    event = data.get("event") if isinstance(data.get("event"), dict) else {}
    if kind.startswith(ZENDESK_USER_PREFIX):
        return [Notice(EventType.customer_updated, object_id, **stamp)]
    if not kind.startswith(ZENDESK_TICKET_PREFIX):
        return []  # an event type this service does not publish (articles, organizations, ...)
    if kind in ZENDESK_TICKET_TYPES:
        return [Notice(ZENDESK_TICKET_TYPES[kind], object_id, **stamp)]
    changes: dict[str, FieldChange] = {}
    comment = None
    if kind in ZENDESK_CHANGES:
        field, read = ZENDESK_CHANGES[kind]
        old, new = read(event.get("previous")), read(event.get("current"))
        changes[field] = FieldChange(old=_enum_value(old), new=_enum_value(new))
    elif kind == ZENDESK_COMMENT:
        said = dict_or_empty(event.get("comment"))
        comment = {"body": str(said.get("body") or ""), "public": bool(said.get("is_public", True))}
    return [Notice(EventType.ticket_updated, object_id, changes=changes, comment=comment, **stamp)]


# --- HubSpot: webhooks API v3 (https://developers.hubspot.com/docs/api/webhooks) ---------------------------

HUBSPOT_TYPES: dict[str, EventType] = {
    "ticket.creation": EventType.ticket_created,
    "ticket.propertyChange": EventType.ticket_updated,
    "contact.creation": EventType.customer_updated,
    "contact.propertyChange": EventType.customer_updated,
}


def hubspot(body: Any) -> list[Notice]:
    """A JSON array of events, possibly several per object: one notice per object and type (its first eventId).

    Each event names one property; the object is fetched once and what changed comes from the snapshot diff.
    """
    if not isinstance(body, list):
        raise Unreadable("hubspot webhook body is not a JSON array")
    notices: dict[tuple[EventType, str], Notice] = {}
    for item in body:
        event = _object(item, "hubspot webhook event")
        kind = HUBSPOT_TYPES.get(str(event.get("subscriptionType") or ""))
        if kind is None or event.get("objectId") is None:
            continue
        key = (kind, str(event["objectId"]))
        if key not in notices:
            notices[key] = Notice(kind, key[1], vendor_event_id=f"{event.get('eventId')}",
                                  occurred_at=iso_utc(event.get("occurredAt")))
    created = {oid for kind, oid in notices if kind is EventType.ticket_created}
    # A creation and its property changes in one batch are one ticket.created.
    return [n for (kind, oid), n in notices.items() if not (kind is EventType.ticket_updated and oid in created)]


# --- Freshdesk: an automation rule's "Trigger webhook" action, with the JSON body docs/events.md gives ----------

FRESHDESK_TYPES: dict[str, EventType] = {
    "ticket_created": EventType.ticket_created,
    "ticket_updated": EventType.ticket_updated,
    "contact_updated": EventType.customer_updated,
}


def freshdesk(body: Any) -> list[Notice]:
    """`{"event": "ticket_created|ticket_updated|contact_updated", "id": "{{ticket.id}}"}` (the rule's own body).

    https://support.freshdesk.com/support/solutions/articles/132589-using-webhooks-in-automation-rules
    """
    data = _object(body, "freshdesk webhook body")
    kind = FRESHDESK_TYPES.get(str(data.get("event") or ""))
    if kind is None or not str(data.get("id") or "").strip():
        raise Unreadable(f"freshdesk webhook needs event (one of {', '.join(FRESHDESK_TYPES)}) and id")
    return [Notice(kind, str(data["id"]).strip())]


# --- LiveChat: webhooks v3.6 (https://platform.text.com/docs/management/webhooks) -----------------------------


def _transferred(payload: dict[str, Any]) -> HandoffBuilder:
    """chat_transferred: to an agent (assigned), or into a queue (queued with position and wait)."""

    def build(chat: LiveChatConnector, known: HandoffResponse | None) -> HandoffResponse:
        chat_id = str(payload.get("chat_id"))
        url = chat.chat_url(chat_id, str(payload.get("thread_id") or ""))
        queue = dict_or_empty(payload.get("queue"))
        agents = dict_or_empty(payload.get("transferred_to")).get("agent_ids") or []
        if agents and not queue:
            agent_id = str(agents[0])
            name = known.agent_name if known and known.agent_id == agent_id else None
            return HandoffResponse(handoff_id=chat_id, chat_url=url, agent_id=agent_id, agent_name=name,
                                   estimated_wait_seconds=0, status=HandoffStatus.assigned)
        return HandoffResponse(handoff_id=chat_id, chat_url=url, status=HandoffStatus.queued,
                               estimated_wait_seconds=whole_number(queue.get("wait_time")),
                               queue_position=whole_number(queue.get("position")))

    return build


def _incoming(payload: dict[str, Any]) -> HandoffBuilder:
    """incoming_chat carries the whole chat: read it as get_chat's answer is read."""
    chat_data = _object(payload.get("chat"), "livechat incoming_chat payload.chat")
    thread = {**dict_or_empty(chat_data.get("thread")), "active": True}  # a new thread is an active one
    return lambda chat, known: chat.handoff_state(str(chat_data.get("id")), {**chat_data, "thread": thread})


def _deactivated(payload: dict[str, Any]) -> HandoffBuilder:
    def build(chat: LiveChatConnector, known: HandoffResponse | None) -> HandoffResponse:
        chat_id = str(payload.get("chat_id"))
        return HandoffResponse(handoff_id=chat_id, chat_url=chat.chat_url(chat_id, str(payload.get("thread_id") or "")),
                               agent_id=known.agent_id if known else None,
                               agent_name=known.agent_name if known else None, status=HandoffStatus.closed)

    return build


LIVECHAT_ACTIONS: dict[str, Callable[[dict[str, Any]], HandoffBuilder]] = {
    "incoming_chat": _incoming,
    "chat_transferred": _transferred,
    "chat_deactivated": _deactivated,
}
HANDOFF_TYPES: dict[HandoffStatus, EventType] = {
    HandoffStatus.assigned: EventType.handoff_assigned,
    HandoffStatus.queued: EventType.handoff_queued,
    HandoffStatus.closed: EventType.handoff_closed,
}


def livechat(body: Any) -> list[Notice]:
    """`{webhook_id, secret_key, action, organization_id, payload, additional_data}`; other actions are ignored."""
    data = _object(body, "livechat webhook body")
    make = LIVECHAT_ACTIONS.get(str(data.get("action") or ""))
    if make is None:
        return []
    payload = _object(data.get("payload"), "livechat webhook payload")
    chat_id = payload.get("chat_id") or dict_or_empty(payload.get("chat")).get("id")
    if not chat_id:
        raise Unreadable("livechat webhook payload names no chat")
    # The type follows from the state built (inbound.py); handoff_assigned is a placeholder until then.
    return [Notice(EventType.handoff_assigned, str(chat_id), handoff=make(payload))]


# Vendor slug -> its body reader. Salesforce has none: the poller (poller.py) reads its Cases instead.
PARSERS: dict[str, Callable[[Any], list[Notice]]] = {
    "zendesk": zendesk,
    "hubspot": hubspot,
    "freshdesk": freshdesk,
    "livechat": livechat,
    "intercom": intercom,
    "servicenow": servicenow,
    "dynamics": dynamics,
}
