"""The admin API's bodies: a connection as created, patched and shown (never with a secret in it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Status = Literal["active", "needs_reauth"]  # needs_reauth: an OAuth grant was revoked (set by the OAuth part)
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class ConnectionCreate(BaseModel):
    """POST /connections: one of crm_type or chat_type, the secrets, and the connector's non-secret settings."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "crm_type": "zendesk",
                "display_name": "Acme support desk",
                "credentials": {"subdomain": "acme", "email": "agent@acme.com", "api_token": "your_token"},
                "settings": {"tier_field": "plan"},
            }
        },
    )

    id: str | None = Field(None, pattern=ID_PATTERN, description="Your own id for it; one is made when left out.")
    crm_type: str | None = Field(None, max_length=50)
    chat_type: str | None = Field(None, max_length=50)
    display_name: str = Field(min_length=1, max_length=200)
    credentials: dict[str, Any] = Field(max_length=50, description="Encrypted at rest; never shown again.")
    settings: dict[str, Any] = Field(
        default_factory=dict, max_length=50, description="The connector's other config keys (tier field, maps, ...)."
    )
    status: Status = "active"

    @model_validator(mode="after")
    def _one_type(self) -> ConnectionCreate:
        """A connection is either a CRM's or a chat's."""
        if (self.crm_type is None) == (self.chat_type is None):
            raise ValueError("give exactly one of crm_type or chat_type")
        return self


class ConnectionUpdate(BaseModel):
    """PATCH /connections/{id}: credentials and settings merge key by key; a null value removes the key."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(None, min_length=1, max_length=200)
    credentials: dict[str, Any] | None = Field(None, max_length=50)
    settings: dict[str, Any] | None = Field(None, max_length=50)
    status: Status | None = None


class ConnectionView(BaseModel):
    """A connection as the admin API shows it: which credentials are set, each with a fingerprint."""

    id: str
    crm_type: str | None = None
    chat_type: str | None = None
    display_name: str
    status: Status
    credentials: dict[str, str] = Field(
        description="Each credential field set, with the first 8 hex of an HMAC of its value (compare, not read)."
    )
    settings: dict[str, Any]
    created_at: str
    updated_at: str


class ConnectionList(BaseModel):
    """GET /connections: a page in id order; pass `next_after` as `after` for the next one."""

    connections: list[ConnectionView]
    next_after: str | None = None


class ConnectionCheck(BaseModel):
    """POST /connections/{id}/test: the vendor's cheapest authenticated call with the stored credentials."""

    id: str
    vendor: str
    ok: bool
    latency_ms: float
    code: str | None = None
    message: str | None = None
