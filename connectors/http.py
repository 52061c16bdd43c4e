"""The one upstream HTTP layer: every vendor call goes through `UpstreamConnector._request`.

Retries (tenacity) key off the error types in errors.py; the whole service request shares one deadline.
"""

from __future__ import annotations

import asyncio
import logging
import html
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, get_args

import functools

import aiohttp
import orjson
from multidict import CIMultiDictProxy
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from connectors import auth
from connectors.auth import Auth
from connectors.etiquette import etiquette
from connectors.governor import RateBudget, RateHeaders
from connectors.hosts import check_base_url
from connectors.messages import config_error, credentials_hint, host_label, timeout_message, where_to_set
from errors import (
    AuthFailed,
    CRMError,
    CRMUnavailable,
    InvalidConfig,
    MalformedAnswer,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    UpstreamUnreachable,
    UpstreamUnresolvable,
    SessionExpired,
    ValidationFailed,
)
from idempotency import fingerprint
from observability import log_event, mask_pii, note_request_secrets, redact_secrets, redact_value, request_fields_var
from telemetry import record_upstream

if TYPE_CHECKING:  # settings derives its vendor fields from the connectors' config models (registry.py)
    from settings import Settings

# Vendor status -> contract error. Connectors override single entries (Salesforce's 403 is a rate limit).
DEFAULT_STATUS_ERRORS: Mapping[int, type[CRMError]] = {
    400: ValidationFailed,
    401: AuthFailed,
    403: AuthFailed,
    404: NotFound,
    409: ValidationFailed,
    422: ValidationFailed,
    429: RateLimited,
    502: UpstreamUnavailable,
    503: UpstreamUnavailable,
    504: UpstreamUnavailable,
}


# Tags, and the <head>/<script>/<style> blocks whose text is no reason, of an HTML error page.
_HTML_TAG = re.compile(r"<(head|script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


class Deadline:
    """The time left for one service request, shared by every upstream call it makes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started_at = time.monotonic()
        self.expires_at = self.started_at + seconds

    def elapsed(self) -> float:
        """Seconds since the request began, for messages that report the time actually waited."""
        return time.monotonic() - self.started_at

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - time.monotonic())


@dataclass(frozen=True)
class Outgoing:
    """One upstream attempt as the transport sends it: everything already resolved (auth, body, timeout)."""

    method: str
    url: str
    params: Mapping[str, Any] | None
    data: Any
    headers: Mapping[str, str]
    timeout: aiohttp.ClientTimeout


# Sends one attempt and reads the answer in full; raises aiohttp's (or asyncio's timeout) errors, which
# `_send_once` maps to contract errors. Unit tests inject a fake instead of patching aiohttp.
Transport = Callable[["ConnectorContext", Outgoing], Awaitable["UpstreamResponse"]]


async def aiohttp_transport(ctx: ConnectorContext, out: Outgoing) -> UpstreamResponse:
    """The real transport: the app's shared aiohttp session, no redirects followed (a redirect is an answer)."""
    async with ctx.session.request(
        out.method, out.url, params=out.params, data=out.data, headers=out.headers, timeout=out.timeout,
        allow_redirects=False,
    ) as resp:
        return UpstreamResponse(resp.status, resp.headers, await resp.read())


@dataclass
class ConnectorContext:
    """What a connector needs from the running service: the shared session, settings and shared state."""

    session: aiohttp.ClientSession
    settings: Settings
    deadline: Deadline
    allowed_hosts: frozenset[str] = frozenset()
    sandbox_urls: Mapping[str, str] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)  # app-lifetime state, e.g. OAuth token caches
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    transport: Transport = aiohttp_transport


@dataclass(frozen=True)
class UpstreamResponse:
    """A vendor answer, read in full."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON (None when empty); an unreadable body is a contract `crm_error`."""
        if not self.body.strip():
            return None
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise MalformedAnswer("the vendor's answer could not be read as JSON", upstream_status=self.status) from None

    def error_json(self) -> Any:
        """An error answer's body as JSON, or None where it is empty or not JSON (429s may be HTML or text)."""
        try:
            return self.json()
        except MalformedAnswer:
            return None

    def text_reason(self, limit: int = 200) -> str | None:
        """What a text or HTML error body says, as one trimmed line (None for JSON or empty bodies)."""
        if not self.body.strip() or self.error_json() is not None:
            return None
        text = _HTML_TAG.sub(" ", self.body[:4096].decode("utf-8", "replace"))
        text = " ".join(html.unescape(text).split())
        return (text[: limit - 1] + "…" if len(text) > limit else text) or None


