"""Request and answer bodies of /crm/customer/context, /crm/ticket/search and /crm/ticket/batch."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from api_models.values import Tag
from models import CRMRequest, Customer, CustomerSearchRequest, Ticket, TicketCreateRequest, TicketStatus

Part = Literal["tickets", "deals", "handoffs"]


class CustomerContextRequest(CRMRequest):
    """POST /crm/customer/context: the caller by phone (any spelling), email or id, and what is open for them."""

    phone: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=254)
    customer_id: str | None = Field(None, min_length=1, max_length=100)
    include: list[Part] = Field(default_factory=lambda: ["tickets", "deals", "handoffs"], max_length=3)
    ticket_limit: int = Field(5, ge=1, le=50)
    deadline_ms: int | None = Field(None, ge=50, le=60_000, description="Capped by REQUEST_DEADLINE_SECONDS.")

    _check_email = field_validator("email")(CustomerSearchRequest._check_email.__func__)  # type: ignore[attr-defined]

    @model_validator(mode="after")
    def _needs_a_key(self) -> CustomerContextRequest:
        """Exactly one way to find the caller."""
        if sum(v is not None for v in (self.phone, self.email, self.customer_id)) != 1:
            raise ValueError("give one of phone, email or customer_id")
        return self


class CustomerContext(BaseModel):
    """Answer of /crm/customer/context; a part that failed or ran out of time is named in `partial` with its code."""

    customer: Customer
    tickets: list[Ticket] = Field(default_factory=list, description="Open ones first, then the most recent.")
    deals: list[dict[str, Any]] | None = None
    handoffs: list[dict[str, Any]] | None = None
    partial: dict[str, str] = Field(default_factory=dict, description="part -> contract error code, e.g. crm_timeout")


class TicketSearchRequest(CRMRequest):
    """POST /crm/ticket/search; `cursor` is the previous answer's `next_cursor` (same body otherwise)."""

    customer_id: str | None = Field(None, min_length=1, max_length=100)
    status: list[TicketStatus] = Field(default_factory=list, max_length=5)
    updated_since: datetime | None = None
    text: str | None = Field(None, min_length=1, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=10)
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=4096)

    @field_validator("status", mode="before")
    @classmethod
    def _one_or_several(cls, value: Any) -> Any:
        """`"open"` or `["open", "pending"]`."""
        return [value] if isinstance(value, str) else value

    def since(self) -> str | None:
        """updated_since as ISO 8601 UTC to the second, ending in Z (naive means UTC)."""
        if self.updated_since is None:
            return None
        moment = self.updated_since if self.updated_since.tzinfo else self.updated_since.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class TicketList(BaseModel):
    """Answer of /crm/ticket/search: `next_cursor` is null on the last page."""

    tickets: list[Ticket]
    next_cursor: str | None = None


class TicketBatchItem(TicketCreateRequest):
    """One ticket of a batch: the create's fields, and its own optional idempotency key (no crm_type or config)."""

    idempotency_key: str | None = Field(None, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")

    @model_validator(mode="after")
    def _one_source(self) -> TicketBatchItem:  # overrides CRMRequest's: the batch names the CRM once
        if self.crm_type is not None or self.config is not None or self.connection_id is not None:
            raise ValueError("a batch item names no crm_type, config or connection_id: the batch does")
        return self


class TicketBatchRequest(CRMRequest):
    """POST /crm/ticket/batch: up to 100 tickets in one CRM."""

    tickets: list[TicketBatchItem] = Field(min_length=1, max_length=100)


class TicketBatchResult(BaseModel):
    """One item's outcome: its ticket (status 201) or its contract error (the status it would have had alone)."""

    index: int
    status: int
    ticket: Ticket | None = None
    replayed: bool = False
    error: dict[str, Any] | None = None


class TicketBatchResponse(BaseModel):
    """Answer of /crm/ticket/batch: always 200 once the batch was read; each item says how it went."""

    results: list[TicketBatchResult]
    created: int
    failed: int
