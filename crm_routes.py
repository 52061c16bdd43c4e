"""The CRM routes of the design: a customer by id, caller-ID search, and a ticket read, created and updated.

The routes of the caller in one call (/crm/customer/context, /crm/ticket/search, /crm/ticket/batch) are caller_context.py's.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from cache import cache_key, cached_answer, forget_requester
from deps import ERROR_RESPONSES, IdempotencyKey, Store, context_of, open_crm, within_deadline
from exactly_once import create_ticket_once
from models import (
    Customer,
    CustomerList,
    CustomerRequest,
    CustomerSearchRequest,
    Ticket,
    TicketCreateRequest,
    TicketRequest,
    TicketUpdateRequest,
)
from phone import parse_phone

async def get_customer(body: CustomerRequest, request: Request) -> Any:
    """A customer by the CRM's own id (through the caller cache: X-Cache, Age)."""
    ctx = context_of(request)
    crm = await open_crm(body, ctx, "get_customer", request)

    async def load() -> bytes:
        found = await within_deadline(crm.get_customer(body.customer_id), ctx, crm.vendor)
        return orjson.dumps(found.model_dump(mode="json"))

    key = cache_key(crm.tenant_fingerprint(), "get_customer", body.customer_id.strip())
    return await cached_answer(request, key, load)


async def find_customers(body: CustomerSearchRequest, request: Request) -> Any:
    """Caller-ID lookup: the phone in any spelling (normalized to E.164), or the email (cached: X-Cache, Age)."""
    ctx = context_of(request)
    crm = await open_crm(body, ctx, "find_customers", request)
    phone = parse_phone(body.phone, ctx.settings.default_phone_region) if body.phone else None

    async def load() -> bytes:
        work = crm.find_customers(phone=phone, email=body.email, limit=body.limit)
        found = await within_deadline(work, ctx, crm.vendor)
        return orjson.dumps(CustomerList(customers=found).model_dump(mode="json"))

    query = (phone.e164 if phone else "", body.email or "", str(body.limit))
    return await cached_answer(request, cache_key(crm.tenant_fingerprint(), "find_customers", *query), load)


async def get_ticket(body: TicketRequest, request: Request) -> Ticket:
    """A ticket or case by id."""
    ctx = context_of(request)
    crm = await open_crm(body, ctx, "get_ticket", request)
    return await within_deadline(crm.get_ticket(body.ticket_id), ctx, crm.vendor)


async def create_ticket(body: TicketCreateRequest, request: Request, store: Store, key: IdempotencyKey = None) -> Any:
    """Create a ticket; with an Idempotency-Key it is created once however often the call is repeated."""
    ctx = context_of(request)
    crm = await open_crm(body, ctx, "create_ticket", request)

    try:
        status, data, replayed = await create_ticket_once(crm, ctx, store, body, key)
    finally:
        await forget_requester(request, crm.tenant_fingerprint(), body)
    return JSONResponse(data, status_code=status, headers={"Idempotent-Replayed": str(replayed).lower()})


async def update_ticket(body: TicketUpdateRequest, request: Request) -> Ticket:
    """Change a ticket's fields, and add a public comment or (public false) an internal note."""
    ctx = context_of(request)
    crm = await open_crm(body, ctx, "update_ticket", request)
    return await within_deadline(crm.update_ticket(body), ctx, crm.vendor)


def add_routes(app: FastAPI) -> None:
    """The CRM routes on the app's own router, in this order (the app's ORJSONRoute reads their bodies with orjson).

    Not an included APIRouter: this FastAPI matches an included router's routes a second time on every request.
    """
    app.post("/crm/customer", response_model=Customer, responses=ERROR_RESPONSES, tags=["crm"])(get_customer)
    app.post("/crm/customer/search", response_model=CustomerList, responses=ERROR_RESPONSES, tags=["crm"])(find_customers)
    app.post("/crm/ticket", response_model=Ticket, responses=ERROR_RESPONSES, tags=["crm"])(get_ticket)
    app.post(
        "/crm/ticket/create", status_code=201, response_model=Ticket, responses=ERROR_RESPONSES, tags=["crm"]
    )(create_ticket)
    app.post("/crm/ticket/update", response_model=Ticket, responses=ERROR_RESPONSES, tags=["crm"])(update_ticket)
