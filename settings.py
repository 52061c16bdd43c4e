"""Service configuration: one Settings object read from the environment, failing fast on bad values."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr, ValidationError, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class ServiceSettings(BaseSettings):
    """The service's own environment variables; `Settings` adds each registered vendor's `{VENDOR}_{FIELD}`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Server
    host: str = "0.0.0.0"
    port: int = Field(8090, ge=1, le=65535)
    log_level: LogLevel = "INFO"
    sandbox: bool = False
    sandbox_port: int = Field(0, ge=0, le=65535, description="Port of the in-process emulators; 0 picks a free one.")

    # Upstream behaviour
    http_connect_timeout_seconds: float = Field(2.0, gt=0)
    http_total_timeout_seconds: float = Field(8.0, gt=0, description="Per upstream attempt.")
    request_deadline_seconds: float = Field(10.0, gt=0, description="Whole service request, retries included.")
    # Customer context and ticket search (caller_context.py)
    context_deadline_ms: int = Field(800, ge=50, description="Default deadline of /crm/customer/context's parts.")
    cursor_signing_key: SecretStr | None = None  # signs ticket-search cursors; shared by every replica
    retry_max_attempts: int = Field(3, ge=1, le=10)
    retry_backoff_initial_seconds: float = Field(0.2, ge=0)
    retry_backoff_max_seconds: float = Field(2.0, ge=0)
    retry_after_max_seconds: float = Field(
        5.0, ge=0, description="Longest vendor Retry-After we wait out; longer ones go back to the caller as 429."
    )
    # One pool for every vendor; a per-host ceiling (0 = none) would cap a slow vendor at ceiling/latency req/s.
    http_pool_limit: int = Field(1000, ge=1, description="Open upstream connections per process, all hosts.")
    http_pool_limit_per_host: int = Field(0, ge=0, description="Per vendor host; 0 is no ceiling below HTTP_POOL_LIMIT.")
    http_dns_cache_seconds: int = Field(300, ge=0, description="How long a resolved vendor host is reused.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes `python server.py` starts.")

    # Upstream etiquette (docs/upstream-etiquette.md): the rate governor and the circuit breaker
    governor_enabled: bool = True
    governor_low_water_ratio: float = Field(
        0.2, ge=0, lt=1, description="Below this share of a rate window left, calls are spread over the time left."
    )
    governor_default_limit_per_minute: int = Field(
        600, ge=1, description="Calls a minute per account for a vendor that publishes no limit (LiveChat, ServiceNow)."
    )
    breaker_enabled: bool = True
    breaker_failure_threshold: int = Field(5, ge=1, description="Consecutive outages (5xx, timeouts) that open it.")
    breaker_failure_ratio: float = Field(0.5, gt=0, le=1, description="Or this share of failed calls in the window...")
    breaker_min_calls: int = Field(10, ge=1, description="...once the window holds at least this many calls.")
    breaker_window_seconds: float = Field(60.0, gt=0, description="Counts older than this are forgotten.")
    breaker_open_seconds: float = Field(30.0, gt=0, description="Open this long, then one probe goes through.")

    # Safety and behaviour
    max_request_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="Larger bodies are refused with 413.")
    connectors_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    default_phone_region: str = "US"
    idempotency_ttl_seconds: int = Field(86400, ge=1)
    idempotency_max_entries: int = Field(100_000, ge=1)
    idempotency_max_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Embedded store's bound, in bytes.")
    idempotency_max_answer_bytes: int = Field(8192, ge=256, description="A kept answer beyond this is compacted.")

    # Caller cache and shared state (docs/operations-state.md)
    # Shared state for every worker and replica (unset: per process); secret, as the URL may hold a password.
    redis_url: SecretStr | None = None
    caller_cache_enabled: bool = True
    caller_cache_ttl_seconds: float = Field(60.0, gt=0, description="An entry is fresh this long.")
    caller_cache_stale_seconds: float = Field(300.0, ge=0, description="Then served stale while one refresh runs.")
    caller_cache_negative_ttl_seconds: float = Field(10.0, ge=0, description="A not-found answer is remembered this long.")
    caller_cache_max_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="In-memory LRU bound, in bytes.")

    # Caller authentication: comma-separated keys, each `id:key` or a bare key (its id is a hash prefix).
    connectors_api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # The admin API (/connections, /subscriptions): its own keys, same form; none of the callers' keys opens it.
    connectors_admin_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Slow clients: headers and body must arrive within these bounds; shutdown waits at most this long.
    header_read_timeout_seconds: float = Field(10.0, gt=0)
    body_read_timeout_seconds: float = Field(15.0, gt=0)
    keep_alive_timeout_seconds: int = Field(5, ge=1)
    graceful_shutdown_seconds: int = Field(15, ge=1)
    audit_log: str = Field("stdout", min_length=1, description="Audit trail: stdout, a file path, or off.")

    # Stored connections (docs/connections.md): unset DATABASE_URL is sqlite:///./data/connectors.db
    database_url: SecretStr | None = None  # secret: a postgresql:// URL may hold a password
    database_pool_size: int = Field(5, ge=1, le=100)
    connections_encryption_key: SecretStr | None = None  # Fernet key; python -m connections generate-key
    connections_encryption_key_previous: SecretStr | None = None  # still decrypts, during a rotation
    connections_cache_ttl_seconds: float = Field(5.0, ge=0, description="Replicas see another's change this late.")
    connections_cache_max_entries: int = Field(1000, ge=1)

    # Events to subscribers (docs/events.md): Standard Webhooks deliveries, queued in Redis (REDIS_URL) or memory.
    # Seconds before each attempt after a failure (the Standard Webhooks schedule, ~27 h); then a dead letter.
    events_retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [0, 5, 300, 1800, 7200, 18000, 36000, 36000], min_length=1, max_length=50
    )
    events_retry_jitter: float = Field(0.2, ge=0, le=1, description="Each retry wait varies by up to this share.")
    events_delivery_timeout_seconds: float = Field(5.0, gt=0, le=60, description="One delivery attempt.")
    events_concurrency: int = Field(16, ge=1, le=1000, description="Deliveries in flight per process.")
    events_poll_seconds: float = Field(1.0, gt=0, description="An idle worker looks for due retries this often.")
    events_dedupe_ttl_seconds: int = Field(7 * 86400, ge=60, description="A vendor event id is remembered this long.")
    events_retention_seconds: int = Field(14 * 86400, ge=3600, description="A queued event's body is kept this long.")
    events_claim_idle_seconds: float = Field(60.0, gt=0, description="Then another replica claims a crashed one's intake.")
    events_shutdown_seconds: float = Field(5.0, gt=0, description="Deliveries in flight may finish this long at shutdown.")
    events_worker: bool = Field(True, description="Run the delivery worker in this process.")

    # Inbound vendor webhooks and the Salesforce poller (docs/events.md#inbound-vendor-webhooks)
    webhooks_tolerance_seconds: float = Field(300.0, ge=1, le=3600, description="A signed timestamp may be this far off.")
    salesforce_poll_seconds: float = Field(0.0, ge=0, description="Poll Cases changed since the last poll this often (0: off).")
    salesforce_poll_connections: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["default"], description="Comma-separated connection ids to poll (default: the environment's)."
    )

    # Human handoff
    handoff_fallback_crm: str = Field("zendesk", description="CRM that gets a ticket when no live agent can take a call.")
    handoff_livechat_share: float = Field(
        0.6, gt=0, lt=1, description="Share of the request deadline LiveChat may use; the rest is kept for the fallback."
    )

    @field_validator("connectors_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        """Accept a comma-separated list, as an operator writes it in an environment variable."""
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        return value

    @field_validator("connectors_api_keys", "connectors_admin_keys", "salesforce_poll_connections", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        """Accept a comma-separated list; the values stay secret (never in a repr or a log)."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("default_phone_region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        """A region phonenumbers does not know would make every national number unparseable."""
        import phonenumbers

        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r}; use a two-letter code such as US, GB or AE")
        return region

    @model_validator(mode="after")
    def _check_retry_budget(self) -> ServiceSettings:
        """Backoff bounds must be ordered, or tenacity's wait would be meaningless."""
        if self.retry_backoff_max_seconds < self.retry_backoff_initial_seconds:
            raise ValueError("RETRY_BACKOFF_MAX_SECONDS must be >= RETRY_BACKOFF_INITIAL_SECONDS")
        return self

    def vendor_defaults(self, vendor: str, fields: set[str] | frozenset[str]) -> dict[str, Any]:
        """The environment's values for one vendor's config fields, e.g. ZENDESK_EMAIL for zendesk's `email`."""
        values: dict[str, Any] = {}
        for name in fields:
            value = getattr(self, f"{vendor}_{name}", None)
            if value is not None:
                values[name] = value
        return values


