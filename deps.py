"""FastAPI dependencies and helpers the routes share (crm_routes.py's CRM routes, livechat.py's handoff routes)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Mapping
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute

from audit import ID_FIELDS
from connectors.context import ConnectorContext
from connectors.deadline import Deadline
from connectors.vendor_config import StoredConfig
from crm import BaseCRMConnector, CRMFactory
from errors import CRMError, InvalidRequest, MalformedAnswer, UpstreamTimeout, UpstreamUnavailable
from idempotency import IdempotencyStore
from api_models.examples import expand_examples
from models import CRMRequest, ErrorResponse
from observability import request_fields_var
from registry import CRMS

T = TypeVar("T")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "invalid_request, unsupported_crm or invalid_config",
        404: "not_found or connection_not_found",
        409: "idempotency_conflict",
        422: "validation_error",
        429: "rate_limited",
        502: "crm_auth_failed, crm_error or handoff_failed",
        503: "crm_unavailable (the circuit breaker is open for this vendor account)",
        504: "crm_timeout",
    }.items()
}

REQUEST_ID = "4f1c2d3e5a6b7c8d9e0f1a2b3c4d5e6f"


def _error(code: str, message: str, crm_type: str | None = None, retryable: bool = False, **extra: Any) -> dict[str, Any]:
    """One contract error body, as the service writes it."""
    error = {"code": code, "message": message, "crm_type": crm_type, "retryable": retryable, "request_id": REQUEST_ID}
    return {"error": {**error, **extra}}


# Every contract error with the answer the service really gives (taken from the sandbox): status and body.
# The OpenAPI request examples, one per registered CRM from its class's `sandbox_seed` (and what it can do).
REQUEST_EXAMPLES = expand_examples(
    {
        cls.vendor: {**cls.sandbox_seed, "lists_tickets": cls.list_tickets is not BaseCRMConnector.list_tickets}
        for cls in CRMS
        if cls.sandbox_seed
    }
)

ERROR_EXAMPLES: dict[str, tuple[int, dict[str, Any]]] = {
    "invalid_request": (400, _error("invalid_request", "the body is not a JSON object")),
    "unsupported_crm": (
        400, _error("unsupported_crm", f"unsupported crm_type 'pipedrive'; supported: {', '.join(CRMFactory.supported())}")
    ),
    "invalid_config": (
        400, _error("invalid_config", "subdomain must be a single DNS label (letters, digits, hyphens)", "zendesk")
    ),
    "not_supported": (
        400, _error("not_supported", "Freshdesk's ticket list and filter cannot search text: use status, tags or updated_since", "freshdesk")
    ),
    "not_found": (404, _error("not_found", "Not found", "zendesk", upstream_status=404)),
    "connection_not_found": (404, _error("connection_not_found", "no connection conn_7d2a4b9e0c1f")),
    "method_not_allowed": (405, _error("invalid_request", "Method Not Allowed")),
    "idempotency_conflict": (
        409, _error("idempotency_conflict", "this Idempotency-Key was already used with a different request body")
    ),
    "payload_too_large": (413, _error("invalid_request", "the request body is larger than 2097152 bytes")),
    "validation_error": (
        422,
        _error(
            "validation_error",
            "invalid request: customer_id: Field required",
            details=[{"loc": ["body", "customer_id"], "msg": "Field required", "type": "missing"}],
        ),
    ),
    "rate_limited": (
        429, _error("rate_limited", "HubSpot answered 429", "hubspot", True, retry_after_seconds=10.0, upstream_status=429)
    ),
    "internal_error": (500, _error("internal_error", "internal error; the request id identifies it in the logs")),
    "crm_auth_failed": (
        502,
        _error("crm_auth_failed", "Zendesk rejected the credentials: Couldn't authenticate you", "zendesk", upstream_status=401),
    ),
    "crm_error": (502, _error("crm_error", "Freshdesk dropped the connection", "freshdesk", True)),
    "handoff_failed": (
        502,
        _error(
            "handoff_failed",
            "no live agent could take the call (LiveChat: group_offline: LiveChat group 0 is offline) and the fallback "
            "zendesk ticket failed too (crm_auth_failed: ...); nothing was created: no chat and no ticket",
            "livechat",
            details={
                "livechat": {"reason": "group_offline", "chat_id": None, "chat_closed": False},
                "fallback": {"crm_type": "zendesk", "code": "crm_auth_failed", "created": False},
            },
        ),
    ),
    "not_ready": (
        503,
        _error(
            "not_ready",
            "not ready: zendesk failed",
            retryable=True,
            details={"status": "not_ready", "checks": {"idempotency_store": {"ok": True, "latency_ms": 0.0},
                     "zendesk": {"ok": False, "latency_ms": 6.1, "code": "crm_auth_failed"}}},
        ),
    ),
    "crm_timeout": (504, _error("crm_timeout", "Salesforce did not answer within 8.0s", "salesforce", True)),
    "crm_unavailable": (
        503,
        _error(
            "crm_unavailable",
            "Zendesk is failing, so this account's calls are paused (circuit breaker): nothing was sent; retry in 30s",
            "zendesk",
            True,
            retry_after_seconds=30.0,
            details={"created": False, "breaker": "open"},
        ),
    ),
}

# Which errors each endpoint can answer with: reads never conflict on a key or fail a handoff.
READ_ERRORS = (
    "invalid_request", "unsupported_crm", "invalid_config", "not_found", "connection_not_found", "method_not_allowed",
    "payload_too_large",
    "validation_error", "rate_limited", "internal_error", "crm_auth_failed", "crm_error", "crm_timeout",
    "crm_unavailable",
)  # fmt: skip
CREATE_ERRORS = (*READ_ERRORS, "idempotency_conflict")
ROUTE_ERRORS: dict[str, tuple[str, ...]] = {
    "/crm/customer": READ_ERRORS,
    "/crm/customer/search": READ_ERRORS,
    "/crm/ticket": READ_ERRORS,
    "/crm/ticket/create": CREATE_ERRORS,
    "/crm/ticket/update": READ_ERRORS,
    "/handoff/create": (*CREATE_ERRORS, "handoff_failed"),
    "/handoff/status": READ_ERRORS,
    "/crm/customer/context": (*READ_ERRORS, "not_supported"),  # a part's own errors are in its `partial`
    "/crm/ticket/search": (*READ_ERRORS, "not_supported"),
    "/crm/ticket/batch": READ_ERRORS,  # each item's error is in the 200 body
    "/ready": ("method_not_allowed", "validation_error", "internal_error", "not_ready"),  # ?deep=<not a bool>: 422
}


def error_responses(codes: tuple[str, ...]) -> dict[str, Any]:
    """OpenAPI responses for these error codes: one per status, each code a named example of the contract body."""
    responses: dict[str, Any] = {}
    for code in codes:
        status, body = ERROR_EXAMPLES[code]
        response = responses.setdefault(
            str(status),
            {
                "description": "",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}, "examples": {}}
                },
            },
        )
        response["description"] = ", ".join(filter(None, [response["description"], code]))
        response["content"]["application/json"]["examples"][code] = {"summary": code, "value": body}
    return dict(sorted(responses.items()))


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
    return app_context(request.app.state)


def context_of(request: Request) -> ConnectorContext:
    """Everything a connector needs for this request, with a fresh deadline (a plain call: no dependency)."""
    return app_context(request.app.state)


def app_context(state: Any) -> ConnectorContext:
    """A connector context from the app's state: per request, and for readiness and the start-up line."""
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


