"""What each emulator's webhooks say, in its vendor's documented shape (sent by sandbox/webhooks.py)."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

_hubspot_event_ids = itertools.count(100_000)
ZENDESK_DETAIL = ("assignee_id", "created_at", "description", "group_id", "organization_id", "priority",
                  "requester_id", "status", "subject", "tags", "type", "updated_at")


def zendesk_ticket(kind: str, ticket: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """An event webhook: https://developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/"""
    detail = {k: ticket.get(k) for k in ZENDESK_DETAIL}
    detail.update(id=str(ticket["id"]), status=str(ticket.get("status") or "").upper(),
                  priority=str(ticket["priority"]).upper() if ticket.get("priority") else None)
    return {"type": f"zen:event-type:ticket.{kind}", "account_id": 1, "id": str(uuid.uuid4()),
            "time": ticket.get("updated_at"), "zendesk_event_version": "2022-11-06",
            "subject": f"zen:ticket:{ticket['id']}", "detail": detail, "event": event}


def zendesk_changes(ticket: dict[str, Any], previous: dict[str, Any], comment: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One event per changed field Zendesk has an event type for, then the comment (as Zendesk sends them)."""
    names = {"status": "status_changed", "priority": "priority_changed", "assignee_id": "agent_assignment_changed"}
    sent = [zendesk_ticket(kind, ticket, {"previous": _upper(previous[f]), "current": _upper(ticket.get(f))})
            for f, kind in names.items() if f in previous]
    if comment:
        said = {"id": str(uuid.uuid4().int % 10**12), "body": comment.get("body"), "is_public": comment.get("public", True)}
        sent.append(zendesk_ticket("comment_added", ticket, {"comment": said}))
    return sent


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def hubspot(subscription: str, object_id: str, properties: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A webhooks API v3 batch: https://developers.hubspot.com/docs/api/webhooks (one event per property)."""
    common = {"subscriptionId": 1, "portalId": 62515, "appId": 1, "attemptNumber": 0, "changeSource": "CRM",
              "occurredAt": int(time.time() * 1000), "objectId": int(object_id)}
    if not properties:
        return [{**common, "eventId": next(_hubspot_event_ids), "subscriptionType": subscription}]
    return [{**common, "eventId": next(_hubspot_event_ids), "subscriptionType": subscription,
             "propertyName": name, "propertyValue": value} for name, value in properties.items()]


def livechat(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A v3.6 webhook: https://platform.text.com/docs/management/webhooks (secret_key added when signed)."""
    return {"action": action, "organization_id": "sandbox-organization", "payload": payload, "additional_data": {}}


def intercom(topic: str, item: dict[str, Any]) -> dict[str, Any]:
    """A notification_event: https://developers.intercom.com/docs/references/2.11/webhooks/webhook-models"""
    return {"type": "notification_event", "app_id": "sandbox", "id": f"notif_{uuid.uuid4()}", "topic": topic,
            "delivery_status": "pending", "delivery_attempts": 1, "created_at": int(time.time()),
            "data": {"type": "notification_event_data", "item": item}}


def servicenow(operation: str, record: dict[str, Any], mod_count: int) -> dict[str, Any]:
    """The body the Business Rule in docs/events.md sends (current.operation(), sys_id, sys_mod_count)."""
    return {"table": "incident", "operation": operation, "sys_id": record["sys_id"], "number": record.get("number"),
            "sys_mod_count": mod_count, "sys_updated_on": record.get("sys_updated_on")}


def dynamics(message: str, incident: dict[str, Any]) -> dict[str, Any]:
    """A RemoteExecutionContext: https://learn.microsoft.com/en-us/power-apps/developer/data-platform/use-webhooks"""
    return {"BusinessUnitId": str(uuid.UUID(int=1)), "CorrelationId": str(uuid.uuid4()), "Depth": 1,
            "InitiatingUserId": str(uuid.UUID(int=2)), "MessageName": message, "Mode": 1,
            "OperationCreatedOn": f"/Date({int(time.time() * 1000)})/", "OperationId": str(uuid.uuid4()),
            "OrganizationName": "sandbox", "PrimaryEntityId": incident["incidentid"], "PrimaryEntityName": "incident",
            "RequestId": str(uuid.uuid4()), "Stage": 40, "InputParameters": [], "OutputParameters": []}
