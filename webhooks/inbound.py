"""From verified notices to published events: the unified object attached, what changed, the last known state kept.

Shared state (memory, or Redis with REDIS_URL, for every replica) holds replay keys, each ticket's last
status/priority/assignee (to say what changed where the vendor does not) and each chat's last handoff state
(read by /handoff/status). A vendor is answered 2xx only after the event bus's `publish` returned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from connectors.context import ConnectorContext
from deps import within_deadline
from events import Event, EventType, FieldChange
from models import Customer, HandoffResponse, Ticket
from registry import CHATS, CRMS
from state import State

from .vendors import HANDOFF_TYPES, Notice

PREFIX = "connectors:webhooks:"
SNAPSHOT_TTL_SECONDS = 30 * 86_400.0  # a ticket untouched for a month: its next change says only `new` values
HANDOFF_TTL_SECONDS = 86_400.0  # a chat's state from events is served this long; LiveChat is asked after that
# Where each connector keeps the assignee in a Ticket's metadata: Zendesk, Salesforce, HubSpot and Dynamics
# (owner_id), Freshdesk, ServiceNow (the sys_user's sys_id), Intercom (the admin).
ASSIGNEE_KEYS = ("assignee_id", "owner_id", "responder_id", "assigned_to", "admin_assignee_id")


def ticket_fields(ticket: Ticket) -> dict[str, Any]:
    """The fields a ticket.updated reports in `changes`, as the unified model spells them."""
    assignee = next((ticket.metadata[k] for k in ASSIGNEE_KEYS if ticket.metadata.get(k) is not None), None)
    return {"status": ticket.status.value, "priority": ticket.priority.value,
            "assignee": None if assignee is None else str(assignee)}


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[str, FieldChange]:
    """Fields whose value moved since the last snapshot (none known: nothing can be said to have changed)."""
    if before is None:
        return {}
    return {name: FieldChange(old=before.get(name), new=value) for name, value in after.items() if before.get(name) != value}


@dataclass
class Inbox:
    """The inbound side's shared state, over the service's `State`."""

    state: State

    async def first_time(self, key: str, ttl: float) -> bool:
        """Claim a replay key: False if it was seen within its ttl."""
        return await self.state.claim(f"{PREFIX}replay:{key}", b"1", ttl)

    async def forget(self, key: str) -> None:
        """Release a replay key after a failure, so the vendor's retry is processed."""
        await self.state.delete(f"{PREFIX}replay:{key}")

    async def _json(self, key: str) -> Any:
        raw = await self.state.get(PREFIX + key)
        return None if raw is None else orjson.loads(raw)

    async def snapshot(self, connection_id: str, vendor: str, ticket_id: str) -> dict[str, Any] | None:
        return await self._json(f"ticket:{connection_id}:{vendor}:{ticket_id}")

    async def remember_ticket(self, connection_id: str, vendor: str, ticket: Ticket) -> None:
        key = f"{PREFIX}ticket:{connection_id}:{vendor}:{ticket.id}"
        await self.state.set(key, orjson.dumps(ticket_fields(ticket)), SNAPSHOT_TTL_SECONDS)

    async def handoff(self, connection_id: str, chat_id: str) -> HandoffResponse | None:
        """The latest handoff state a LiveChat event told of, or None."""
        found = await self._json(f"handoff:{connection_id}:{chat_id}")
        return None if found is None else HandoffResponse.model_validate(found)

    async def remember_handoff(self, connection_id: str, state: HandoffResponse) -> None:
        key = f"{PREFIX}handoff:{connection_id}:{state.handoff_id}"
        await self.state.set(key, orjson.dumps(state.model_dump(mode="json")), HANDOFF_TTL_SECONDS)


@dataclass
class Source:
    """Where notices come from: the vendor, the connection, its config (None: the environment's) and a context."""

    vendor: str
    connection_id: str
    config: Mapping[str, Any] | None
    ctx: ConnectorContext
    publish: Callable[[Event], Awaitable[bool]]  # this app's event bus (a process may run more than one app)


async def _ticket_event(inbox: Inbox, source: Source, notice: Notice) -> tuple[Event, Ticket]:
    ticket = notice.ticket
    if ticket is None:
        crm = CRMS.create(source.vendor, source.config, source.ctx)
        ticket = await within_deadline(crm.get_ticket(notice.object_id), source.ctx, source.vendor)
    changes = None
    if notice.type is EventType.ticket_updated:
        if notice.changes is not None:  # the vendor said what changed
            changes = dict(notice.changes)
        else:
            changes = diff(await inbox.snapshot(source.connection_id, source.vendor, ticket.id), ticket_fields(ticket))
        if notice.comment is not None:
            changes["comment"] = FieldChange(new=notice.comment)
    return _event(notice.type, ticket, source, notice, changes=changes), ticket


async def _customer_event(source: Source, notice: Notice) -> Event:
    crm = CRMS.create(source.vendor, source.config, source.ctx)
    customer: Customer = await within_deadline(crm.get_customer(notice.object_id), source.ctx, source.vendor)
    return _event(notice.type, customer, source, notice)


def _event(event_type: EventType, obj: Any, source: Source, notice: Notice, **fields: Any) -> Event:
    when = {"occurred_at": notice.occurred_at} if notice.occurred_at else {}
    return Event.of(event_type, obj, vendor=source.vendor, connection_id=source.connection_id,
                    vendor_event_id=notice.vendor_event_id, **when, **fields)


async def publish_notices(inbox: Inbox, source: Source, notices: list[Notice]) -> int:
    """Attach each notice's unified object, publish it (durably queued), then keep the state it leaves; returns
    how many were queued (duplicates of a vendor event id are not)."""
    queued = 0
    for notice in notices:
        ticket: Ticket | None = None
        handoff: HandoffResponse | None = None
        if notice.handoff is not None:
            chat = CHATS.create(source.vendor, source.config, source.ctx)
            handoff = notice.handoff(chat, await inbox.handoff(source.connection_id, notice.object_id))
            event = _event(HANDOFF_TYPES[handoff.status], handoff, source, notice)
        elif notice.type is EventType.customer_updated:
            event = await _customer_event(source, notice)
        else:
            event, ticket = await _ticket_event(inbox, source, notice)
        queued += await source.publish(event)
        if ticket is not None:
            await inbox.remember_ticket(source.connection_id, source.vendor, ticket)
        if handoff is not None:
            await inbox.remember_handoff(source.connection_id, handoff)
    return queued


async def known_handoff(request: Any, body: Any) -> HandoffResponse | None:
    """For /handoff/status: the chat's state from LiveChat's webhook events, when one arrived for its connection.

    A request with its own `config` names no connection, so LiveChat is asked as before.
    """
    inbox: Inbox | None = getattr(request.app.state, "webhooks", None)
    if inbox is None or body.config is not None:
        return None
    return await inbox.handoff(body.connection_id or "default", body.handoff_id.strip())
