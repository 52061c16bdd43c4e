"""The one upstream HTTP layer: every vendor call goes through `UpstreamConnector._request`.

Retries (tenacity) key off the error types in errors.py; the whole service request shares one deadline.
Its parts beside it: upstream_answers.py (reading answers), retry_policy.py (what is retried, and waits),
deadline.py, context.py (what a connector runs with, the transport) and vendor_config.py (config models).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import orjson
from pydantic import SecretStr, ValidationError
from tenacity import AsyncRetrying, retry_if_exception

from connectors import auth
from connectors.auth import Auth
from connectors.context import ConnectorContext, Outgoing
from connectors.etiquette import etiquette
from connectors.governor import RateBudget, RateHeaders
from connectors.hosts import check_base_url
from connectors.messages import config_error, credentials_hint, host_label, timeout_message, where_to_set
from connectors.retry_policy import may_retry, parse_retry_after, should_stop, wait_seconds
from connectors.upstream_answers import DEFAULT_STATUS_ERRORS, UpstreamResponse
from connectors.vendor_config import (
    CONFIGS,
    HOST_FIELDS,
    INBOUND_FIELDS,
    CredentialCheck,
    StoredConfig,
    VendorConfig,
    secret_fields,
)
from errors import (
    AuthFailed,
    CRMError,
    InvalidConfig,
    MalformedAnswer,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    UpstreamUnreachable,
    UpstreamUnresolvable,
    SessionExpired,
)
from idempotency import fingerprint
from observability import log_event, logger, mask_pii, note_request_secrets, redact_secrets, redact_value, request_fields_var
from telemetry import record_upstream

if TYPE_CHECKING:  # settings derives its vendor fields from the connectors' config models (registry.py)
    from settings import Settings


@functools.lru_cache(maxsize=16)
def _client_timeout(total: float, connect: float) -> aiohttp.ClientTimeout:
    """One (immutable) ClientTimeout per pair of settings, not one per attempt."""
    return aiohttp.ClientTimeout(total=total, connect=connect)


def basic_auth(user: str, password: str) -> dict[str, str]:
    """An HTTP Basic Authorization header."""
    return dict(auth.basic(user, password).fixed)


def bearer_auth(token: str) -> dict[str, str]:
    """An OAuth (or private-app token) Bearer Authorization header."""
    return dict(auth.bearer(token).fixed)


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
        total, connect = settings.http_total_timeout_seconds, settings.http_connect_timeout_seconds
        if remaining >= total and remaining >= connect:  # the common case: the settings' own bounds, one object
            timeout = _client_timeout(total, connect)
        else:
            timeout = aiohttp.ClientTimeout(total=min(total, remaining), connect=min(connect, remaining))
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
            if logger.isEnabledFor(logging.DEBUG):  # its fields are not even built at INFO
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
                if not may_retry(error, safe, self.ctx.settings):
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
        # Settings and deadline are read at each decision, not bound here: caller_context.py swaps ctx.deadline.
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: may_retry(e, safe, self.ctx.settings)),
            wait=lambda state: wait_seconds(state, self.ctx.settings),
            stop=lambda state: should_stop(state, self.ctx.settings, self.ctx.deadline),
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
