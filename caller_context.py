"""The caller in one call: /crm/customer/context, /crm/ticket/search (signed cursors) and /crm/ticket/batch.

The context's parts (tickets, deals, handoffs) run at once inside one short deadline; a part that fails or
runs out of time is named in `partial` with its contract code, while the customer part failing is the answer's error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

import handoff_log
import ticket_cursor
from ticket_bulk import BulkGather, BulkSlot
from cache import CallerCache, cache_key, forget_requester
from connectors.base import BaseCRMConnector, TicketQuery
from connectors.context import ConnectorContext
from connectors.deadline import Deadline
from context_models import (
    CustomerContext,
    CustomerContextRequest,
    TicketBatchItem,
    TicketBatchRequest,
    TicketBatchResponse,
    TicketBatchResult,
    TicketList,
    TicketSearchRequest,
)
from deps import ERROR_RESPONSES, MAPPING_ERRORS, Store, context_of, open_crm, within_deadline
from errors import CRMError, NotFound, NotSupported, UpstreamError, UpstreamTimeout
from exactly_once import create_ticket_once
from idempotency import IdempotencyStore, fingerprint, unpack_error
from models import Customer, CustomerList, TicketCreateRequest, TicketStatus
from observability import request_fields_var, request_id_var
from phone import parse_phone

router = APIRouter(tags=["crm"])

OPEN_STATUSES = (TicketStatus.new, TicketStatus.open, TicketStatus.pending)
BATCH_CONCURRENCY = 4  # items in flight at once where the vendor has no bulk create; the governor paces them


def caller_tenant(request: Request) -> str:
    """Who the handoff record belongs to: the calling API key's name, or `open` without keys (as handoff_log files it)."""
    fields = request_fields_var.get() or {}
    return str(fields.get("caller") or "open")


async def through_cache(request: Request, key: str, load: Callable[[], Awaitable[bytes]]) -> bytes:
    """A serialized answer through the caller cache (the same entries as /crm/customer and its search)."""
    cache: CallerCache | None = request.app.state.cache
    if cache is None:
        return await load()
    got = await cache.read(key, load)
    if got.status != 200:
        raise unpack_error(got.body)
    return got.body


async def find_customer(request: Request, body: CustomerContextRequest, crm: BaseCRMConnector, ctx: ConnectorContext) -> Customer:
    """The caller by id, else the first exact match of the phone or email (cached like the lookup routes)."""
    tenant = crm.tenant_fingerprint()
    if body.customer_id:
        customer_id = body.customer_id.strip()

        async def by_id() -> bytes:
            found = await within_deadline(crm.get_customer(customer_id), ctx, crm.vendor)
            return orjson.dumps(found.model_dump(mode="json"))

        return Customer.model_validate_json(await through_cache(request, cache_key(tenant, "get_customer", customer_id), by_id))
    phone = parse_phone(body.phone, ctx.settings.default_phone_region) if body.phone else None

    async def search() -> bytes:
        found = await within_deadline(crm.find_customers(phone=phone, email=body.email, limit=1), ctx, crm.vendor)
        return orjson.dumps(CustomerList(customers=found).model_dump(mode="json"))

    key = cache_key(tenant, "find_customers", phone.e164 if phone else "", body.email or "", "1")
    customers = CustomerList.model_validate_json(await through_cache(request, key, search)).customers
    if not customers:
        raise NotFound(f"no {crm.display_name} customer has this {'phone' if phone else 'email'}", crm_type=crm.vendor)
    return customers[0]


async def part_outcome(work: Awaitable[Any], ctx: ConnectorContext, crm_type: str) -> tuple[Any, str | None]:
    """(value, None), or (None, the contract code) when the part failed or outlived the deadline."""
    try:
        async with asyncio.timeout(ctx.deadline.remaining()):
            return await work, None
    except TimeoutError:
        return None, UpstreamTimeout.code
    except CRMError as exc:
        return None, exc.code
    except MAPPING_ERRORS:
        return None, UpstreamError.code


@router.post("/crm/customer/context", response_model=CustomerContext, responses=ERROR_RESPONSES)
async def customer_context(body: CustomerContextRequest, request: Request) -> JSONResponse:
    """A voice bot's first second on the line: who is calling, their open and recent tickets, deals and handoffs."""
    ctx = context_of(request)
    ms = body.deadline_ms or ctx.settings.context_deadline_ms
    ctx.deadline = Deadline(min(ms / 1000, ctx.settings.request_deadline_seconds))
    crm = await open_crm(body, ctx, "customer_context", request)
    customer = await find_customer(request, body, crm, ctx)

    async def tickets() -> list[dict[str, Any]]:
        page = await crm.list_tickets(TicketQuery(customer_id=customer.id, limit=body.ticket_limit), None)
        ordered = sorted(page.tickets, key=lambda t: t.updated_at or "", reverse=True)
        ordered.sort(key=lambda t: t.status not in OPEN_STATUSES)  # stable: open first, each newest first
        return [t.model_dump(mode="json") for t in ordered[: body.ticket_limit]]

    async def deals() -> list[dict[str, Any]]:
        if not crm.has_deals:
            raise_not_supported(crm, "deals")
        known = customer.metadata.get("deals")
        if known is None:  # found by a search, which reads no deals: the (cached) record by id has them
            key = cache_key(crm.tenant_fingerprint(), "get_customer", customer.id)

            async def by_id() -> bytes:
                return orjson.dumps((await crm.get_customer(customer.id)).model_dump(mode="json"))

            known = Customer.model_validate_json(await through_cache(request, key, by_id)).metadata.get("deals") or []
        return list(known)

    async def handoffs() -> list[dict[str, Any]]:
        state = request.app.state.idempotency.state
        who = handoff_log.identities(customer.phone, customer.email, ctx.settings.default_phone_region)
        return await handoff_log.recent(state, caller_tenant(request), who)

    parts = {"tickets": tickets, "deals": deals, "handoffs": handoffs}
    wanted = [name for name in parts if name in body.include]
    outcomes = await asyncio.gather(*(part_outcome(parts[name](), ctx, crm.vendor) for name in wanted))
    answer: dict[str, Any] = {"customer": customer.model_dump(mode="json"), "tickets": [], "partial": {}}
    for name, (value, code) in zip(wanted, outcomes, strict=True):
        if code is None:
            answer[name] = value
        else:
            answer["partial"][name] = code
            answer.setdefault(name, [] if name == "tickets" else None)
    return JSONResponse({k: v for k, v in answer.items() if v is not None})


