"""What every vendor emulator shares: auth checks, switchable faults, a request log, rate-limit headers."""

from __future__ import annotations

import asyncio
import base64
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from aiohttp import web

from sandbox.webhooks import WebhookSender

if TYPE_CHECKING:
    from sandbox.oauth import Wire

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# How `lose_answer` drops the answer of a request the emulator did carry out (a create that really happened).
LOSE_MODES = ("reset", "error", "stall")
HTML_PAGE = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>Back soon</h1></body></html>"
# Valid JSON of the wrong shape: every key a connector reads, with a type no vendor documents for it.
WRONG_TYPE_BODY = {
    "id": {"not": "an id"}, "ticket": ["x"], "user": 7, "users": {"a": 1}, "results": "none", "records": 5,
    "totalSize": "many", "done": "maybe", "properties": [1, 2], "total": [], "chat_id": None, "thread": "t",
    "access_token": 1, "chats_summary": {}, "created_at": 12, "status": [], "subject": 3, "description": [],
}
SERVICE_USER_AGENT = "connectors-service/"  # the prefix of the User-Agent the service's own calls carry
# Every distinct (emulator, method, path) the service itself called in this process: the wire audit's input
# (tests/wire_audit.py checks each against the vendor's documented endpoints). Bounded: ids make paths distinct.
SERVICE_CALLS: set[tuple[str, str, str]] = set()
SERVICE_CALLS_MAX = 100_000


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer as vendors send it (application/json; charset=utf-8)."""
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json", charset="utf-8"
    )


def digits(value: Any) -> str:
    """Only the digits of a value (a phone number as any vendor stored it)."""
    return re.sub(r"\D", "", str(value or ""))


def record_id(request: web.Request, suffix: str = "") -> int | None:
    """The numeric `{id}` in the path, less an optional suffix (Zendesk accepts `.json`), or None."""
    raw = request.match_info["id"].removesuffix(suffix) if suffix else request.match_info["id"]
    return int(raw) if raw.isdigit() else None


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """(user, password) from a Basic Authorization header, or None."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


def bearer_token(request: web.Request) -> str | None:
    """The token of a Bearer Authorization header, or None."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() or None if header.startswith("Bearer ") else None


class VendorError(Exception):
    """An error answer in the vendor's own shape, raised from anywhere in a handler; the middleware sends it."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers

    # An already-built vendor answer (an emulator's 404, a text 5xx), raised the same way.
    prebuilt: web.StreamResponse | None = None

    def response(self) -> web.StreamResponse:
        """The answer as the vendor sends it."""
        return self.prebuilt or json_response(self.body, status=self.status, headers=self.headers)


@dataclass
class Fault:
    """One switchable misbehaviour: applies to the next `count` matching requests (-1: until cleared)."""

    kind: str
    count: int = 1
    seconds: float = 0.0  # latency
    retry_after: int = 1  # rate_limit
    status: int = 503  # error, html, and lose_answer's `error` mode
    mode: str = "reset"  # lose_answer: reset the connection, answer `status`, or stall `seconds` before answering
    method: str | None = None
    path: str | None = None  # substring of the path below the emulator's root

    def matches(self, request: web.Request, subpath: str) -> bool:
        """Whether this fault applies to a request."""
        if self.count == 0:
            return False
        if self.method and request.method != self.method.upper():
            return False
        return not self.path or self.path in subpath