@dataclass(frozen=True)
class CredentialCheck:
    """A vendor's cheapest authenticated call, and the docs page that documents it (readiness's `?deep=true`)."""

    method: str
    path: str  # may name the connector's config fields, e.g. {api_version}
    docs: str
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None


class VendorConfig(BaseModel):
    """Base of each vendor's config model: request `config` merged over the environment (frozen: it is shared)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
    # Start-up checks of a field's environment value ({VENDOR}_{FIELD}), beyond the model's own validators:
    # each returns the value to keep (normalised) or raises ValueError saying what to give. Requests keep
    # the connector's own checks when it is built.
    env_checks: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}
    # Fields beyond HOST_FIELDS that say where calls go (ServiceNow's `instance`): naming one drops env secrets.
    host_fields: ClassVar[frozenset[str]] = frozenset()

    base_url: str | None = None
    # The secret the vendor's webhooks are verified with ({VENDOR}_WEBHOOK_SECRET; webhooks/verify.py says how).
    webhook_secret: SecretStr | None = None


def _secret_value(value: Any) -> Any:
    """orjson's fallback for the cache key: a secret counts by its value (anything else is not cacheable)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    raise TypeError


class ConfigCache:
    """Validated configs by (model, merged config): each tenant's config is validated once, then reused.

    Bounded (least recently used goes first) so a stream of distinct tenants cannot grow it without end;
    invalid configs are never stored, so each one still gets its 400.
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Any, VendorConfig] = OrderedDict()

    def validated(self, model: type[VendorConfig], merged: Mapping[str, Any]) -> VendorConfig:
        """The model for `merged`, from the cache or validated now (pydantic's ValidationError passes through)."""
        try:  # canonical JSON keeps `1`, `1.0` and `true` apart, and is one C call
            key = (model, orjson.dumps(merged, default=_secret_value, option=orjson.OPT_SORT_KEYS))
        except TypeError:  # a value JSON cannot hold: validate every time
            return model.model_validate(merged)
        config = self._entries.get(key)
        if config is not None:
            self._entries.move_to_end(key)
            return config
        config = model.model_validate(merged)
        self._entries[key] = config
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return config


CONFIGS = ConfigCache()


class StoredConfig(dict[str, Any]):
    """A stored connection's whole config: used as is, never merged with the environment's values."""

    # A connection authorized by OAuth: builds the connector's auth from its grant (oauth/grants.py).
    auth_factory: Callable[[UpstreamConnector], Auth] | None = None


def basic_auth(user: str, password: str) -> dict[str, str]:
    """An HTTP Basic Authorization header."""
    return dict(auth.basic(user, password).fixed)


def bearer_auth(token: str) -> dict[str, str]:
    """An OAuth (or private-app token) Bearer Authorization header."""
    return dict(auth.bearer(token).fixed)


RETRY_AFTER_CAP_SECONDS = 86_400.0  # a longer (or infinite) pause is reported as a day


def parse_retry_after(value: str | None, *, epoch: bool = False) -> float | None:
    """Retry-After in seconds (vendors here send delta-seconds; an HTTP date or NaN is treated as unknown).

    `inf` and `1e999` parse as floats; capped, they cannot overflow the Retry-After header we send on.
    `epoch`: a value past 1e9 is a Unix time (a rate window's reset, e.g. Intercom's), read as the seconds until it.
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if math.isnan(seconds):
        return None
    if epoch and 1e9 < seconds < math.inf:  # before the cap, which would otherwise turn it into a day
        seconds = math.ceil(seconds - time.time())  # whole seconds, as the vendor's reset names them
    return min(max(0.0, seconds), RETRY_AFTER_CAP_SECONDS)


# Config fields that never change who a tenant is (inbound webhooks only): outside tenant_fingerprint.
INBOUND_FIELDS = frozenset({"webhook_secret"})

# Config fields that say where calls go: the host, tenant or region a request may name.
HOST_FIELDS = frozenset({"base_url", "subdomain", "domain", "instance_url", "region", "license_id"})


def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """A config model's secrets: its SecretStr fields (tokens, API keys, client secrets)."""
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if info.annotation is SecretStr or SecretStr in get_args(info.annotation)
    )


