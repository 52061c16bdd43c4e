"""Service configuration: one Settings object read from the environment, failing fast on bad values."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models import TicketPriority, TicketStatus

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


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

    # Safety and behaviour
    max_request_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="Larger bodies are refused with 413.")
    connectors_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    default_phone_region: str = "US"
    idempotency_ttl_seconds: int = Field(86400, ge=1)
    idempotency_max_entries: int = Field(100_000, ge=1)

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
    livechat_chat_url_template: str = "https://my.livechatinc.com/chats/{chat_id}"

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
