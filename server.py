"""Connectors Service: one REST API over CRMs and helpdesks, with the error contract and the sandbox."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.hosts import host_of
from crm import CRMFactory
from deps import (
    ERROR_RESPONSES,
    IdempotencyKey,
    ORJSONRoute,
    Store,
    context_of,
    open_crm,
    with_create_outcome,
    within_deadline,
)
from errors import CRMError, InvalidRequest, NotFound, ValidationFailed
from idempotency import InMemoryIdempotencyStore, fingerprint
from livechat import router as handoff_router
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
from observability import configure_logging, log_event, new_request_id, request_fields_var, request_id_var
from phone import parse_phone
from settings import Settings, get_settings

class ContractJSONResponse(JSONResponse):
    """Error bodies rendered by orjson (success bodies are already rendered by pydantic-core, FastAPI's default)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str, option=orjson.OPT_NON_STR_KEYS)


def error_response(error: CRMError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one place a CRMError becomes an HTTP answer."""
    extra = dict(headers or {})
    if error.retry_after is not None:
        extra["Retry-After"] = str(max(1, round(error.retry_after)))
    return ContractJSONResponse(error.to_body(request_id_var.get()), status_code=error.status_code, headers=extra)


class BodyTooLarge(InvalidRequest):
    """The request body is larger than MAX_REQUEST_BODY_BYTES."""

    status_code = 413


class RequestContextMiddleware:
    """Per request: an X-Request-ID, a body-size cap, one JSON access line, and a contract 500 for bugs."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered, declared = None, b"0"
        for name, value in scope["headers"]:  # one pass for the two headers read here
            if name == b"x-request-id" and offered is None:
                offered = value.decode("latin-1")
            elif name == b"content-length" and declared == b"0":
                declared = value
        request_id = new_request_id(offered)
        id_token = request_id_var.set(request_id)
        fields: dict[str, Any] = {}
        fields_token = request_fields_var.set(fields)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        received = 0

        async def receive_capped() -> Message:
            """Count body bytes as they arrive, so a chunked body without Content-Length is capped too."""
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise BodyTooLarge(f"the request body is larger than {self.max_body_bytes} bytes")
            return message

        try:
            if int(declared or 0) > self.max_body_bytes:  # refused before a byte of it is read
                raise BodyTooLarge(f"the request body is larger than {self.max_body_bytes} bytes")
            await self.app(scope, receive_capped, send_with_id)
        except BodyTooLarge as exc:
            if not response_started:
                await error_response(exc)(scope, receive, send_with_id)
        except Exception:
            logging.getLogger("connectors").exception("unhandled error")
            if not response_started:
                body = CRMError("internal error; the request id identifies it in the logs").to_body(request_id)
                body["error"]["code"] = "internal_error"
                await ContractJSONResponse(body, status_code=500)(scope, receive, send_with_id)
        finally:
            log_event(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                latency_ms=round((time.perf_counter() - started) * 1000, 1),
                **fields,
            )
            request_fields_var.reset(fields_token)
            request_id_var.reset(id_token)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One pooled aiohttp session for the process, and the sandbox's emulators when in sandbox mode."""
    settings: Settings = app.state.settings
    connector = aiohttp.TCPConnector(
        limit=settings.http_pool_limit,
        limit_per_host=settings.http_pool_limit_per_host,
        ttl_dns_cache=settings.http_dns_cache_seconds or None,
        use_dns_cache=settings.http_dns_cache_seconds > 0,
    )
    app.state.http = aiohttp.ClientSession(connector=connector, raise_for_status=False, auto_decompress=True)
    app.state.shared = {}
    app.state.idempotency = InMemoryIdempotencyStore(settings.idempotency_ttl_seconds, settings.idempotency_max_entries)
    app.state.sandbox = None
    app.state.sandbox_urls = {}
    app.state.allowed_hosts = frozenset(settings.connectors_allowed_hosts)
    if settings.sandbox:
        from sandbox import SANDBOX_CREDENTIALS, start_sandbox

        app.state.sandbox = await start_sandbox("127.0.0.1", settings.sandbox_port)
        app.state.sandbox_urls = app.state.sandbox.urls
        app.state.allowed_hosts |= {host_of(app.state.sandbox.root)}
        # Sandbox credentials stand in where the environment has none, so `config` may be left out.
        defaults = {
            f"{vendor}_{name}": value
            for vendor, creds in SANDBOX_CREDENTIALS.items()
            for name, value in creds.items()
            if getattr(settings, f"{vendor}_{name}", None) is None
        }
        app.state.settings = settings.model_copy(update=defaults)
    # Start-up objects (modules, schemas, seed data) never die: keep them out of every future GC pass.
    gc.freeze()
    log_event("started", sandbox=settings.sandbox, emulators=app.state.sandbox_urls)
    try:
        yield
    finally:
        await app.state.http.close()
        if app.state.sandbox:
            await app.state.sandbox.stop()


# --- the app -----------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; tests pass their own settings."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Connectors Service",
        version="1.0.0",
        description="One API over Salesforce, Zendesk, HubSpot and Freshdesk, and live-agent handoff.",
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry hooks: nothing here configures a provider or reads them.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.router.route_class = ORJSONRoute  # request bodies parsed by orjson (livechat's router keeps its own)
    app.state.settings = settings
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_request_body_bytes)

    @app.exception_handler(CRMError)
    async def crm_error_handler(request: Request, exc: CRMError) -> JSONResponse:
        log_event("error", logging.WARNING, code=exc.code, upstream_status=exc.upstream_status, detail=exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]  # no `input`: it could echo a credential from `config`
        if any(p["type"] in ("json_invalid", "model_attributes_type") for p in problems):
            return error_response(InvalidRequest("the body is not a JSON object", details=problems))
        summary = "; ".join(f"{'.'.join(p['loc'][1:]) or 'body'}: {p['msg']}" for p in problems)
        return error_response(ValidationFailed(f"invalid request: {summary}", details=problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, CRMError):  # FastAPI wraps what failed while reading the body
            return error_response(exc.__cause__)
        if exc.status_code == 404:
            return error_response(NotFound(f"no route {request.url.path}"))
        error = InvalidRequest(str(exc.detail))
        response = error_response(error)
        response.status_code = exc.status_code
        return response

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "healthy"}

    @app.get("/sandbox", tags=["service"])
    async def sandbox_info(request: Request) -> dict[str, Any]:
        """In sandbox mode, each emulator's base URL, for tools and vendor SDKs that talk to them directly."""
        runner = request.app.state.sandbox
        if runner is None:
            raise NotFound("the service is not in sandbox mode")
        return {"emulators": runner.urls, "control": f"{runner.root}/_sandbox", "credentials": runner.credentials}

    @app.post("/crm/customer", response_model=Customer, responses=ERROR_RESPONSES, tags=["crm"])
    async def get_customer(body: CustomerRequest, request: Request) -> Customer:
        """A customer by the CRM's own id."""
        ctx = context_of(request)  # a plain call: no dependency to solve
        crm = open_crm(body, ctx, "get_customer")
        return await within_deadline(crm.get_customer(body.customer_id), ctx, crm.vendor)

    @app.post("/crm/customer/search", response_model=CustomerList, responses=ERROR_RESPONSES, tags=["crm"])
    async def find_customers(body: CustomerSearchRequest, request: Request) -> CustomerList:
        """Caller-ID lookup: the phone in any spelling (normalized to E.164), or the email."""
        ctx = context_of(request)
        crm = open_crm(body, ctx, "find_customers")
        phone = parse_phone(body.phone, ctx.settings.default_phone_region) if body.phone else None
        found = await within_deadline(crm.find_customers(phone=phone, email=body.email, limit=body.limit), ctx, crm.vendor)
        return CustomerList(customers=found)

    @app.post("/crm/ticket", response_model=Ticket, responses=ERROR_RESPONSES, tags=["crm"])
    async def get_ticket(body: TicketRequest, request: Request) -> Ticket:
        """A ticket or case by id."""
        ctx = context_of(request)
        crm = open_crm(body, ctx, "get_ticket")
        return await within_deadline(crm.get_ticket(body.ticket_id), ctx, crm.vendor)

    @app.post(
        "/crm/ticket/create", status_code=201, response_model=Ticket, responses=ERROR_RESPONSES, tags=["crm"]
    )
    async def create_ticket(body: TicketCreateRequest, request: Request, store: Store, key: IdempotencyKey = None) -> Any:
        """Create a ticket; with an Idempotency-Key it is created once however often the call is repeated."""
        ctx = context_of(request)
        crm = open_crm(body, ctx, "create_ticket")

        async def create() -> tuple[int, Any]:
            try:
                ticket = await within_deadline(
                    crm.create_ticket(body, idempotency_key=key or uuid.uuid4().hex), ctx, crm.vendor
                )
            except CRMError as exc:
                raise with_create_outcome(exc, "ticket", crm.vendor_dedupes_creates) from None
            return 201, ticket.model_dump(mode="json")

        if key is None:
            status, data, replayed = *(await create()), False
        else:
            scope = f"ticket_create:{crm.tenant_fingerprint()}"
            payload = body.model_dump(mode="json", exclude={"config"})
            status, data, replayed = await store.run(scope, key, fingerprint(payload), create)
        return JSONResponse(data, status_code=status, headers={"Idempotent-Replayed": str(replayed).lower()})

    @app.post("/crm/ticket/update", response_model=Ticket, responses=ERROR_RESPONSES, tags=["crm"])
    async def update_ticket(body: TicketUpdateRequest, request: Request) -> Ticket:
        """Change a ticket's fields, and add a public comment or (public false) an internal note."""
        ctx = context_of(request)
        crm = open_crm(body, ctx, "update_ticket")
        return await within_deadline(crm.update_ticket(body), ctx, crm.vendor)

    app.include_router(handoff_router)
    return app


def worker_app() -> FastAPI:
    """uvicorn's factory in each worker process (WORKERS > 1): settings and logging are set up per process."""
    settings = get_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def main() -> None:
    """`python server.py [--sandbox]`: serve on HOST:PORT with WORKERS processes."""
    import uvicorn

    parser = argparse.ArgumentParser(description="Connectors Service")
    parser.add_argument("--sandbox", action="store_true", help="start the vendor emulators and point connectors at them")
    args = parser.parse_args()
    if args.sandbox:
        os.environ["SANDBOX"] = "true"
    try:
        settings = Settings()
    except ValidationError as exc:
        # Variable names and reasons only: pydantic's own text would echo the values, secrets included.
        problems = "\n".join(f"  {'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise SystemExit(f"bad configuration:\n{problems}") from None
    try:
        CRMFactory.connector_class(settings.handoff_fallback_crm)
    except CRMError as exc:
        raise SystemExit(f"bad configuration:\n  HANDOFF_FALLBACK_CRM: {exc.message}") from None
    configure_logging(settings.log_level)
    serving = {"host": settings.host, "port": settings.port, "log_config": None, "access_log": False}
    if settings.workers > 1:  # each worker is its own process with its own pool (and, in sandbox mode, emulators)
        uvicorn.run("server:worker_app", factory=True, workers=settings.workers, **serving)
    else:
        uvicorn.run(create_app(settings), **serving)


if __name__ == "__main__":
    main()
