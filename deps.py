"""FastAPI dependencies and helpers the routes share (server.py's CRM routes, livechat.py's handoff routes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute

from connectors.http import ConnectorContext, Deadline
from crm import BaseCRMConnector, CRMFactory
from errors import CRMError, UpstreamTimeout, UpstreamUnavailable
from idempotency import IdempotencyStore
from models import CRMRequest, ErrorResponse
from observability import request_fields_var

T = TypeVar("T")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "invalid_request, unsupported_crm or invalid_config",
        404: "not_found",
        409: "idempotency_conflict",
        422: "validation_error",
        429: "rate_limited",
        502: "crm_auth_failed, crm_error or handoff_failed",
        504: "crm_timeout",
    }.items()
}


class ORJSONRequest(Request):
    """A request whose JSON body is parsed by orjson (its JSONDecodeError is json's, so FastAPI's 422/400 hold)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class ORJSONRoute(APIRoute):
    """Routes that read their body with ORJSONRequest."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def orjson_handler(request: Request) -> Response:
            return await handler(ORJSONRequest(request.scope, request.receive))

        return orjson_handler


async def connector_context(request: Request) -> ConnectorContext:
    """The `Context` dependency (async: no thread-pool hop); hot routes call context_of directly."""
    return context_of(request)


def context_of(request: Request) -> ConnectorContext:
    """Everything a connector needs for this request, with a fresh deadline."""
    state = request.app.state
    return ConnectorContext(
        session=state.http,
        settings=state.settings,
        deadline=Deadline(state.settings.request_deadline_seconds),
        allowed_hosts=state.allowed_hosts,
        sandbox_urls=state.sandbox_urls,
        shared=state.shared,
    )


async def idempotency_store(request: Request) -> IdempotencyStore:
    """The process's idempotency store."""
    return request.app.state.idempotency


Context = Annotated[ConnectorContext, Depends(connector_context)]
Store = Annotated[IdempotencyStore, Depends(idempotency_store)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Same key, same answer: the ticket is created once.",
    ),
]


def open_crm(body: CRMRequest, ctx: ConnectorContext, operation: str) -> BaseCRMConnector:
    """The connector for a request, noting crm_type and operation for the access log."""
    fields = request_fields_var.get()
    if fields is not None:
        fields.update(crm_type=body.crm_type, operation=operation)
    return CRMFactory.create(body.crm_type, body.config, ctx)


async def within_deadline(work: Awaitable[T], ctx: ConnectorContext, crm_type: str) -> T:
    """Backstop: whatever happens upstream, the caller has an answer by the deadline."""
    try:
        async with asyncio.timeout(ctx.deadline.remaining() + 0.25):
            return await work
    except TimeoutError:
        raise UpstreamTimeout("the request did not finish within its deadline", crm_type=crm_type) from None


def with_create_outcome(error: CRMError, what: str, vendor_dedupes: bool) -> CRMError:
    """Tell the caller whether a failed create may still have happened, so nothing is doubled or lost."""
    if isinstance(error, (UpstreamTimeout, UpstreamUnavailable)) and not error.request_not_processed:
        advice = (
            "repeat the call with the same Idempotency-Key to get exactly one"
            if vendor_dedupes
            else "this vendor takes no idempotency key, so look for it before creating it again"
        )
        error.message += f"; the {what} may or may not have been created: {advice}"
        created: bool | str = "unknown"
    else:
        created = False
    # Vendor details stay whole: a dict is extended, anything else (e.g. Freshdesk's list) kept under `errors`.
    vendor = error.details if isinstance(error.details, dict) else {} if error.details is None else {"errors": error.details}
    error.details = {**vendor, "created": created}
    return error
