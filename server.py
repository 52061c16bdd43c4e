"""Connectors Service: one REST API over CRMs and helpdesks, with the error contract and the sandbox."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.resources import files
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import SecretStr, ValidationError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import audit
import events
import telemetry
import webhooks
from connections import routes as connections_routes
from oauth import routes as oauth_routes
from auth import CallerAuthMiddleware, key_values, parse_keys, warn_if_open
from cache import cache_key, cached_answer, forget_requester
from caller_context import router as caller_context_router
from connectors.etiquette import ETIQUETTE, Etiquette
from connectors.hosts import host_of
from connectors.context import ConnectorContext
from connectors.http import UpstreamConnector
from crm import CRMFactory
from deps import (
    ERROR_RESPONSES,
    REQUEST_EXAMPLES,
    ROUTE_ERRORS,
    IdempotencyKey,
    ORJSONRoute,
    Store,
    app_context,
    context_of,
    error_responses,
    open_crm,
    within_deadline,
)
from events.routes import router as events_router
from webhooks.routes import router as webhooks_router
from errors import CRMError, InvalidRequest, NotFound, UpstreamUnavailable, ValidationFailed
from exactly_once import create_ticket_once
from fastpath import FastPathMiddleware, KnownBodies
from limits import BodyLimitMiddleware, uvicorn_options
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
from observability import (
    configure_logging,
    log_event,
    new_request_id,
    register_secrets,
    request_fields_var,
    request_id_var,
    request_secrets_var,
)
from phone import parse_phone
from registry import all_connectors
from request_errors import MethodNotAllowed, body_error, sent_crm_type
from settings import Settings, get_settings
from state import MemoryState
from stores import close_shared_state, open_shared_state

class ContractJSONResponse(JSONResponse):
    """Error bodies rendered by orjson (success bodies are already rendered by pydantic-core, FastAPI's default)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str, option=orjson.OPT_NON_STR_KEYS)


def error_response(error: CRMError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one place a CRMError becomes an HTTP answer."""
    extra = {**error.headers, **(headers or {})}
    if error.status_code == 429 and error.retry_after is None:  # every 429 says when to come back
        error.retry_after = 1.0
    fields = request_fields_var.get()
    if fields is not None:  # the access and audit lines name the outcome
        fields["error_code"] = error.code
    if error.retry_after is not None:
        extra["Retry-After"] = str(max(1, round(error.retry_after)))
    return ContractJSONResponse(error.to_body(request_id_var.get()), status_code=error.status_code, headers=extra)


async def send_error(error: CRMError, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer from inside a middleware with the contract error."""
    await error_response(error)(scope, receive, send)


def vendor_secrets(settings: Settings) -> list[str]:
    """The vendor secrets the environment (or the sandbox) gives this process."""
    return [v.get_secret_value() for name, v in settings if isinstance(v, SecretStr) and v.get_secret_value()]


class BodyTooLarge(InvalidRequest):
    """The request body is larger than MAX_REQUEST_BODY_BYTES."""

    status_code = 413


async def clear_service_memory(app_state: Any) -> None:
    """The sandbox's /reset hook: forget idempotency keys, handoff call ids and cached callers (embedded stores).

    Shared Redis state is left alone: another process may be using it, and a sandbox normally has none.
    """
    stores = [app_state.idempotency, getattr(app_state, "cache", None), getattr(app_state, "webhooks", None)]
    for state in {id(s.state): s.state for s in stores if s is not None}.values():
        if isinstance(state, MemoryState):
            await state.close()  # empties it; the embedded store stays usable


class NotReady(UpstreamUnavailable):
    """A store (or, with ?deep=true, a vendor credential) the service needs does not answer: 503."""

    status_code = 503
    code = "not_ready"


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
        secrets_token = request_secrets_var.set(set())  # credentials this request's connectors send, for scrubbing
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
        except CRMError as exc:  # refused by a middleware (size, read time, JSON limits) before any route
            if not response_started:
                await error_response(exc)(scope, receive, send_with_id)
        except Exception:
            logging.getLogger("connectors").exception("unhandled error")
            if not response_started:
                body = CRMError("internal error; the request id identifies it in the logs").to_body(request_id)
                body["error"]["code"] = fields["error_code"] = "internal_error"
                await ContractJSONResponse(body, status_code=500)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            log_event(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                latency_ms=round(elapsed * 1000, 1),
                **fields,
            )
            telemetry.record_request(scope, status, elapsed)
            scope["app"].state.audit.record(fields, status, request_id)
            request_fields_var.reset(fields_token)
            request_secrets_var.reset(secrets_token)
            request_id_var.reset(id_token)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One pooled aiohttp session for the process, and the sandbox's emulators when in sandbox mode."""
    settings: Settings = app.state.settings
    app.state.shared = {}
    await open_shared_state(app.state, settings)  # the cache, idempotency and token stores: memory or Redis
    # The rate governor and circuit breaker: shared through the same Redis when there is one (app.state.states).
    app.state.shared[ETIQUETTE] = Etiquette(settings, shared=next(iter(app.state.states), None))
    connector = aiohttp.TCPConnector(
        limit=settings.http_pool_limit,
        limit_per_host=settings.http_pool_limit_per_host,
        ttl_dns_cache=settings.http_dns_cache_seconds or None,
        use_dns_cache=settings.http_dns_cache_seconds > 0,
    )
    app.state.http = aiohttp.ClientSession(
        connector=connector,
        raise_for_status=False,
        auto_decompress=True,
        headers={"User-Agent": f"connectors-service/{app.version}"},  # vendors ask integrations to name themselves
    )
    app.state.sandbox = None
    app.state.sandbox_urls = {}
    app.state.allowed_hosts = frozenset(settings.connectors_allowed_hosts)
    warn_if_open(app.state.api_keys, bool(vendor_secrets(settings)))
    if settings.sandbox:
        from sandbox import SANDBOX_CREDENTIALS, start_sandbox

        app.state.sandbox = await start_sandbox("127.0.0.1", settings.sandbox_port)
        app.state.sandbox.reset_hooks.append(lambda: clear_service_memory(app.state))
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
    register_secrets([*vendor_secrets(app.state.settings), *key_values(settings.connectors_api_keys)])
    store = app.state.idempotency
    # Readiness hook: other stores (Redis, a database) add a named async check here; raising means not ready.
    app.state.readiness_checks = {"idempotency_store": lambda: store.lookup("_ready", "probe")}
    await connections_routes.start(app)  # stored connections: migrations and key checks; refuses a wrong key
    oauth_routes.start(app)  # the OAuth apps (VENDOR_OAUTH_*) and connections' token renewal through their grant
    await events.open_events(app.state, app.state.settings)  # the event queue, its readiness check and worker
    await webhooks.open_inbound(app.state, app.state.settings)  # vendors' webhooks in; the Salesforce poller
    vendors = sorted(configured_connectors(app_context(app.state)))
    # Start-up objects (modules, schemas, seed data) never die: keep them out of every future GC pass.
    gc.freeze()
    log_event(
        "started",
        **telemetry.version_info(),
        listen=f"http://{settings.host}:{settings.port}",
        vendors=vendors,
        sandbox=settings.sandbox,
        emulators=app.state.sandbox_urls,
    )
    try:
        yield
    finally:
        await webhooks.close_inbound(app.state)  # the poller publishes: it stops before the event pipeline
        await events.close_events(app.state, settings)  # first: deliveries in flight use the session
        await connections_routes.stop(app)
        await close_shared_state(app.state)
        await app.state.http.close()
        app.state.audit.close()
        if app.state.sandbox:
            await app.state.sandbox.stop()


HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes on this path (Starlette's own 405 names only the first route's).

    Asked of the router method by method, as included routers keep their routes to themselves.
    """
    routes = request.app.router.routes
    return [
        method
        for method in HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


# --- readiness --------------------------------------------------------------------------------------

CHECK_TIMEOUT_SECONDS = 2.0
DOCS_ASSETS = "/docs-assets"  # Swagger UI and ReDoc from the pinned fastapi-offline package: no CDN


def configured_connectors(ctx: ConnectorContext) -> dict[str, UpstreamConnector]:
    """A connector for each vendor whose environment config is complete (CRMs and the handoff chat)."""
    found: dict[str, UpstreamConnector] = {}
    for cls in all_connectors():
        try:
            found[cls.vendor] = cls.from_request(None, ctx)
        except InvalidRequest:
            continue  # not (fully) configured here: callers pass its config per request
    return found


async def timed_check(check: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """Run one readiness check within its timeout: {"ok", "latency_ms"} and the reason when it failed."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await check()
    except Exception as exc:  # any failure of a store means not ready, whatever its type
        reason = exc.message if isinstance(exc, CRMError) else type(exc).__name__
        return {"ok": False, "latency_ms": round((time.perf_counter() - started) * 1000, 1), "message": reason}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


async def readiness(app: FastAPI, deep: bool) -> dict[str, Any]:
    """Every store check, and with `deep` each configured vendor's credential check, run at once."""
    checks: dict[str, Callable[[], Awaitable[Any]]] = dict(app.state.readiness_checks)
    names = list(checks)
    work = [timed_check(check) for check in checks.values()]
    if deep:
        connectors = configured_connectors(app_context(app.state))
        names += list(connectors)
        work += [connector.check_credentials() for connector in connectors.values()]
    return dict(zip(names, await asyncio.gather(*work), strict=True))


def document(app: FastAPI) -> None:
    """The OpenAPI document from the tables: each route's own errors (deps.ROUTE_ERRORS), an example per vendor."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            paths = generate()["paths"]
            for path, codes in ROUTE_ERRORS.items():
                for operation in paths.get(path, {}).values():
                    kept = {status: r for status, r in operation["responses"].items() if int(status) < 400}
                    operation["responses"] = {**kept, **error_responses(codes)}
            for path, examples in REQUEST_EXAMPLES.items():
                paths[path]["post"]["requestBody"]["content"]["application/json"]["examples"] = examples
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


# --- the app -----------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; tests pass their own settings."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Connectors Service",
        version=telemetry.VERSION,
        description="One API over Salesforce, Zendesk, HubSpot and Freshdesk, and live-agent handoff.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=telemetry.get().fastapi_config(),
    )
    app.router.route_class = ORJSONRoute  # request bodies parsed by orjson (livechat's router keeps its own)
    app.state.settings = settings
    app.state.api_keys = parse_keys(settings.connectors_api_keys)
    # Outermost last: request id and access line, then the caller's key, then the body's limits.
    app.state.known_bodies = KnownBodies()
    app.add_middleware(FastPathMiddleware, known=app.state.known_bodies)  # fresh caller-cache hits, before FastAPI
    app.add_middleware(BodyLimitMiddleware, read_timeout=settings.body_read_timeout_seconds)
    app.add_middleware(CallerAuthMiddleware, keys=app.state.api_keys, send_error=send_error)
    app.state.audit = audit.AuditLog(settings.audit_log)
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_request_body_bytes)

    @app.exception_handler(CRMError)
    async def crm_error_handler(request: Request, exc: CRMError) -> JSONResponse:
        log_event("error", logging.WARNING, code=exc.code, upstream_status=exc.upstream_status, detail=exc.message)
        return error_response(exc, getattr(exc, "headers", None))  # e.g. X-Cache on a remembered not-found

    @app.exception_handler(RequestValidationError)
    async def validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]  # no `input`: it could echo a credential from `config`
        crm_type = sent_crm_type(exc.body)
        if any(p["type"] in ("json_invalid", "model_attributes_type") for p in problems):
            return error_response(body_error(request, problems, crm_type))
        summary = "; ".join(f"{'.'.join(p['loc'][1:]) or 'body'}: {p['msg']}" for p in problems)
        return error_response(ValidationFailed(f"invalid request: {summary}", crm_type=crm_type, details=problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, CRMError):  # FastAPI wraps what failed while reading the body
            return error_response(exc.__cause__)
        if exc.status_code == 404:
            return error_response(NotFound(f"no route {request.url.path}"))
        if exc.status_code == 405:
            allow = ", ".join(allowed_methods(request)) or (exc.headers or {}).get("Allow", "")
            hint = f"; use {' or '.join(m.strip() for m in allow.split(','))}" if allow else ""
            error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}{hint}")
            return error_response(error, {"Allow": allow} if allow else None)
        error = InvalidRequest(str(exc.detail))
        response = error_response(error, headers=exc.headers)
        response.status_code = exc.status_code
        return response

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers (with its version and build)."""
        return {"status": "healthy", **telemetry.version_info()}

    @app.get("/version", tags=["service"])
    async def version() -> dict[str, str]:
        """The service's version and build (git sha of the image, "dev" otherwise)."""
        return telemetry.version_info()

    @app.get("/ready", tags=["service"])
    async def ready(request: Request, deep: bool = False) -> dict[str, Any]:
        """Readiness: 200 when the stores answer; `?deep=true` also proves each configured vendor's credentials."""
        checks = await readiness(request.app, deep)
        failed = sorted(name for name, check in checks.items() if not check["ok"])
        if failed:
            body = {"status": "not_ready", "checks": checks}
            raise NotReady(f"not ready: {', '.join(failed)} failed", details=body)
        return {"status": "ready", "checks": checks}

    @app.get("/metrics", tags=["service"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus exposition of the service's OpenTelemetry metrics."""
        body, content_type = telemetry.metrics_text()
        return Response(body, media_type=content_type)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        """Swagger UI, its assets served by the service itself."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        """ReDoc, its script served by the service itself, without Google Fonts."""
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/sandbox", tags=["service"])
    async def sandbox_info(request: Request) -> dict[str, Any]:
        """In sandbox mode, each emulator's base URL, for tools and vendor SDKs that talk to them directly."""
        runner = request.app.state.sandbox
        if runner is None:
            raise NotFound("the service is not in sandbox mode")
        return {"emulators": runner.urls, "control": f"{runner.root}/_sandbox", "credentials": runner.credentials}

    @app.post("/crm/customer", response_model=Customer, responses=ERROR_RESPONSES, tags=["crm"])
    async def get_customer(body: CustomerRequest, request: Request) -> Any:
        """A customer by the CRM's own id (through the caller cache: X-Cache, Age)."""
        ctx = context_of(request)
        crm = await open_crm(body, ctx, "get_customer", request)

        async def load() -> bytes:
            found = await within_deadline(crm.get_customer(body.customer_id), ctx, crm.vendor)
            return orjson.dumps(found.model_dump(mode="json"))

        key = cache_key(crm.tenant_fingerprint(), "get_customer", body.customer_id.strip())
        return await cached_answer(request, key, load)

    @app.post("/crm/customer/search", response_model=CustomerList, responses=ERROR_RESPONSES, tags=["crm"])
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

    @app.post("/crm/ticket", response_model=Ticket, responses=ERROR_RESPONSES, tags=["crm"])
    async def get_ticket(body: TicketRequest, request: Request) -> Ticket:
        """A ticket or case by id."""
        ctx = context_of(request)
        crm = await open_crm(body, ctx, "get_ticket", request)
        return await within_deadline(crm.get_ticket(body.ticket_id), ctx, crm.vendor)

    @app.post(
        "/crm/ticket/create", status_code=201, response_model=Ticket, responses=ERROR_RESPONSES, tags=["crm"]
    )
    async def create_ticket(body: TicketCreateRequest, request: Request, store: Store, key: IdempotencyKey = None) -> Any:
        """Create a ticket; with an Idempotency-Key it is created once however often the call is repeated."""
        ctx = context_of(request)
        crm = await open_crm(body, ctx, "create_ticket", request)

        try:
            status, data, replayed = await create_ticket_once(crm, ctx, store, body, key)
        finally:
            await forget_requester(request, crm.tenant_fingerprint(), body)
        return JSONResponse(data, status_code=status, headers={"Idempotent-Replayed": str(replayed).lower()})

    @app.post("/crm/ticket/update", response_model=Ticket, responses=ERROR_RESPONSES, tags=["crm"])
    async def update_ticket(body: TicketUpdateRequest, request: Request) -> Ticket:
        """Change a ticket's fields, and add a public comment or (public false) an internal note."""
        ctx = context_of(request)
        crm = await open_crm(body, ctx, "update_ticket", request)
        return await within_deadline(crm.update_ticket(body), ctx, crm.vendor)

    app.include_router(handoff_router)
    app.include_router(connections_routes.router)
    app.include_router(oauth_routes.router)
    app.include_router(events_router)
    app.include_router(caller_context_router)  # /crm/customer/context, /crm/ticket/search, /crm/ticket/batch
    app.include_router(webhooks_router)
    document(app)
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
    parser.add_argument("--version", action="store_true", help="print the version and build, and exit")
    args = parser.parse_args()
    if args.version:
        info = telemetry.version_info()
        print(f"{info['service']} {info['version']} ({info['build']})")
        return
    if args.sandbox:
        os.environ["SANDBOX"] = "true"
    try:
        settings = Settings()
    except ValidationError as exc:
        # Variable names and reasons only: pydantic's own text would echo the values, secrets included.
        problems = "\n".join(
            f"  {'.'.join(map(str, e['loc'])).upper() or 'SETTINGS'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise SystemExit(f"bad configuration:\n{problems}") from None
    try:
        CRMFactory.connector_class(settings.handoff_fallback_crm)
    except CRMError as exc:
        raise SystemExit(f"bad configuration:\n  HANDOFF_FALLBACK_CRM: {exc.message}") from None
    configure_logging(settings.log_level)
    serving = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        **uvicorn_options(settings),
    }
    if settings.workers > 1:  # each worker is its own process with its own pool (and, in sandbox mode, emulators)
        uvicorn.run("server:worker_app", factory=True, workers=settings.workers, **serving)
    else:
        uvicorn.run(create_app(settings), **serving)


if __name__ == "__main__":
    main()