class UpstreamConnector:
    """Base of every vendor connector: config resolution, auth hook, one `_request`, one status mapping."""

    vendor: ClassVar[str]
    display_name: ClassVar[str]
    config_model: ClassVar[type[VendorConfig]] = VendorConfig
    status_errors: ClassVar[Mapping[int, type[CRMError]]] = DEFAULT_STATUS_ERRORS
    # The vendor's own error codes (read by `_error_codes`) -> contract error; they decide before the status.
    error_codes: ClassVar[Mapping[str, type[CRMError]]] = {}
    # Config fields that tune mappings, not who the tenant is: left out of tenant_fingerprint, so its keys
    # (idempotency, handoffs) stay the same whichever tables a tenant sets, and across a rolling deploy.
    tuning_fields: ClassVar[frozenset[str]] = frozenset()
    credential_check: ClassVar[CredentialCheck]
    # The wait a caller is told after a rate limit that came without one: the vendor's documented window.
    rate_limit_window_seconds: ClassVar[float] = 1.0
    # The sandbox (registry-derived): "module:Class" of this vendor's emulator, and the credentials the
    # sandbox-mode service uses when neither the environment nor the request gives any.
    emulator: ClassVar[str | None] = None
    sandbox_credentials: ClassVar[Mapping[str, str]] = {}
    # The rate governor's inputs (connectors/governor.py): the published limit, and where the answers state it.
    # None: the vendor publishes no limit, so GOVERNOR_DEFAULT_LIMIT_PER_MINUTE applies.
    rate_budget: ClassVar[RateBudget | None] = None
    rate_limit_headers: ClassVar[tuple[RateHeaders, ...]] = ()
    def __init__(self, config: VendorConfig, context: ConnectorContext) -> None:
        self.config = config
        self.ctx = context
        self._sent_credentials: set[str] = set()
        self._sent_auth: dict[str, str] = {}  # the auth headers of the latest call, for `Auth.refresh`
        self.base_url = self._resolve_base_url()

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def merged_config(cls, request_config: Mapping[str, Any] | None, settings: Settings) -> dict[str, Any]:
        """The request's config over the environment's, key by key, except that secrets come whole or not at all.

        A request that names a host field (`host_fields`) or any secret gets none of the environment's secrets
        for this vendor: it brings its own. So the operator's secrets never go to a host a request chose, nor
        pair with a caller's own secret; non-secret options and ids (email, client_id, tier_field) still merge.
        """
        if isinstance(request_config, StoredConfig):
            return dict(request_config)
        given = {k: v for k, v in (request_config or {}).items() if v is not None}
        secrets = secret_fields(cls.config_model)
        env = settings.vendor_defaults(cls.vendor, frozenset(cls.config_model.model_fields))
        if given.keys() & (HOST_FIELDS | cls.config_model.host_fields | secrets):
            env = {k: v for k, v in env.items() if k not in secrets}
        return {**env, **given}

    @classmethod
    def from_request(cls, request_config: Mapping[str, Any] | None, context: ConnectorContext) -> UpstreamConnector:
        """Build the connector from `merged_config`, validated (field names and reasons only in errors)."""
        merged = cls.merged_config(request_config, context.settings)
        try:
            config = CONFIGS.validated(cls.config_model, merged)
        except ValidationError as exc:
            # Only field names and reasons: pydantic's own text would echo the (secret) input values.
            own = (request_config or {}).keys() & (HOST_FIELDS | cls.config_model.host_fields | secret_fields(cls.config_model))
            message = config_error(cls.vendor, cls.config_model, exc.errors(), env_used=not own)
            raise InvalidConfig(message, crm_type=cls.vendor) from None
        connector = cls(config, context)
        factory = getattr(request_config, "auth_factory", None)
        if factory is not None:  # a stored OAuth grant renews this connection's token (cached_property slot)
            connector.__dict__["auth"] = factory(connector)
        return connector

    def missing_config(self, name: str) -> InvalidConfig:
        """The error for a field the vendor URL needs (Zendesk's subdomain), saying where it can be given."""
        where = where_to_set(self.vendor, [name])
        return InvalidConfig(f"invalid {self.vendor} config: {name} is required; {where}", crm_type=self.vendor)

    def _vendor_url(self) -> str:
        """The vendor's real base URL for this config (after validating its host parts)."""
        raise NotImplementedError

    def _resolve_base_url(self) -> str:
        """Request or environment base_url (guarded), else the sandbox's emulator, else the vendor itself."""
        if self.config.base_url:
            hosts = self.ctx.allowed_hosts
            return check_base_url(self.config.base_url, crm_type=self.vendor, allowed_hosts=hosts)
        sandbox = self.ctx.sandbox_urls.get(self.vendor)
        vendor_url = self._vendor_url()
        return sandbox or vendor_url

    def tenant_fingerprint(self) -> str:
        """Who this connector acts for (vendor, host, credentials hashed): idempotency keys never cross tenants."""
        known = self.__dict__.get("_tenant_fingerprint")
        if known is not None:  # asked several times a request (cache, idempotency, etiquette): hashed once
            return known
        identity = {
            name: value.get_secret_value() if isinstance(value, SecretStr) else value
            for name, value in self.config
            if name not in self.tuning_fields and name not in INBOUND_FIELDS
        }
        self._tenant_fingerprint = fingerprint({"vendor": self.vendor, "base_url": self.base_url, **identity})
        return self._tenant_fingerprint

    def etiquette_key(self) -> str:
        """The rate governor's and circuit breaker's key: vendor, host and account (computed once per connector)."""
        key = self.__dict__.get("_etiquette_key")
        if key is None:
            key = self.__dict__["_etiquette_key"] = f"{self.vendor}:{self.tenant_fingerprint()}"
        return key

    def _credential_path(self) -> str:
        """The credential check's path for this config."""
        return self.credential_check.path.format(**dict(self.config))

    async def check_credentials(self) -> dict[str, Any]:
        """Make the vendor's cheapest authenticated call: {"ok", "latency_ms"} and, on failure, the contract code."""
        check = self.credential_check
        started = time.perf_counter()
        try:
            await self._request(
                check.method,
                self._credential_path(),
                params=check.params or None,
                json=check.json,
                idempotent=True,
                operation="check_credentials",
            )
        except CRMError as exc:
            latency = round((time.perf_counter() - started) * 1000, 1)
            return {"ok": False, "latency_ms": latency, "code": exc.code, "message": exc.message}
        return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}

    # --- hooks --------------------------------------------------------------------------------

    def _auth(self) -> Auth:
        """This config's auth strategy (connectors/auth.py): Basic, Bearer, an API-key header or OAuth."""
        raise NotImplementedError

    @functools.cached_property
    def auth(self) -> Auth:
        """The auth strategy, built once per connector."""
        return self._auth()

    def _error_detail(self, response: UpstreamResponse) -> tuple[str, Any]:
        """The vendor's own error message and field details, read from its error body."""
        return f"{self.display_name} answered {response.status}", None

    def _error_codes(self, response: UpstreamResponse) -> Iterable[str]:
        """The vendor error codes an error body names, in order (none by default)."""
        return ()

    def _error_type(self, response: UpstreamResponse) -> type[CRMError]:
        """Which contract error a non-2xx answer is: the first known vendor code, else the status table."""
        for code in self._error_codes(response):
            if code in self.error_codes:
                return self.error_codes[code]
        error_type = self.status_errors.get(response.status)
        if error_type is not None:
            return error_type
        return UpstreamError

    def _retry_after(self, response: UpstreamResponse) -> float | None:
        """How long the vendor asked us to wait: Retry-After, else the seconds until its rate window resets."""
        stated = parse_retry_after(response.headers.get("Retry-After"))
        if stated is not None:
            return stated
        reset = response.headers.get("RateLimit-Reset") or response.headers.get("X-RateLimit-Reset")
        seconds = parse_retry_after(reset, epoch=True)
        return seconds if response.status == 429 else None

    # --- the one request path ------------------------------------------------------------------

    def _secrets(self) -> set[str]:
        """Every credential this connector holds or sent (config secrets, Authorization values), in echoable forms."""
        held = [value.get_secret_value() for _, value in self.config if isinstance(value, SecretStr)]
        return note_request_secrets([*held, *self._sent_credentials])

    def _raise_for_status(self, response: UpstreamResponse) -> None:
        """All status handling: map a non-2xx answer to its contract error through the table."""
        if 200 <= response.status < 300:
            return
        error_type = self._error_type(response)
        message, details = self._error_detail(response)
        reason = response.text_reason()
        if reason and reason not in message:  # a text or HTML body (a proxy's, a 429 page) says why
            message = f"{message}: {mask_pii(reason)}"
        # A vendor or proxy may echo what it was sent: no credential of ours reaches a caller or a log.
        secrets = self._secrets()
        message, details = redact_secrets(message, secrets), redact_value(details, secrets)
        if error_type is AuthFailed or issubclass(error_type, AuthFailed):
            message = f"{self.display_name} rejected the credentials: {message}; {credentials_hint(self.vendor, self.config)}"
        raise error_type(
            message,
            crm_type=self.vendor,
            upstream_status=response.status,
            retry_after=self._retry_after(response),
            details=details,
        )

    async def _send_once(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        attempt: int,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Any,
        headers: Mapping[str, str] | None,
        authenticate: bool = True,
    ) -> UpstreamResponse:
        """One attempt, bounded by what is left of the deadline; transport failures become contract errors."""
        remaining = self.ctx.deadline.remaining()
        settings = self.ctx.settings
        if remaining <= 0.01:
            raise UpstreamTimeout(
                f"{self.display_name} was not called again: the request's deadline ran out after "
                f"{self.ctx.deadline.elapsed():.1f}s (REQUEST_DEADLINE_SECONDS={self.ctx.deadline.seconds:g})",
                crm_type=self.vendor,
            )
        timeout = aiohttp.ClientTimeout(
            total=min(settings.http_total_timeout_seconds, remaining),
            connect=min(settings.http_connect_timeout_seconds, remaining),
        )
        auth_headers = await self.auth.headers() if authenticate else {}
        if authenticate:
            self._sent_auth = auth_headers
        all_headers = {"Accept": "application/json", **auth_headers, **(headers or {})}
        if "Authorization" in all_headers:
            self._sent_credentials.add(all_headers["Authorization"])
        body = orjson.dumps(json) if json is not None else data
        if json is not None:
            all_headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        status: int | None = None
        try:
            outgoing = Outgoing(method, url, params, body, all_headers, timeout)
            response = await self.ctx.transport(self.ctx, outgoing)
            status = response.status
            return response
        except asyncio.TimeoutError:
            waited = time.perf_counter() - started
            message = timeout_message(self.display_name, url, waited, attempt, self.ctx.deadline, settings)
            raise UpstreamTimeout(message, crm_type=self.vendor) from None
        except aiohttp.ClientConnectorDNSError:
            # A name that does not resolve is a config typo (subdomain, domain, base_url): a retry cannot help.
            raise UpstreamUnresolvable(
                f"the host name of {self.display_name} ({host_label(url)}) does not resolve: check the configured "
                "subdomain, domain or base_url",
                crm_type=self.vendor,
            ) from None
        except aiohttp.ClientConnectorError as exc:
            reason = f": {exc.strerror}" if exc.strerror else ""
            raise UpstreamUnreachable(
                f"could not connect to {self.display_name} at {host_label(url)}{reason}", crm_type=self.vendor
            ) from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError):
            raise MalformedAnswer(
                f"{self.display_name} ({host_label(url)}) sent an answer that could not be read", crm_type=self.vendor
            ) from None
        except aiohttp.ClientError:
            # Reset or dropped mid-request: the vendor may or may not have acted on it.
            raise UpstreamUnavailable(
                f"{self.display_name} ({host_label(url)}) dropped the connection", crm_type=self.vendor
            ) from None
        finally:
            elapsed = time.perf_counter() - started
            fields = request_fields_var.get()
            if fields is not None:  # the request's one access line sums up its vendor calls
                fields["upstream_calls"] = fields.get("upstream_calls", 0) + 1
                fields["upstream_ms"] = round(fields.get("upstream_ms", 0.0) + elapsed * 1000, 1)
                fields["upstream_status"] = status
            log_event(  # each call in detail at DEBUG; metrics and spans carry them at every level
                "upstream_call",
                logging.DEBUG,
                crm_type=self.vendor,
                operation=operation,
                method=method,
                path=url.split("?", 1)[0].removeprefix(self.base_url) or "/",
                upstream_status=status,
                latency_ms=round(elapsed * 1000, 1),
                retries=attempt - 1,
            )
            record_upstream(self.vendor, operation, method, url, status, elapsed, attempt)

    def _may_retry(self, error: BaseException, idempotent: bool) -> bool:
        """Retry only known-retryable errors, only within the Retry-After cap, and a create only when safe."""
        if not isinstance(error, CRMError) or not error.retryable or isinstance(error, CRMUnavailable):
            return False  # the circuit breaker's answer is already the fast one: not retried against itself
        if error.retry_after is not None and error.retry_after > self.ctx.settings.retry_after_max_seconds:
            return False  # a long vendor pause goes back to the caller instead of holding the line
        return idempotent or error.request_not_processed

    def _wait_seconds(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter, or the vendor's Retry-After when it sent one."""
        settings = self.ctx.settings
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, CRMError) and error.retry_after is not None:
            return error.retry_after
        backoff = wait_exponential_jitter(
            multiplier=settings.retry_backoff_initial_seconds,
            max=settings.retry_backoff_max_seconds,
            jitter=settings.retry_backoff_initial_seconds,
        )
        return backoff(state)

    def _should_stop(self, state: RetryCallState) -> bool:
        """Stop at the attempt budget, or when the next wait would not leave time for another attempt."""
        if state.attempt_number >= self.ctx.settings.retry_max_attempts:
            return True
        return self.ctx.deadline.remaining() <= (state.upcoming_sleep or 0) + 0.05

    async def _request(self, method: str, path: str, *, authenticate: bool = True, **kwargs: Any) -> UpstreamResponse:
        """`_send`, and once more after the auth strategy renewed a token the vendor called expired.

        An expired-token answer (SessionExpired) means the vendor did nothing, so even a create may be sent again.
        `authenticate=False` sends no credentials (an OAuth token endpoint, which authenticates by its form).
        """
        try:
            return await self._send(method, path, authenticate=authenticate, **kwargs)
        except AuthFailed as exc:
            # A 401 from a vendor without an expired-token code (HubSpot, Zendesk, LiveChat) renews too, where
            # the auth strategy can (an OAuth grant); static credentials answer False and the error stands.
            expired = isinstance(exc, SessionExpired) or exc.upstream_status == 401
            if not expired or not authenticate or not await self.auth.refresh(self._sent_auth):
                raise
        return await self._send(method, path, authenticate=authenticate, **kwargs)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        authenticate: bool = True,
    ) -> UpstreamResponse:
        """Send a call with retries and the deadline; return the 2xx answer or raise its contract error.

        `idempotent` defaults to True for GET; a create passes True only when an idempotency key makes a
        repeat harmless, so otherwise it is retried only where the vendor cannot have received it.
        """
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        safe = method == "GET" if idempotent is None else idempotent
        attempt_no = 1
        guard = etiquette(self.ctx.shared, self.ctx.settings)  # the rate governor and the circuit breaker

        async def attempt(number: int) -> UpstreamResponse:
            nonlocal attempt_no
            attempt_no = number
            send = partial(
                self._send_once,
                method,
                url,
                operation=operation,
                attempt=number,
                params=params,
                json=json,
                data=data,
                headers=headers,
                authenticate=authenticate,
            )
            response = await guard.send(self, send)
            self._raise_for_status(response)
            return response

        try:
            try:  # the fast path: no retry machinery unless the first attempt fails
                return await attempt(1)
            except CRMError as error:
                if not self._may_retry(error, safe):
                    raise
                first_failure = error
            return await self._retry(attempt, first_failure, safe)
        except RateLimited as exc:
            if exc.retry_after is None:  # the vendor named no wait: tell the caller its documented window
                exc.retry_after = self.rate_limit_window_seconds
                exc.message += f" (no wait was stated; {self.display_name}'s rate window is {exc.retry_after:g}s)"
            raise
        finally:
            fields = request_fields_var.get()
            if fields is not None:  # the request's access line reports how many retries it took
                fields["retries"] = fields.get("retries", 0) + attempt_no - 1

    async def _retry(
        self, attempt: Callable[[int], Awaitable[UpstreamResponse]], first_failure: CRMError, safe: bool
    ) -> UpstreamResponse:
        """Tenacity from the first failure on: its attempt 1 replays that failure, so waits and stops are as before."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: self._may_retry(e, safe)),
            wait=self._wait_seconds,
            stop=self._should_stop,
            sleep=self.ctx.sleep,
            reraise=True,
        )
        async for state in retrying:
            with state:
                number = state.retry_state.attempt_number
                if number == 1:
                    raise first_failure
                response = await attempt(number)
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        """`_request` and the answer's JSON body."""
        return (await self._request(method, path, **kwargs)).json()