async def _latency(emulator: Emulator, request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """Answer late (then normally)."""
    await asyncio.sleep(fault.seconds)
    return None


async def _reset(emulator: Emulator, request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """Drop the connection mid-request."""
    if request.transport:
        request.transport.abort()  # the client sees the connection drop mid-request
    raise asyncio.CancelledError


async def _rate_limit(emulator: Emulator, request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """The vendor's rate-limit answer."""
    return emulator.rate_limited(fault.retry_after)


async def _error(emulator: Emulator, request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """The vendor's 5xx answer."""
    return emulator.server_error(fault.status)


async def _malformed(emulator: Emulator, request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """A 200 whose JSON is cut short."""
    return web.Response(status=200, body=b'{"truncated": ', content_type="application/json")


async def _html(emulator: Emulator, request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """A proxy's or load balancer's page instead of the API."""
    return web.Response(status=fault.status, body=HTML_PAGE, content_type="text/html")


async def _wrong_type(emulator: Emulator, request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """A 200 of valid JSON in a shape no vendor documents."""
    return json_response(WRONG_TYPE_BODY)


async def _echo_auth(emulator: Emulator, request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """A vendor (or proxy) that quotes the credential it refused: the header, and the body (a grant's secret)."""
    quoted = f"invalid credentials: {request.headers.get('Authorization', '')} {await request.text()}"
    body = {"error": {"message": quoted, "type": "authentication"}, "description": quoted, "message": quoted,
            "errors": [{"message": quoted, "errorCode": "INVALID_AUTH"}]}
    return json_response(body, status=401)


async def _carry_out(emulator: Emulator, request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """Let the handler run (lose_answer acts on its answer, in AFTER_HANDLER)."""
    return None


async def _lose_answer(
    emulator: Emulator, request: web.Request, fault: Fault, response: web.StreamResponse
) -> web.StreamResponse:
    """The handler ran (a create really happened); the client never gets its answer."""
    if fault.mode == "error":
        return emulator.server_error(fault.status)
    if fault.mode == "stall":
        await asyncio.sleep(fault.seconds)  # past the service's deadline: it gives up first
        return response
    if request.transport:
        request.transport.abort()
    raise asyncio.CancelledError


# Fault kind -> behaviour: an answer instead of the handler's, or None to go on to the handler.
FAULTS: dict[str, Callable[[Emulator, web.Request, Fault], Awaitable[web.StreamResponse | None]]] = {
    "latency": _latency,
    "rate_limit": _rate_limit,
    "error": _error,
    "reset": _reset,
    "malformed": _malformed,
    "html": _html,
    "wrong_type": _wrong_type,
    "echo_auth": _echo_auth,
    "lose_answer": _carry_out,
}
# Fault kind -> what it does to the answer the handler gave (the vendor acted; the client may not learn it).
AFTER_HANDLER: dict[str, Callable[[Emulator, web.Request, Fault, web.StreamResponse], Awaitable[web.StreamResponse]]] = {
    "lose_answer": _lose_answer,
}
FAULT_KINDS = tuple(FAULTS)


class Emulator:
    """Base of a vendor emulator: an aiohttp app mounted at /{name} with the vendor's wire behaviour."""

    name: ClassVar[str]
    auth_exempt: ClassVar[tuple[str, ...]] = ()  # subpaths that take no Authorization (token endpoints)
    oauth_wire: ClassVar[Wire | None] = None  # the vendor's OAuth authorization server (sandbox/oauth.py), if any

    def __init__(self) -> None:
        from sandbox.oauth import authorization_server  # it builds on this module's helpers

        self.oauth = authorization_server(self)  # the vendor's OAuth authorize page and token endpoint, if any
        self.faults: list[Fault] = []
        self.generation = 0  # bumped by each sandbox reset; a request that waited across one acts on nothing
        self.requests: deque[dict[str, Any]] = deque(maxlen=1000)
        self.webhooks = WebhookSender(self.name)  # the vendor's webhooks as objects change (sandbox/webhooks.py)
        self.reset()

    # --- per-vendor hooks ------------------------------------------------------------------------

    def reset(self) -> None:
        """Restore the seed data."""
        raise NotImplementedError

    def add_routes(self, app: web.Application) -> None:
        """Register the vendor's paths."""
        raise NotImplementedError

    def authenticate(self, request: web.Request) -> bool:
        """Any credential is accepted except the word `invalid` (and none at all)."""
        raise NotImplementedError

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        """The vendor's 401."""
        raise NotImplementedError

    def not_found(self) -> web.StreamResponse:
        """The vendor's 404."""
        raise NotImplementedError

    def rate_limited(self, retry_after: int) -> web.StreamResponse:
        """The vendor's rate-limit answer."""
        return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": str(retry_after)})

    def server_error(self, status: int) -> web.StreamResponse:
        """The vendor's 5xx answer."""
        return web.Response(status=status, text="Service Unavailable")

    def rate_limit_headers(self) -> dict[str, str]:
        """Headers the vendor puts on every answer about its limits."""
        return {}

    def ticket_ids(self) -> list[str]:
        """Every ticket (or Case) the emulator holds, so tests count what really exists."""
        raise web.HTTPNotFound(text=f"{self.name} keeps no tickets")

    def control(self, action: str, payload: dict[str, Any]) -> Any:
        """Vendor-specific sandbox switches (expire tokens, take agents offline, ...)."""
        raise web.HTTPNotFound(text=f"{self.name} has no control action {action!r}")

    # --- shared machinery ------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        """The emulator as an aiohttp sub-application."""
        app = web.Application(middlewares=[self._middleware])
        self.add_routes(app)
        if self.oauth is not None:
            self.oauth.add_routes(app)
        return app

    def add_fault(self, fault: Fault) -> None:
        """Switch a fault on."""
        self.faults.append(fault)

    def _take_fault(self, request: web.Request, subpath: str) -> Fault | None:
        """The first fault matching this request, spending one of its uses."""
        for fault in self.faults:
            if fault.matches(request, subpath):
                if fault.count > 0:
                    fault.count -= 1
                return fault
        return None

    async def _record(self, request: web.Request, subpath: str) -> None:
        """Keep what tests assert on: method, path, query, selected headers, JSON or form body."""
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                body = raw.decode(errors="replace")
        self.requests.append(
            {
                "method": request.method,
                "path": subpath,
                "query": dict(request.query),
                "idempotency_key": request.headers.get("Idempotency-Key"),
                "authorization_scheme": request.headers.get("Authorization", " ").split(" ")[0] or None,
                "body": body,
            }
        )

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record, apply faults, check auth, answer unknown paths as the vendor does, add limit headers."""
        subpath = request.path.removeprefix(f"/{self.name}") or "/"
        await self._record(request, subpath)
        if request.headers.get("User-Agent", "").startswith(SERVICE_USER_AGENT) and len(SERVICE_CALLS) < SERVICE_CALLS_MAX:
            SERVICE_CALLS.add((self.name, request.method, subpath))
        generation = self.generation
        fault = self._take_fault(request, subpath)
        if fault:
            answer = await FAULTS[fault.kind](self, request, fault)
            if answer is not None:
                return answer
            if self.generation != generation:  # reset while a latency fault held it: it must not write to the new seed
                return await _reset(self, request, fault)
        oauth_path = self.oauth is not None and self.oauth.exempt(subpath)
        if subpath not in self.auth_exempt and not oauth_path and not self.authenticate(request):
            return self.unauthorized(request)
        rejected = self.oauth.rejects(request) if self.oauth is not None and not oauth_path else None
        if rejected is not None:  # an OAuth access token the sandbox expired or revoked
            return rejected
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            response = self.not_found()
        except web.HTTPMethodNotAllowed:
            response = self.not_found()
        except VendorError as exc:  # the one error idiom: any handler raises it, this renders it
            response = exc.response()
        if fault and fault.kind in AFTER_HANDLER:
            return await AFTER_HANDLER[fault.kind](self, request, fault, response)
        response.headers.update(self.rate_limit_headers())
        return response


CONTROL_PREFIX = "/_sandbox"
FAULT_FIELDS = {f.name: str(f.type) for f in fields(Fault)}  # annotations are strings here: "int", "str | None"
FAULT_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "str | None": (str, type(None)),
}


def control_error(status: int, message: str) -> web.Response:
    """A control-API failure as JSON, in the service's error shape, so a tool or a person sees why."""
    code = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}.get(status, "sandbox_error")
    return json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def control_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under /_sandbox only (the emulators answer as their vendors do): every refusal is a JSON error."""
    if not request.path.startswith(CONTROL_PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        response = control_error(405, f"{request.method} is not allowed on {request.path}; use {allowed}")
        response.headers["Allow"] = allowed
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return control_error(exc.status, exc.text or exc.reason)


async def json_object(request: web.Request, *, required: bool) -> dict[str, Any]:
    """The request's JSON object body ({} when optional and empty), or a 400 saying what to send."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise web.HTTPBadRequest(text="send a JSON object body, e.g. {\"vendor\": \"zendesk\", \"kind\": \"error\"}")
        return {}
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise web.HTTPBadRequest(text="the body is not JSON: send a JSON object with Content-Type: application/json") from None
    if not isinstance(payload, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return payload


def parse_fault(payload: dict[str, Any]) -> Fault:
    """A Fault from the control API's body, every field checked by name and type."""
    options = {k: v for k, v in payload.items() if k != "vendor"}
    unknown = sorted(set(options) - set(FAULT_FIELDS))
    if unknown:
        raise web.HTTPBadRequest(text=f"unknown fault field(s) {unknown}; valid: vendor, {', '.join(FAULT_FIELDS)}")
    if options.get("kind") not in FAULT_KINDS:
        raise web.HTTPBadRequest(text=f"kind must be one of {', '.join(FAULT_KINDS)}")
    if options.get("mode", "reset") not in LOSE_MODES:
        raise web.HTTPBadRequest(text=f"mode must be one of {', '.join(LOSE_MODES)}")
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, FAULT_TYPES[FAULT_FIELDS[name]]):  # bool is an int
            raise web.HTTPBadRequest(text=f"fault field {name!r} must be {FAULT_FIELDS[name]}")
    return Fault(**options)


class SandboxRunner:
    """The running emulators: one loopback port, each vendor under /{name}, and the control API."""

    def __init__(self, emulators: dict[str, Emulator], credentials: dict[str, dict[str, str]]) -> None:
        self.emulators = emulators
        self.credentials = credentials
        self.root = ""
        self._runner: web.AppRunner | None = None
        # Run by /reset after the emulators reseed: the service registers one that forgets its own memory.
        self.reset_hooks: list[Callable[[], Awaitable[None]]] = []

    @property
    def urls(self) -> dict[str, str]:
        """Each emulator's base URL, as a connector's base_url."""
        return {name: f"{self.root}/{name}" for name in self.emulators}

    def build_app(self) -> web.Application:
        """Root app: the control API plus every emulator mounted under its name."""
        app = web.Application(middlewares=[control_errors])
        app.router.add_post("/_sandbox/faults", self._add_fault)
        app.router.add_delete("/_sandbox/faults", self._clear_faults)
        app.router.add_post("/_sandbox/reset", self._reset)
        app.router.add_get("/_sandbox/requests", self._requests)
        app.router.add_get("/_sandbox/tickets", self._tickets)
        app.router.add_post("/_sandbox/{vendor}/{action}", self._control)
        for name, emulator in self.emulators.items():
            app.add_subapp(f"/{name}/", emulator.build_app())
        return app

    def _emulator(self, name: Any) -> Emulator:
        """The named emulator, or a 400 (none named) or 404 (no such) that lists the vendors."""
        vendors = ", ".join(self.emulators)
        if not name:
            raise web.HTTPBadRequest(text=f"name the vendor: one of {vendors} (?vendor= or \"vendor\" in the body)")
        if name not in self.emulators:
            raise web.HTTPNotFound(text=f"no emulator {name!r}; the vendors are {vendors}")
        return self.emulators[name]

    async def _add_fault(self, request: web.Request) -> web.Response:
        payload = await json_object(request, required=True)
        emulator = self._emulator(payload.get("vendor"))
        emulator.add_fault(parse_fault(payload))
        return json_response({"ok": True}, status=201)

    async def _clear_faults(self, request: web.Request) -> web.Response:
        for emulator in self.emulators.values():
            emulator.faults.clear()
        return json_response({"ok": True})

    async def _reset(self, request: web.Request) -> web.Response:
        for emulator in self.emulators.values():
            emulator.faults.clear()
            emulator.requests.clear()
            emulator.generation += 1
            emulator.reset()
            emulator.webhooks.reset()
        for hook in self.reset_hooks:
            await hook()
        return json_response({"ok": True})

    async def _requests(self, request: web.Request) -> web.Response:
        return json_response(list(self._emulator(request.query.get("vendor")).requests))

    async def _tickets(self, request: web.Request) -> web.Response:
        return json_response(self._emulator(request.query["vendor"]).ticket_ids())

    async def _control(self, request: web.Request) -> web.Response:
        payload = await json_object(request, required=False)
        emulator, action = self._emulator(request.match_info["vendor"]), request.match_info["action"]
        oauth = emulator.oauth.control(action) if emulator.oauth is not None else None
        if oauth is not None:
            return json_response(oauth)
        try:
            if action == "webhooks":  # every emulator's: where its vendor's webhooks go
                return json_response(emulator.webhooks.configure(payload))
            result = emulator.control(action, payload)
        except KeyError as exc:  # an action's own field, e.g. freshdesk's require_for_closure needs "field"
            raise web.HTTPBadRequest(text=f"{emulator.name} {action} needs {exc.args[0]!r} in the JSON body") from None
        except (TypeError, ValueError) as exc:
            raise web.HTTPBadRequest(text=f"{emulator.name} {action}: {exc}") from None
        return json_response(result if result is not None else {"ok": True})

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (0 picks a free port)."""
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.root = f"http://{host}:{bound[1]}"

    async def stop(self) -> None:
        """Close the listener."""
        for emulator in self.emulators.values():
            await emulator.webhooks.close()
        if self._runner:
            await self._runner.cleanup()