def _vendor_field(config_model: type[BaseModel], name: str) -> tuple[Any, Any]:
    """A settings field for one config field: same type and constraints, optional, checked by the model's validators.

    The config model's own default stays the default, so `settings.hubspot_api_version` reads as before.
    """
    info = config_model.model_fields[name]
    annotation: Any = info.annotation

    def check(value: Any) -> Any:
        """The config model's field validators (e.g. a chat URL template), run at start-up, not on first use."""
        if value is None:
            return value
        try:
            config_model.__pydantic_validator__.validate_assignment(config_model.model_construct(), name, value)
        except ValidationError as exc:
            problems = [e for e in exc.errors() if e["loc"][:1] == (name,)]
            if problems:
                raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in problems)) from None
        env_check = config_model.env_checks.get(name)  # type: ignore[attr-defined]
        return env_check(value) if env_check else value

    default = None if info.is_required() else info.get_default(call_default_factory=True)
    field_type = Annotated[annotation | None, *info.metadata, AfterValidator(check)]  # type: ignore[valid-type]
    return field_type, Field(default, description=info.description)


def vendor_fields(connectors: Iterable[Any]) -> dict[str, tuple[Any, Any]]:
    """`{vendor}_{field}` for every field of every registered connector's config model: one source of truth."""
    return {
        f"{cls.vendor}_{name}": _vendor_field(cls.config_model, name)
        for cls in connectors
        for name in cls.config_model.model_fields
    }


# The registry imports the connectors, whose modules need only ServiceSettings' module to be loaded.
from registry import all_connectors  # noqa: E402

Settings = create_model(
    "Settings",
    __base__=ServiceSettings,
    __doc__="Every environment variable the service reads: its own, and each vendor's `{VENDOR}_{FIELD}`.",
    **vendor_fields(all_connectors()),
)


@lru_cache
def get_settings() -> ServiceSettings:
    """The process-wide settings, read once."""
    return Settings()
