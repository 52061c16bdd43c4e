"""A notice: one thing a vendor's webhook says happened, before the unified object is attached (vendors.py, records.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from events import EventType, FieldChange
from models import HandoffResponse, Ticket

# (the chat connector of the webhook's vendor, the last known state) -> the state now
HandoffBuilder = Callable[[Any, HandoffResponse | None], HandoffResponse]


@dataclass
class Notice:
    """One thing a webhook says happened, before the unified object is attached."""

    type: EventType
    object_id: str
    vendor_event_id: str | None = None
    occurred_at: str | None = None
    changes: dict[str, FieldChange] | None = None  # what the vendor itself says changed (else a snapshot diff)
    comment: dict[str, Any] | None = None  # a comment the event added: {"body", "public"}
    handoff: HandoffBuilder | None = None  # LiveChat: the state, from the connector and the last known state
    ticket: Ticket | None = None  # already read (the poller's query): not fetched again


class Unreadable(ValueError):
    """A verified body of a shape the vendor does not document: answered 400, nothing published."""


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Unreadable(f"{what} is not a JSON object")
    return value
