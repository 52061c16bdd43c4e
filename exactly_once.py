"""Exactly-once ticket creates: a create whose answer was lost is looked for before any repeat creates again.

The first attempt writes the connector's `creation_marker` into the record; when its outcome is unknown the
idempotency store remembers it (`remember_unknown`), and a repeat with the same key first asks the vendor
(`find_created`). Found: the ticket is answered as if just created. Not found: created again only where the
vendor's answer proves absence (past `marker_search_lag_seconds`), else a retryable 409 that says so.
Vendors that dedupe by Idempotency-Key themselves (Zendesk) get the key and need none of this.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from connectors.base import BaseCRMConnector
from connectors.context import ConnectorContext
from deps import with_create_outcome, within_deadline
from errors import CRMError, IdempotencyConflict, OutcomeStillUnknown
from idempotency import IdempotencyStore, fingerprint
from models import Ticket, TicketCreateRequest
from telemetry import record_replay


@dataclass
class CreateOnce:
    """One create under an Idempotency-Key: the store that remembers unknown outcomes, its scope, the body's fingerprint."""

    crm: BaseCRMConnector
    ctx: ConnectorContext
    store: IdempotencyStore
    scope: str
    key: str
    fingerprint: str
    recovered: bool = False  # the answer is a ticket an earlier attempt made (found by its marker)
    # How the ticket is made (crm.create_ticket unless given): a batch hands in its bulk create's slot.
    create: Callable[..., Awaitable[Ticket]] | None = None

    async def run(self, ticket: TicketCreateRequest) -> Ticket:
        """The ticket, created at most once for this key."""
        marker = self.crm.creation_marker(self.key, bulk=self.create is not None)
        pending = await self.store.unknown_outcome(self.scope, self.key) if marker else None
        if pending is not None:
            found = await self._look(pending, marker or "", ticket)
            if found is not None:
                self.recovered = True
                await self.store.forget_unknown(self.scope, self.key)
                return found
        try:
            created = await within_deadline(
                (self.create or self.crm.create_ticket)(ticket, idempotency_key=self.key, marker=marker),
                self.ctx,
                self.crm.vendor,
            )
        except CRMError as exc:
            error = with_create_outcome(exc, "ticket", repeat_safe=True)
            if marker and error.details["created"] == "unknown":
                record = {"fp": self.fingerprint, "marker": marker, "at": pending["at"] if pending else time.time()}
                try:
                    await self.store.remember_unknown(self.scope, self.key, record)
                except CRMError:
                    pass  # the store is down: the caller still learns the truth, created "unknown"
            raise error from None
        if pending is not None:
            await self.store.forget_unknown(self.scope, self.key)
        return created

    async def _look(self, pending: dict[str, Any], marker: str, ticket: TicketCreateRequest) -> Ticket | None:
        """The ticket the unknown attempt made, None where the vendor proves there is none, else a 409."""
        if pending["fp"] != self.fingerprint:
            raise IdempotencyConflict("this Idempotency-Key was already used with a different request body")
        searched = {"crm_type": self.crm.vendor, "marker": marker}
        try:
            found = await within_deadline(self.crm.find_created(marker, ticket), self.ctx, self.crm.vendor)
            if found is not None:
                return await within_deadline(self.crm.get_ticket(found), self.ctx, self.crm.vendor)
        except CRMError as exc:
            exc.message += "; looking for the ticket an earlier attempt with this Idempotency-Key may have made failed"
            exc.details = {"created": "unknown", "searched": searched}
            raise
        age = time.time() - pending["at"]
        lag = self.crm.marker_search_lag_seconds
        if age < lag:
            raise OutcomeStillUnknown(
                f"an earlier create with this Idempotency-Key may have made a ticket; {self.crm.display_name}'s "
                f"search does not show it yet but may trail writes by up to {lag:g}s, so repeat the call later",
                crm_type=self.crm.vendor,
                retry_after=round(lag - age, 1),
                details={"created": "unknown", "searched": searched},
            )
        return None  # the vendor proves absence: create it now


async def create_ticket_once(
    crm: BaseCRMConnector,
    ctx: ConnectorContext,
    store: IdempotencyStore,
    ticket: TicketCreateRequest,
    key: str | None,
    create: Callable[..., Awaitable[Ticket]] | None = None,
) -> tuple[int, Any, bool]:
    """A ticket create as /crm/ticket/create and each /crm/ticket/batch item make it: (status, body, replayed).

    With a key, exactly once: the idempotency store runs it once per (tenant, key), and a repeat after a lost
    answer finds the first attempt by its marker. `create` stands in for `crm.create_ticket` (a batch's bulk call).
    """
    make = create or crm.create_ticket
    if key is None:
        try:
            created = await within_deadline(make(ticket, idempotency_key=uuid.uuid4().hex), ctx, crm.vendor)
        except CRMError as exc:
            raise with_create_outcome(exc, "ticket", repeat_safe=False) from None
        return 201, created.model_dump(mode="json"), False
    scope = f"ticket_create:{crm.tenant_fingerprint()}"
    body_fp = fingerprint(ticket.model_dump(mode="json", exclude={"config"}))
    once = CreateOnce(crm, ctx, store, scope, key, body_fp, create=create)

    async def create_once() -> tuple[int, Any]:
        return 201, (await within_deadline(once.run(ticket), ctx, crm.vendor)).model_dump(mode="json")

    try:
        status, data, replayed = await store.run(scope, key, body_fp, create_once)
    except CRMError as exc:
        raise with_create_outcome(exc, "ticket", repeat_safe=True) from None
    replayed = replayed or once.recovered  # the ticket an earlier, unanswered attempt made
    if replayed:
        record_replay("ticket_create")
    return status, data, replayed