def raise_not_supported(crm: BaseCRMConnector, what: str) -> None:
    """A part this vendor has no documented way to answer."""
    raise NotSupported(f"{crm.display_name} has no {what}", crm_type=crm.vendor)


@router.post("/crm/ticket/search", response_model=TicketList, responses=ERROR_RESPONSES)
async def search_tickets(body: TicketSearchRequest, request: Request) -> JSONResponse:
    """Tickets by customer, status, updated_since, text and tags, newest first; `next_cursor` pages on."""
    ctx = context_of(request)
    crm = await open_crm(body, ctx, "search_tickets", request)
    query = TicketQuery(
        customer_id=body.customer_id.strip() if body.customer_id else None,
        statuses=tuple(body.status),
        updated_since=body.since(),
        text=body.text,
        tags=tuple(body.tags),
        limit=body.limit,
    )
    tenant = crm.tenant_fingerprint()
    query_fp = fingerprint(body.model_dump(mode="json", exclude={"config", "connection_id", "cursor"}))
    secret = ctx.settings.cursor_signing_key
    key = secret.get_secret_value() if secret else None
    page = ticket_cursor.decode(body.cursor, tenant=tenant, query=query_fp, key=key) if body.cursor else None
    found = await within_deadline(crm.list_tickets(query, page), ctx, crm.vendor)
    following = ticket_cursor.encode(found.next, tenant=tenant, query=query_fp, key=key) if found.next else None
    return JSONResponse({"tickets": [t.model_dump(mode="json") for t in found.tickets], "next_cursor": following})


async def create_item(
    crm: BaseCRMConnector, ctx: ConnectorContext, store: IdempotencyStore, item: TicketBatchItem, slot: BulkSlot | None
) -> tuple[int, Any, bool]:
    """One item as /crm/ticket/create makes it (the same keys as that route's); with a slot, its create goes into
    the batch's bulk call."""
    ticket = TicketCreateRequest.model_validate(
        {**item.model_dump(exclude={"idempotency_key", "crm_type", "config", "connection_id"}), "crm_type": crm.vendor}
    )
    return await create_ticket_once(crm, ctx, store, ticket, item.idempotency_key, slot.create if slot else None)


@router.post("/crm/ticket/batch", response_model=TicketBatchResponse, responses=ERROR_RESPONSES)
async def create_tickets(body: TicketBatchRequest, request: Request, store: Store) -> JSONResponse:
    """Up to 100 tickets: each created once per its own idempotency key; partial success is a 200 listing each.

    Where the vendor has a bulk create, the items not already answered go into it (ticket_bulk.py); a batch
    that repeats a key within itself runs item by item, so the repeat waits for its twin's answer.
    """
    ctx = context_of(request)
    crm = await open_crm(body, ctx, "create_tickets", request)
    keys = [item.idempotency_key for item in body.tickets if item.idempotency_key is not None]
    bulk = BulkGather(crm, ctx, len(body.tickets)) if crm.bulk_create_max and len(set(keys)) == len(keys) else None
    # In bulk every item must reach its create (or settle) before the call goes, so none waits at the gate.
    gate = asyncio.Semaphore(len(body.tickets) if bulk else BATCH_CONCURRENCY)

    async def one(index: int, item: TicketBatchItem) -> TicketBatchResult:
        slot = bulk.slot() if bulk else None
        async with gate:
            try:
                try:
                    status, data, replayed = await create_item(crm, ctx, store, item, slot)
                finally:
                    if slot:
                        slot.done()  # settled: the bulk call no longer waits for this item
            except CRMError as exc:
                await forget_requester(request, crm.tenant_fingerprint(), item)
                exc.crm_type = exc.crm_type or crm.vendor
                error = exc.to_body(request_id_var.get())["error"]
                return TicketBatchResult(index=index, status=exc.status_code, error=error)
            await forget_requester(request, crm.tenant_fingerprint(), item)  # it may have created the requester
            return TicketBatchResult(index=index, status=status, ticket=data, replayed=replayed)

    results = await asyncio.gather(*(one(n, item) for n, item in enumerate(body.tickets)))
    created = sum(r.ticket is not None for r in results)
    answer = TicketBatchResponse(results=list(results), created=created, failed=len(results) - created)
    return JSONResponse(answer.model_dump(mode="json", exclude_none=True))
