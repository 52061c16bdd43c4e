"""The request bodies of the API: the CRM routes' and the handoff's, with their limits and cross-field checks."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api_models.examples import HANDOFF_CONTEXT
from api_models.values import MAX_METADATA_KEYS, MAX_TRANSCRIPT_TURNS, Tag, TicketPriority, TicketStatus


class HandoffContext(BaseModel):
    """What the bot learned during the call, carried to the human agent."""

    call_id: str = Field(min_length=1, max_length=200)
    customer_name: str = Field(min_length=1, max_length=200)
    customer_email: str | None = Field(None, max_length=254)
    customer_phone: str | None = Field(None, max_length=40)
    transcript: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_TRANSCRIPT_TURNS)
    reason: str = Field(min_length=1, max_length=200)
    urgency: str = Field("medium", max_length=20)
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=MAX_METADATA_KEYS)


CONFIG_DESCRIPTION = (
    "Vendor credentials and options, merged over the service's environment for that vendor; "
    "may be left out when the service is configured."
)


CONNECTION_ID = Field(
    None,
    pattern=r"^[A-Za-z0-9_-]{1,64}$",
    description="A stored connection (POST /connections) instead of `config`; its type may then be left out.",
)


def one_source(body: Any, type_field: str) -> None:
    """`config` or `connection_id`, not both; the vendor type is needed unless a connection names it."""
    if body.connection_id is not None and body.config is not None:
        raise ValueError("give config or connection_id, not both")
    if body.connection_id is None and getattr(body, type_field) is None:
        raise ValueError(f"give {type_field} (or a connection_id)")


class CRMRequest(BaseModel):
    """Fields every CRM request carries."""

    model_config = ConfigDict(extra="forbid")

    crm_type: str | None = Field(None, description="A registered CRM, e.g. zendesk (unsupported_crm lists them).", max_length=50)
    config: dict[str, Any] | None = Field(None, description=CONFIG_DESCRIPTION, max_length=50)
    connection_id: str | None = CONNECTION_ID

    @model_validator(mode="after")
    def _one_source(self) -> CRMRequest:
        one_source(self, "crm_type")
        return self


class CustomerRequest(CRMRequest):
    """POST /crm/customer."""

    customer_id: str = Field(min_length=1, max_length=100)

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "crm_type": "zendesk",
                "customer_id": "1001",
                "config": {"subdomain": "your-company", "email": "admin@yourcompany.com", "api_token": "your_token"},
            }
        }
    )


class CustomerSearchRequest(CRMRequest):
    """POST /crm/customer/search: caller-ID lookup by phone, or lookup by email."""

    phone: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=254)
    limit: int = Field(10, ge=1, le=100)

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "crm_type": "zendesk",
                "phone": "+971 50 123 4567",
                "config": {"subdomain": "your-company", "email": "admin@yourcompany.com", "api_token": "your_token"},
            }
        }
    )

    @model_validator(mode="after")
    def _needs_a_key(self) -> CustomerSearchRequest:
        """A search without phone or email would list the whole CRM."""
        if not self.phone and not self.email:
            raise ValueError("give phone or email")
        return self

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str | None) -> str | None:
        """Reject what cannot be an address before it reaches a vendor query."""
        if value is None:
            return value
        value = value.strip()
        local, _, domain = value.partition("@")
        if not local or "." not in domain or any(c.isspace() for c in value):
            raise ValueError("not an email address")
        return value


class TicketRequest(CRMRequest):
    """POST /crm/ticket."""

    ticket_id: str = Field(min_length=1, max_length=100)

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "crm_type": "zendesk",
                "ticket_id": "12345",
                "config": {"subdomain": "your-company", "email": "admin@yourcompany.com", "api_token": "your_token"},
            }
        }
    )


class TicketCreateRequest(CRMRequest):
    """POST /crm/ticket/create."""

    subject: str = Field(min_length=1, max_length=500)
    description: str = Field(min_length=1, max_length=65_000)
    customer_id: str | None = Field(None, max_length=100)
    customer_email: str | None = Field(None, max_length=254)
    customer_phone: str | None = Field(None, max_length=40)
    customer_name: str | None = Field(None, max_length=200)
    priority: TicketPriority | None = None
    status: TicketStatus | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=MAX_METADATA_KEYS)

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "crm_type": "zendesk",
                "subject": "Callback requested",
                "description": "Caller asked for a callback about order ORD12345.",
                "customer_id": "1001",
                "priority": "high",
                "tags": ["voice", "callback"],
                "config": {"subdomain": "your-company", "email": "admin@yourcompany.com", "api_token": "your_token"},
            }
        }
    )


class TicketComment(BaseModel):
    """A comment on update; public false makes it an internal note."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=65_000)
    public: bool = True


class TicketUpdateRequest(CRMRequest):
    """POST /crm/ticket/update."""

    ticket_id: str = Field(min_length=1, max_length=100)
    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    subject: str | None = Field(None, min_length=1, max_length=500)
    tags: list[Tag] | None = Field(None, max_length=50)
    comment: TicketComment | None = None
    metadata: dict[str, Any] | None = Field(
        None, max_length=MAX_METADATA_KEYS, description="Metadata keys the connection's field_mapping maps to vendor fields."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "crm_type": "zendesk",
                "ticket_id": "12345",
                "status": "pending",
                "comment": {"body": "Caller verified identity; awaiting logs.", "public": False},
                "config": {"subdomain": "your-company", "email": "admin@yourcompany.com", "api_token": "your_token"},
            }
        }
    )

    @model_validator(mode="after")
    def _needs_a_change(self) -> TicketUpdateRequest:
        """An update that changes nothing is almost certainly a caller bug."""
        if all(v is None for v in (self.status, self.priority, self.subject, self.tags, self.comment, self.metadata)):
            raise ValueError("give at least one of status, priority, subject, tags, comment or metadata")
        return self

class HandoffRequest(BaseModel):
    """POST /handoff/create."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "chat_type": "livechat",
                "context": HANDOFF_CONTEXT,
                "config": {"license_id": "your_license_id", "api_key": "your_api_key"},
            }
        },
    )

    chat_type: str | None = Field(None, description="livechat or intercom.", max_length=50)
    context: HandoffContext
    config: dict[str, Any] | None = Field(None, description=CONFIG_DESCRIPTION, max_length=50)
    connection_id: str | None = CONNECTION_ID

    @model_validator(mode="after")
    def _one_source(self) -> HandoffRequest:
        one_source(self, "chat_type")
        return self


class HandoffStatusRequest(BaseModel):
    """POST /handoff/status."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"chat_type": "livechat", "handoff_id": "PJ0MRSHTDG"}},
    )

    chat_type: str | None = Field(None, description="livechat or intercom.", max_length=50)
    handoff_id: str = Field(min_length=1, max_length=200, description="A chat id, or ticket:<crm>:<id> after a fallback.")
    config: dict[str, Any] | None = Field(None, description=CONFIG_DESCRIPTION, max_length=50)
    connection_id: str | None = CONNECTION_ID

    @model_validator(mode="after")
    def _one_source(self) -> HandoffStatusRequest:
        one_source(self, "chat_type")
        return self

