"""The one upstream HTTP layer: every vendor call goes through `UpstreamConnector._request`.

Retries (tenacity) key off the error types in errors.py; the whole service request shares one deadline.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp
import orjson
from multidict import CIMultiDictProxy
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from connectors.hosts import check_base_url
from errors import (
    AuthFailed,
    CRMError,
    InvalidConfig,
    MalformedAnswer,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    UpstreamUnreachable,
    ValidationFailed,
)
from idempotency import fingerprint
from observability import log_event, request_fields_var
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


class Deadline:
    """The time left for one service request, shared by every upstream call it makes."""

    def __init__(self, seconds: float) -> None:
        self.expires_at = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - time.monotonic())


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


class VendorConfig(BaseModel):
    """Base of each vendor's config model: request `config` merged over the environment (frozen: it is shared)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    base_url: str | None = None


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


def basic_auth(user: str, password: str) -> dict[str, str]:
    """An HTTP Basic Authorization header."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer_auth(token: str) -> dict[str, str]:
    """An OAuth (or private-app token) Bearer Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (vendors here send delta-seconds; an HTTP date is treated as unknown)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class UpstreamConnector:
    """Base of every vendor connector: config resolution, auth hook, one `_request`, one status mapping."""

    vendor: ClassVar[str]
    display_name: ClassVar[str]
    config_model: ClassVar[type[VendorConfig]] = VendorConfig
    status_errors: ClassVar[Mapping[int, type[CRMError]]] = DEFAULT_STATUS_ERRORS

    def __init__(self, config: VendorConfig, context: ConnectorContext) -> None:
        self.config = config
        self.ctx = context
        self.base_url = self._resolve_base_url()

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def from_request(cls, request_config: Mapping[str, Any] | None, context: ConnectorContext) -> UpstreamConnector:
        """Merge the request's config over the environment's, validate it, and build the connector."""
        fields = frozenset(cls.config_model.model_fields)
        merged = context.settings.vendor_defaults(cls.vendor, fields)
        merged.update({k: v for k, v in (request_config or {}).items() if v is not None})
        try:
            config = CONFIGS.validated(cls.config_model, merged)
        except ValidationError as exc:
            # Only field names and reasons: pydantic's own text would echo the (secret) input values.
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise InvalidConfig(f"invalid {cls.vendor} config: {problems}", crm_type=cls.vendor) from None
        return cls(config, context)

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
        identity = {
            name: value.get_secret_value() if isinstance(value, SecretStr) else value for name, value in self.config
        }
        return fingerprint({"vendor": self.vendor, "base_url": self.base_url, **identity})

    # --- hooks --------------------------------------------------------------------------------

    async def _auth_headers(self) -> dict[str, str]:
        """Authorization headers for the next call."""
        raise NotImplementedError

    def _error_detail(self, response: UpstreamResponse) -> tuple[str, Any]:
        """The vendor's own error message and field details, read from its error body."""
        return f"{self.display_name} answered {response.status}", None

    def _error_type(self, response: UpstreamResponse) -> type[CRMError]:
        """Which contract error a non-2xx answer is; a table lookup unless the vendor needs more."""
        error_type = self.status_errors.get(response.status)
        if error_type is not None:
            return error_type
        return UpstreamError

    def _retry_after(self, response: UpstreamResponse) -> float | None:
        """How long the vendor asked us to wait."""
        return parse_retry_after(response.headers.get("Retry-After"))

    # --- the one request path ------------------------------------------------------------------

    def _raise_for_status(self, response: UpstreamResponse) -> None:
        """All status handling: map a non-2xx answer to its contract error through the table."""
        if 200 <= response.status < 300:
            return
        error_type = self._error_type(response)
        message, details = self._error_detail(response)
        if error_type is AuthFailed or issubclass(error_type, AuthFailed):
            message = f"{self.display_name} rejected the credentials: {message}"
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
    ) -> UpstreamResponse:
        """One attempt, bounded by what is left of the deadline; transport failures become contract errors."""
        remaining = self.ctx.deadline.remaining()
        if remaining <= 0.01:
            raise UpstreamTimeout(f"{self.display_name} did not answer within the deadline", crm_type=self.vendor)
        settings = self.ctx.settings
        timeout = aiohttp.ClientTimeout(
            total=min(settings.http_total_timeout_seconds, remaining),
            connect=min(settings.http_connect_timeout_seconds, remaining),
        )
        all_headers = {"Accept": "application/json", **(await self._auth_headers()), **(headers or {})}
        body = orjson.dumps(json) if json is not None else data
        if json is not None:
            all_headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        status: int | None = None
        try:
            async with self.ctx.session.request(
                method, url, params=params, data=body, headers=all_headers, timeout=timeout, allow_redirects=False
            ) as resp:
                status = resp.status
                payload = await resp.read()
                return UpstreamResponse(resp.status, resp.headers, payload)
        except asyncio.TimeoutError:
            raise UpstreamTimeout(
                f"{self.display_name} did not answer within {timeout.total:.1f}s", crm_type=self.vendor
            ) from None
        except aiohttp.ClientConnectorError:
            raise UpstreamUnreachable(f"could not connect to {self.display_name}", crm_type=self.vendor) from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError):
            raise MalformedAnswer(f"{self.display_name} sent an answer that could not be read", crm_type=self.vendor) from None
        except aiohttp.ClientError:
            # Reset or dropped mid-request: the vendor may or may not have acted on it.
            raise UpstreamUnavailable(f"{self.display_name} dropped the connection", crm_type=self.vendor) from None
        finally:
            log_event(
                "upstream_call",
                crm_type=self.vendor,
                operation=operation,
                method=method,
                path=url.split("?", 1)[0].removeprefix(self.base_url) or "/",
                upstream_status=status,
                latency_ms=round((time.perf_counter() - started) * 1000, 1),
                retries=attempt - 1,
            )

    def _may_retry(self, error: BaseException, idempotent: bool) -> bool:
        """Retry only known-retryable errors, only within the Retry-After cap, and a create only when safe."""
        if not isinstance(error, CRMError) or not error.retryable:
            return False
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

    async def _request(
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
    ) -> UpstreamResponse:
        """Send a call with retries and the deadline; return the 2xx answer or raise its contract error.

        `idempotent` defaults to True for GET; a create passes True only when an idempotency key makes a
        repeat harmless, so otherwise it is retried only where the vendor cannot have received it.
        """
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        safe = method == "GET" if idempotent is None else idempotent
        attempt_no = 1

        async def attempt(number: int) -> UpstreamResponse:
            nonlocal attempt_no
            attempt_no = number
            response = await self._send_once(
                method, url, operation=operation, attempt=number, params=params, json=json, data=data, headers=headers
            )
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