async def request_config(
    request: Request, vendor: str | None, config: dict[str, Any] | None, connection_id: str | None, kind: str
) -> tuple[str, Mapping[str, Any] | None]:
    """(vendor, config) for a request: its own `config`, or its stored connection's (not merged with the environment).

    The one place a request's connection is resolved (once; the manager caches decrypted configs briefly).
    """
    if connection_id is None:
        return vendor or "", config
    stored, stored_config = await request.app.state.connections.resolve(connection_id, kind)
    if vendor is not None and vendor.strip().lower() != stored:
        raise InvalidRequest(f"connection {connection_id} is a {stored} connection, not {vendor}", crm_type=stored)
    return stored, stored_config if isinstance(stored_config, StoredConfig) else StoredConfig(stored_config)


async def open_crm(body: CRMRequest, ctx: ConnectorContext, operation: str, request: Request) -> BaseCRMConnector:
    """The connector for a request, noting crm_type and operation for the access log."""
    fields = request_fields_var.get()
    if fields is not None:
        fields.update(crm_type=body.crm_type, operation=operation)
        fields.update({name: value for name in ID_FIELDS if (value := getattr(body, name, None)) is not None})
    crm_type, config = await request_config(request, body.crm_type, body.config, body.connection_id, "crm")
    if fields is not None:
        fields["crm_type"] = crm_type
    return CRMFactory.create(crm_type, config, ctx)


# What mapping a vendor body of an undocumented shape raises (pydantic's ValidationError is a ValueError).
MAPPING_ERRORS = (KeyError, TypeError, AttributeError, IndexError, ValueError)


async def within_deadline(work: Awaitable[T], ctx: ConnectorContext, crm_type: str) -> T:
    """Backstop: whatever happens upstream, the caller has an answer by the deadline."""
    try:
        async with asyncio.timeout(ctx.deadline.remaining() + 0.25):
            return await work
    except TimeoutError:
        raise UpstreamTimeout("the request did not finish within its deadline", crm_type=crm_type) from None
    except CRMError as exc:
        exc.crm_type = exc.crm_type or crm_type  # errors raised below the connector (an unreadable body) name it too
        raise
    except MAPPING_ERRORS:
        # A 2xx body of a shape the vendor does not document (a field of the wrong type, a list for an object):
        # the vendor's answer is at fault, not the caller, so it is the contract's crm_error, never a 500.
        raise MalformedAnswer(f"{crm_type} sent an answer of an unexpected shape", crm_type=crm_type) from None


def with_create_outcome(error: CRMError, what: str, repeat_safe: bool) -> CRMError:
    """Tell the caller whether a failed create may still have happened, so nothing is doubled or lost.

    `repeat_safe`: a repeat with the same key cannot double it (the vendor dedupes, or exactly_once.py looks
    for the first attempt's marker). An error that already says whether it created is left as it is.
    """
    if isinstance(error.details, dict) and "created" in error.details:
        return error
    error = copy.copy(error)  # the error may be shared (a token renewal's failure answers all its waiters)
    # An unreadable 2xx (MalformedAnswer) came after the vendor acted: it may well exist.
    if isinstance(error, (UpstreamTimeout, UpstreamUnavailable, MalformedAnswer)) and not error.request_not_processed:
        advice = (
            "repeat the call with the same Idempotency-Key to get exactly one"
            if repeat_safe
            else "no Idempotency-Key was given, so look for it before creating it again"
        )
        error.message += f"; the {what} may or may not have been created: {advice}"
        created: bool | str = "unknown"
    else:
        created = False
    # Vendor details stay whole: a dict is extended, anything else (e.g. Freshdesk's list) kept under `errors`.
    vendor = error.details if isinstance(error.details, dict) else {} if error.details is None else {"errors": error.details}
    error.details = {**vendor, "created": created}
    return error
