"""A ticket batch through the vendor's bulk create: every item not already answered in the idempotency store
goes into one call, each keeping its own key, marker and exactly-once handling (exactly_once.CreateOnce).

Each item runs its usual path; where that path would create, it hands its ticket to the gather instead. Once
every item has either handed one in or settled (replayed, refused, waiting on a twin), the gathered tickets go
out in bulk calls of at most `bulk_create_max`. An item that reaches its create later creates alone.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from connectors.base import BaseCRMConnector
from connectors.context import ConnectorContext
from deps import within_deadline
from errors import CRMError
from models import Ticket, TicketCreateRequest


class BulkGather:
    """The creates a batch's items hand in, sent in bulk once no item can still hand one in."""

    def __init__(self, crm: BaseCRMConnector, ctx: ConnectorContext, items: int) -> None:
        self.crm, self.ctx, self.open = crm, ctx, items
        self.items: list[tuple[TicketCreateRequest, str | None, asyncio.Future[Ticket]]] = []
        self.sent: asyncio.Task[None] | None = None

    def slot(self) -> BulkSlot:
        """One item's way in: its create, and its leaving without one."""
        return BulkSlot(self)

    def _left(self) -> None:
        self.open -= 1
        if self.open == 0 and self.sent is None:
            self.sent = asyncio.ensure_future(self._send())

    async def _send(self) -> None:
        """The gathered tickets in bulk calls; each future gets its ticket or its own error."""
        size = max(1, self.crm.bulk_create_max)
        for start in range(0, len(self.items), size):
            chunk = self.items[start : start + size]
            try:
                made: list[Any] = await within_deadline(
                    self.crm.create_tickets([(ticket, marker) for ticket, marker, _ in chunk]), self.ctx, self.crm.vendor
                )
            except CRMError as exc:  # the whole call failed: every item in it has that outcome, each its own copy
                made = [copy.copy(exc) for _ in chunk]
            except Exception as exc:  # noqa: BLE001 - handed to each waiting item, which maps it as its own create would
                made = [exc for _ in chunk]
            for (_, _, future), result in zip(chunk, made, strict=True):
                if not future.done():
                    future.set_exception(result) if isinstance(result, BaseException) else future.set_result(result)


class BulkSlot:
    """One batch item's part in a BulkGather: `create` has CreateOnce's create signature."""

    def __init__(self, gather: BulkGather) -> None:
        self.gather, self.counted = gather, False

    def done(self) -> None:
        """The item has settled without a create (or already handed one in): it no longer holds the bulk call."""
        if not self.counted:
            self.counted = True
            self.gather._left()

    async def create(self, ticket: TicketCreateRequest, *, idempotency_key: str, marker: str | None = None) -> Ticket:
        """The ticket from the bulk call, or alone once that call has gone."""
        gather = self.gather
        if gather.sent is not None:
            return await gather.crm.create_ticket(ticket, idempotency_key=idempotency_key, marker=marker)
        future: asyncio.Future[Ticket] = asyncio.get_running_loop().create_future()
        gather.items.append((ticket, marker, future))
        self.done()
        return await future
