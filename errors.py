"""One exception tree for every failure, each type carrying its HTTP answer and whether a retry may help."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class CRMError(Exception):
    """Base of every error the service answers with; maps to the `{"error": {...}}` contract."""

    status_code: ClassVar[int] = 502
    code: ClassVar[str] = "crm_error"
    retryable: ClassVar[bool] = False
    # True where the vendor cannot have acted on the request, so even a create may be sent again.
    request_not_processed: ClassVar[bool] = False
    headers: ClassVar[Mapping[str, str]] = {}  # HTTP headers the answer must carry (WWW-Authenticate, ...)

    def __init__(
        self,
        message: str,
        *,
        crm_type: str | None = None,
        upstream_status: int | None = None,
        retry_after: float | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.crm_type = crm_type
        self.upstream_status = upstream_status
        self.retry_after = retry_after
        self.details = details

    def to_body(self, request_id: str) -> dict[str, Any]:
        """The error contract body for this error."""
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "crm_type": self.crm_type,
            "retryable": self.retryable,
            "request_id": request_id,
        }
        if self.retry_after is not None:
            error["retry_after_seconds"] = self.retry_after
        if self.upstream_status is not None:
            error["upstream_status"] = self.upstream_status
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class InvalidRequest(CRMError):
    """The caller's request cannot be served as sent."""

    status_code = 400
    code = "invalid_request"


class Unauthorized(InvalidRequest):
    """No API key, or not one of CONNECTORS_API_KEYS."""

    status_code = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class AdminDisabled(CRMError):
    """The admin API is closed: no CONNECTORS_ADMIN_KEYS are set and the service is not in sandbox mode."""

    status_code = 403
    code = "admin_disabled"


class RequestTimeout(InvalidRequest):
    """The client did not send its whole request (headers or body) within the read timeout."""

    status_code = 408
    code = "request_timeout"
    headers = {"Connection": "close"}  # the rest of a half-sent body must not be read as a next request


class UnsupportedCRM(InvalidRequest):
    """The crm_type (or chat_type) names no registered connector."""

    code = "unsupported_crm"


class NotSupported(InvalidRequest):
    """The vendor (or its connector) has no documented way to do this, e.g. list a customer's tickets."""

    code = "not_supported"


class InvalidConfig(InvalidRequest):
    """Credentials are missing or malformed, or a host is not the vendor's."""

    code = "invalid_config"


class NotFound(CRMError):
    """The vendor has no such record."""

    status_code = 404
    code = "not_found"


class IdempotencyConflict(CRMError):
    """An Idempotency-Key was reused with a different body."""

    status_code = 409
    code = "idempotency_conflict"


class OutcomeStillUnknown(IdempotencyConflict):
    """A repeat of a create whose first outcome is unknown, and the vendor cannot yet tell: ask again later."""

    retryable = True


class ValidationFailed(CRMError):
    """The body failed validation here, or the vendor rejected its fields."""

    status_code = 422
    code = "validation_error"


class RateLimited(CRMError):
    """The vendor's rate limit outlasted the retry budget."""

    status_code = 429
    code = "rate_limited"
    retryable = True
    request_not_processed = True  # a 429 is refused before any work is done


class AuthFailed(CRMError):
    """The vendor rejected the credentials or their permissions; retrying will not help."""

    status_code = 502
    code = "crm_auth_failed"


class SessionExpired(AuthFailed):
    """An OAuth session the connector can refresh once before giving up (Salesforce INVALID_SESSION_ID)."""


class UpstreamError(CRMError):
    """The vendor failed in a way that retrying does not fix, or its answer could not be read."""

    status_code = 502
    code = "crm_error"


class UpstreamUnavailable(UpstreamError):
    """A 502/503/504 from the vendor, or a dropped connection: worth another attempt."""

    retryable = True


class UpstreamUnreachable(UpstreamUnavailable):
    """No connection could be made, so the vendor never saw the request."""

    request_not_processed = True


class UpstreamUnresolvable(UpstreamError):
    """The vendor's host name does not resolve (DNS): a config typo, so retrying will not help; nothing was sent."""

    request_not_processed = True


class UpstreamRefused(UpstreamUnavailable):
    """The vendor turned the request away before doing any work (LiveChat service_unavailable): safe to resend."""

    request_not_processed = True


class UpstreamTimeout(CRMError):
    """The vendor did not answer within the deadline."""

    status_code = 504
    code = "crm_timeout"
    retryable = True


class HandoffFailed(CRMError):
    """Neither the live handoff nor its fallback ticket could be created; nothing was created."""

    status_code = 502
    code = "handoff_failed"


class MalformedAnswer(UpstreamError):
    """The vendor's answer could not be read (broken JSON, truncated body, unexpected shape)."""


class StateUnavailable(CRMError):
    """The shared state store (Redis) did not answer: the request did nothing upstream, so repeat it."""

    status_code = 503
    code = "state_unavailable"
    retryable = True
    request_not_processed = True


class CRMUnavailable(CRMError):
    """The circuit breaker is open for this vendor account: answered at once, nothing sent (so nothing created)."""

    status_code = 503
    code = "crm_unavailable"
    retryable = True
    request_not_processed = True


class ConnectionNotFound(NotFound):
    """No stored connection has this id (or it was deleted)."""

    code = "connection_not_found"


class ConnectionConflict(CRMError):
    """A connection id already exists, or another admin changed the connection at the same moment."""

    status_code = 409
    code = "connection_conflict"


class ConnectionsUnavailable(CRMError):
    """Stored connections cannot be used here: no CONNECTIONS_ENCRYPTION_KEY, or the store did not answer."""

    status_code = 503
    code = "connections_unavailable"
