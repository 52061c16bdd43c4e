"""Intercom, ServiceNow and Dynamics 365 webhook bodies read as notices (vendors.py holds the others' readers).

Tickets and customers are fetched through the connector, as for every vendor; an Intercom conversation event
carries the conversation, so its handoff state is read from the webhook itself.
"""

from __future__ import annotations

import re
from typing import Any

from events import EventType
from api_models.values import iso_utc
from models import HandoffResponse

from .notice import HandoffBuilder, Notice, Unreadable, _object

# --- Intercom: a notification_event (https://developers.intercom.com/docs/references/2.11/webhooks/webhook-models) --

INTERCOM_TYPES: dict[str, EventType] = {
    "ticket.created": EventType.ticket_created,
    "ticket.state.updated": EventType.ticket_updated,
    "contact.user.updated": EventType.customer_updated,
}
# Conversation topics: the handoff's state follows from the conversation the notification carries.
INTERCOM_HANDOFF_TOPICS = frozenset({"conversation.admin.assigned", "conversation.admin.closed"})


def _intercom_handoff(conversation: dict[str, Any]) -> HandoffBuilder:
    def build(chat: Any, known: HandoffResponse | None) -> HandoffResponse:
        names = {known.agent_id: known.agent_name} if known and known.agent_id else {}
        return chat.handoff_state(conversation, names)  # IntercomChat.handoff_state, as /handoff/status reads it

    return build


def intercom(body: Any) -> list[Notice]:
    """`{"type": "notification_event", "id", "topic", "created_at", "data": {"item": {...}}}`; other topics ignored."""
    data = _object(body, "intercom webhook body")
    topic = str(data.get("topic") or "")
    if topic not in INTERCOM_TYPES and topic not in INTERCOM_HANDOFF_TOPICS:
        return []  # ping and the topics this service does not publish
    item = _object(_object(data.get("data"), "intercom webhook data").get("item"), "intercom webhook data.item")
    if not str(item.get("id") or "").strip():
        raise Unreadable("intercom webhook data.item has no id")
    created = data.get("created_at")
    stamp = {"vendor_event_id": str(data["id"]) if data.get("id") else None,
             "occurred_at": iso_utc(created * 1000) if isinstance(created, int) else None}  # Intercom: epoch seconds
    object_id = str(item["id"])
    if topic in INTERCOM_HANDOFF_TOPICS:
        # The type follows from the state built (inbound.py); handoff_assigned is a placeholder until then.
        return [Notice(EventType.handoff_assigned, object_id, handoff=_intercom_handoff(item), **stamp)]
    return [Notice(INTERCOM_TYPES[topic], object_id, **stamp)]


# --- ServiceNow: a Business Rule's outbound REST message, with the body docs/events.md gives ------------------
# https://www.servicenow.com/docs/r/api-reference/web-services/c_OutboundRESTWebService.html

SERVICENOW_TYPES: dict[str, EventType] = {
    "insert": EventType.ticket_created,  # current.operation() in the rule's script
    "update": EventType.ticket_updated,
}


def _servicenow_time(value: Any) -> str | None:
    """`sys_updated_on` as the Table API writes it: `YYYY-MM-DD HH:MM:SS`, UTC."""
    text = str(value or "").strip()
    return iso_utc(text.replace(" ", "T") + "Z") if re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text) else None


def servicenow(body: Any) -> list[Notice]:
    """`{"table": "incident", "operation": "insert"|"update", "sys_id", "sys_mod_count"?, "sys_updated_on"?}`.

    `sys_mod_count` (the record's update count) makes the event id, so a replayed body is dropped as a duplicate.
    """
    data = _object(body, "servicenow webhook body")
    kind = SERVICENOW_TYPES.get(str(data.get("operation") or ""))
    sys_id = str(data.get("sys_id") or "").strip()
    if kind is None or not sys_id or str(data.get("table") or "incident") != "incident":
        raise Unreadable(f"servicenow webhook needs table incident, operation ({', '.join(SERVICENOW_TYPES)}) and sys_id")
    count = data.get("sys_mod_count")
    event_id = f"{sys_id}:{count}" if str(count).isdigit() else None
    return [Notice(kind, sys_id, vendor_event_id=event_id, occurred_at=_servicenow_time(data.get("sys_updated_on")))]


# --- Dynamics 365: a Dataverse webhook's RemoteExecutionContext ----------------------------------------------
# https://learn.microsoft.com/en-us/power-apps/developer/data-platform/use-webhooks

DYNAMICS_TYPES: dict[str, EventType] = {
    "Create": EventType.ticket_created,
    "Update": EventType.ticket_updated,
}
WCF_DATE = re.compile(r"/Date\((-?\d+)\)/")  # OperationCreatedOn, as the execution context serialises dates


def dynamics(body: Any) -> list[Notice]:
    """`{"MessageName": "Create"|"Update", "PrimaryEntityName": "incident", "PrimaryEntityId", "OperationId", ...}`;
    other messages and tables are ignored (a step registered wider than needed)."""
    data = _object(body, "dynamics webhook body")
    kind = DYNAMICS_TYPES.get(str(data.get("MessageName") or ""))
    if kind is None or data.get("PrimaryEntityName") != "incident":
        return []
    entity_id = str(data.get("PrimaryEntityId") or "").strip()
    if not entity_id:
        raise Unreadable("dynamics webhook without PrimaryEntityId")
    when = WCF_DATE.fullmatch(str(data.get("OperationCreatedOn") or ""))
    event_id = data.get("OperationId") or data.get("RequestId")
    return [Notice(kind, entity_id.lower(), vendor_event_id=str(event_id) if event_id else None,
                   occurred_at=iso_utc(int(when[1])) if when else None)]
