"""Service configuration: one Settings object read from the environment, failing fast on bad values."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

import re

from livechat_links import DEFAULT_TEMPLATE, check_url_template
from models import TicketPriority, TicketStatus

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
HUBSPOT_API_VERSION_PATTERN = r"^(v3|\d{4}-(0[1-9]|1[0-2]))$"  # legacy `v3`, or a date version such as 2026-09
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def only_label(value: str | None, suffix: str, example: str, *, suffix_allowed: bool) -> str | None:
    """A vendor tenant name that must be one DNS label: say which part to give when a whole host was pasted."""
    if value is None:
        return None
    label = value.strip().lower()
    label = label.removesuffix(suffix) if suffix_allowed else label
    if _DNS_LABEL.fullmatch(label):
        return label
    first = label.split("://", 1)[-1].split(".", 1)[0]
    hint = f" ({first!r} for {first}{suffix})" if _DNS_LABEL.fullmatch(first) else f" (e.g. {example!r})"
    raise ValueError(f"give only the subdomain, one DNS label of letters, digits and hyphens{hint}")


class Settings(BaseSettings):
    """Every environment variable the service reads; vendor credentials are prefixed by vendor name."""

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
        600, ge=1, description="Calls a minute per account for a vendor that publishes no limit (LiveChat)."
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

    # Zendesk
    zendesk_subdomain: str | None = None
    zendesk_email: str | None = None
    zendesk_api_token: SecretStr | None = None
    zendesk_oauth_token: SecretStr | None = None
    zendesk_base_url: str | None = None
    zendesk_tier_field: str = "tier"

    # Salesforce
    salesforce_client_id: str | None = None
    salesforce_client_secret: SecretStr | None = None
    salesforce_instance_url: str | None = None
    salesforce_access_token: SecretStr | None = None
    salesforce_refresh_token: SecretStr | None = None
    salesforce_base_url: str | None = None
    salesforce_api_version: str = "v62.0"
    # e.g. Account.Tier__c; none by default, since a field the org lacks would fail every Contact query
    salesforce_tier_field: str | None = None
    # Picklists are per org: JSON tables merged over the connector's defaults, read and write direction.
    salesforce_status_map: dict[str, TicketStatus] = Field(default_factory=dict)  # {"In Progress": "open"}
    salesforce_status_write_map: dict[TicketStatus, str] = Field(default_factory=dict)  # {"pending": "Waiting"}
    salesforce_priority_map: dict[str, TicketPriority] = Field(default_factory=dict)  # {"Critical": "urgent"}
    salesforce_priority_write_map: dict[TicketPriority, str] = Field(default_factory=dict)  # {"urgent": "Critical"}

    # HubSpot (HUBSPOT_API_KEY is a private-app or OAuth token: HubSpot retired API keys in 2022)
    hubspot_api_key: SecretStr | None = None
    hubspot_base_url: str | None = None
    hubspot_pipeline: str | None = None  # ticket pipeline id; HubSpot's default pipeline is "0"
    hubspot_stage_map: dict[TicketStatus, str] | None = None  # JSON {"solved": "4", ...}: our status -> stage id
    hubspot_tier_property: str | None = None  # contact property that holds the tier (HubSpot has none built in)
    hubspot_api_version: str = Field("2026-09", pattern=HUBSPOT_API_VERSION_PATTERN)  # v3 paths end September 2027

    # Freshdesk
    freshdesk_domain: str | None = None
    freshdesk_api_key: SecretStr | None = None
    freshdesk_base_url: str | None = None

    # LiveChat
    livechat_license_id: str | None = None
    livechat_api_key: SecretStr | None = None
    livechat_base_url: str | None = None
    # LiveChat's personal access token is sent as Basic base64(account_id:token); without an account id the
    # key is an OAuth token sent as Bearer. license_id is the organization id of the customer-side API.
    livechat_account_id: str | None = None
    livechat_region: str | None = None
    livechat_group_id: int = Field(0, ge=0)
    livechat_agent_id: str | None = None
    livechat_chat_url_template: str = DEFAULT_TEMPLATE
    # With an OAuth agent token (no account id), the app's client id turns on the agent token grant, so the
    # caller becomes a LiveChat customer. Accounts host default: https://accounts.livechat.com (or the sandbox).
    livechat_client_id: str | None = None
    livechat_accounts_url: str | None = None

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

    @field_validator("livechat_chat_url_template")
    @classmethod
    def _check_chat_url_template(cls, value: str) -> str:
        """A template with a format spec would fail (or balloon) only after a chat was started: fail at start-up."""
        return check_url_template(value)

    @field_validator("connectors_api_keys", "connectors_admin_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        """Accept a comma-separated list; the values stay secret (never in a repr or a log)."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("zendesk_subdomain")
    @classmethod
    def _check_zendesk_subdomain(cls, value: str | None) -> str | None:
        """`acme` of acme.zendesk.com (the connector takes one label): a host would otherwise fail on the first call."""
        return only_label(value, ".zendesk.com", "acme", suffix_allowed=False)

    @field_validator("freshdesk_domain")
    @classmethod
    def _check_freshdesk_domain(cls, value: str | None) -> str | None:
        """`acme` or acme.freshdesk.com (the connector accepts both); anything else fails at start-up."""
        only_label(value, ".freshdesk.com", "acme", suffix_allowed=True)
        return value.strip() if value else value

    @field_validator("salesforce_instance_url")
    @classmethod
    def _check_instance_url(cls, value: str | None) -> str | None:
        """The org's https URL, e.g. https://acme.my.salesforce.com (the connector checks the domain)."""
        if value is not None and not value.strip().startswith("https://"):
            raise ValueError("give the org's https URL, e.g. https://acme.my.salesforce.com")
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
    def _check_retry_budget(self) -> Settings:
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


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
