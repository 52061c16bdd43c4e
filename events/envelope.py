"""The one event envelope every subscriber receives, and the subscription a subscriber registers.

The envelope is documented in docs/events.md; `data` holds the unified object (models.py) under its kind's name,
so a subscriber reads the same Ticket, Customer or HandoffResponse the REST API answers with.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models import Customer, HandoffResponse, Ticket


class EventType(str, Enum):
    """What happened; the prefix names the kind of object in `data`."""

    ticket_created = "ticket.created"
    ticket_updated = "ticket.updated"
    customer_updated = "customer.updated"
    handoff_assigned = "handoff.assigned"
    handoff_queued = "handoff.queued"
    handoff_closed = "handoff.closed"


class ChangedField(str, Enum):
    """The fields a ticket.updated names in `changes`."""

    status = "status"
    priority = "priority"
    assignee = "assignee"
    comment = "comment"


# The kind of object each event carries: its key in `data`, its model, and the attribute that is its id.
KINDS: dict[str, tuple[type[BaseModel], str]] = {
    "ticket": (Ticket, "id"),
    "customer": (Customer, "id"),
    "handoff": (HandoffResponse, "handoff_id"),
}


def kind_of(event_type: EventType | str) -> str:
    """`ticket` for ticket.updated: the key under `data` and part of the per-object ordering key."""
    return EventType(event_type).value.split(".", 1)[0]


class FieldChange(BaseModel):
    """One field's value before and after (a comment has only `new`: the comment added)."""

    old: Any = None
    new: Any = None


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Event(BaseModel):
    """The envelope: one vendor event, normalised; `id` is also the delivery's `webhook-id`."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "evt_5f0c3e1e9a3b4d7c8e2f1a0b9c8d7e6f",
                "type": "ticket.updated",
                "occurred_at": "2026-12-01T14:03:07.120Z",
                "connection_id": "default",
                "vendor": "zendesk",
                "vendor_event_id": "01HZX4J8Q6T3",
                "object_id": "35436",
                "data": {"ticket": {"id": "35436", "subject": "Refund", "description": "...", "status": "pending",
                                    "priority": "high", "customer_id": "1234", "metadata": {}}},
                "changes": {"status": {"old": "open", "new": "pending"}},
            }
        }
    )

    id: str = Field(default_factory=lambda: f"evt_{uuid.uuid4().hex}", max_length=100)
    type: EventType
    occurred_at: str = Field(default_factory=utc_now_iso, description="When the vendor says it happened (ISO 8601 UTC).")
    connection_id: str = Field("default", min_length=1, max_length=200)
    vendor: str = Field(min_length=1, max_length=50)
    vendor_event_id: str | None = Field(None, max_length=200, description="Duplicates of it per connection are dropped.")
    object_id: str = Field(min_length=1, max_length=200)
    data: dict[str, Any]
    changes: dict[ChangedField, FieldChange] | None = None

    @model_validator(mode="after")
    def _data_holds_its_kind(self) -> Event:
        """`data` holds exactly the unified object the type names, so subscribers can rely on its shape."""
        kind = kind_of(self.type)
        model, _ = KINDS[kind]
        if set(self.data) != {kind}:
            raise ValueError(f"data of a {self.type.value} event holds one key, {kind!r}")
        self.data = {kind: model.model_validate(self.data[kind]).model_dump(mode="json")}
        return self

    @classmethod
    def of(cls, event_type: EventType | str, obj: BaseModel, *, vendor: str, **fields: Any) -> Event:
        """The envelope around a unified object; `object_id` is the object's own id."""
        kind = kind_of(event_type)
        _, id_attr = KINDS[kind]
        return cls(type=event_type, vendor=vendor, object_id=str(getattr(obj, id_attr)),
                   data={kind: obj.model_dump(mode="json")}, **fields)

    def ordering_key(self) -> str:
        """Events with the same key reach each subscriber in the order they were published."""
        return f"{self.connection_id}|{self.vendor}|{kind_of(self.type)}|{self.object_id}"

    def dedupe_key(self) -> str | None:
        """The same vendor event id twice on one connection is one event."""
        if self.vendor_event_id is None:
            return None
        return f"{self.connection_id}|{self.vendor}|{self.vendor_event_id}"


class SubscriptionRequest(BaseModel):
    """POST /subscriptions: where to deliver, which event types, and (optionally) your own signing secret."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"url": "https://hooks.example.com/connectors",
                                       "events": ["ticket.created", "ticket.updated"]}},
    )

    url: str = Field(min_length=1, max_length=2000)
    events: list[EventType] = Field(min_length=1, max_length=len(EventType))
    secret: str | None = Field(
        None, pattern=r"^whsec_[A-Za-z0-9+/]{32,88}={0,2}$", description="whsec_<base64 of 24-64 bytes>; made for you if absent."
    )


class Subscription(BaseModel):
    """A registered subscriber; `secret` is shown only in the answer that created it."""

    id: str
    url: str
    events: list[EventType]
    enabled: bool = True
    disabled_reason: str | None = None
    created_at: str
    secret: str | None = None


class DeadLetter(BaseModel):
    """An event a subscriber never took: the envelope, how often it was tried, and the last answer."""

    event: Event
    attempts: int
    last_error: str
    dead_at: str
