"""The unified data models every connector returns, and the request bodies of the API."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

# Input limits: every one a 422, so no oversized value reaches a vendor or a slow code path.
MAX_TRANSCRIPT_TURNS = 500
MAX_METADATA_KEYS = 100
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class TicketStatus(str, Enum):
    """Unified ticket lifecycle; each connector maps its vendor's states onto these through a table."""

    new = "new"
    open = "open"
    pending = "pending"
    solved = "solved"
    closed = "closed"


class TicketPriority(str, Enum):
    """Unified priority; vendors call medium 'normal' (Zendesk) or use numbers (Freshdesk)."""

    low = "low"
    medium = "medium"
    high = "high"
    urgent = "urgent"


def iso_utc(value: Any) -> str | None:
    """Render a vendor timestamp (ISO string with any offset, or epoch ms) as ISO 8601 UTC ending in Z."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        # Salesforce writes offsets without a colon (+0000); fromisoformat wants one before 3.11's relaxations.
        if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
            text = f"{text[:-2]}:{text[-2:]}"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return str(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds") + "Z"


class Customer(BaseModel):
    """A person in a CRM, as one shape whatever the vendor."""

    id: str = Field(description="The CRM's own customer/contact id.")
    name: str
    email: str | None = None
    phone: str | None = Field(None, description="E.164 where the stored number could be parsed, else as stored.")
    tier: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "1001",
                "name": "Ahmed Al-Mansoori",
                "email": "ahmed@example.ae",
                "phone": "+971501234567",
                "tier": "Enterprise",
                "metadata": {"organization_name": "Al-Mansoori Trading", "vendor_role": "end-user"},
            }
        }
    )


class Ticket(BaseModel):
    """A ticket or case; the vendor's own status, priority and ids stay in metadata."""

    id: str
    subject: str
    description: str
    status: TicketStatus
    priority: TicketPriority
    customer_id: str | None = None
    created_at: str | None = Field(None, description="ISO 8601 UTC, ending in Z.")
    updated_at: str | None = Field(None, description="ISO 8601 UTC, ending in Z.")
    metadata: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "12345",
                "subject": "Product not working",
                "description": "Customer reports issue with the device after the latest update.",
                "status": "open",
                "priority": "high",
                "customer_id": "1001",
                "created_at": "2025-11-18T10:30:00Z",
                "updated_at": "2025-11-18T11:45:00Z",
                "metadata": {"tags": ["technical", "urgent"], "vendor_status": "open", "vendor_priority": "high"},
            }
        }
    )


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


# --- Request bodies -------------------------------------------------------------------------------

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

    crm_type: str | None = Field(None, description="salesforce, zendesk, hubspot or freshdesk.", max_length=50)
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


class CustomerList(BaseModel):
    """Answer of /crm/customer/search."""

    customers: list[Customer]


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


class ErrorDetail(BaseModel):
    """The body of every non-2xx answer."""

    code: str
    message: str
    crm_type: str | None = None
    retryable: bool
    retry_after_seconds: float | None = None
    upstream_status: int | None = None
    request_id: str
    details: Any = None


class ErrorResponse(BaseModel):
    """`{"error": {...}}`."""

    error: ErrorDetail


# --- Human handoff -----------------------------------------------------------------------------------


class HandoffStatus(str, Enum):
    """Where a handoff stands: with an agent, waiting in the queue, turned into a ticket, or over."""

    assigned = "assigned"
    queued = "queued"
    fallback_ticket = "fallback_ticket"
    closed = "closed"


# The design's handoff example: the model's own example and the OpenAPI tables share it.
_HANDOFF_CONTEXT = {
    "call_id": "call_abc123",
    "customer_name": "Ahmed Al-Mansoori",
    "customer_phone": "+971501234567",
    "customer_email": "ahmed@example.ae",
    "transcript": [
        {"role": "user", "text": "I need help with my order"},
        {"role": "bot", "text": "I'd be happy to help. What's your order number?"},
        {"role": "user", "text": "ORD12345"},
    ],
    "reason": "customer_request",
    "urgency": "medium",
    "metadata": {"order_id": "ORD12345", "language": "en"},
}


class HandoffRequest(BaseModel):
    """POST /handoff/create."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "chat_type": "livechat",
                "context": _HANDOFF_CONTEXT,
                "config": {"license_id": "your_license_id", "api_key": "your_api_key"},
            }
        },
    )

    chat_type: str | None = Field(None, description="livechat.", max_length=50)
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

    chat_type: str | None = Field(None, description="livechat.", max_length=50)
    handoff_id: str = Field(min_length=1, max_length=200, description="A chat id, or ticket:<crm>:<id> after a fallback.")
    config: dict[str, Any] | None = Field(None, description=CONFIG_DESCRIPTION, max_length=50)
    connection_id: str | None = CONNECTION_ID

    @model_validator(mode="after")
    def _one_source(self) -> HandoffStatusRequest:
        one_source(self, "chat_type")
        return self


class HandoffFallback(BaseModel):
    """The ticket made when no live agent could take the call, and why."""

    crm_type: str
    ticket_id: str
    reason: str | None = Field(None, description="Why LiveChat could not take it, e.g. group_offline or crm_timeout.")
    detail: str | None = None
    ticket_status: str | None = None
    livechat_chat_id: str | None = Field(None, description="A chat that was started before the transfer failed.")
    livechat_chat_closed: bool | None = None


class HandoffResponse(BaseModel):
    """Answer of /handoff/create and /handoff/status."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "handoff_id": "PJ0MRSHTDG",
                "chat_url": "https://my.livechatinc.com/chats/PJ0MRSHTDG",
                "agent_name": "Sara Ahmed",
                "agent_id": "sara@example.com",
                "estimated_wait_seconds": 0,
                "status": "assigned",
            }
        }
    )

    handoff_id: str
    chat_url: str | None = None
    agent_name: str | None = None
    agent_id: str | None = None
    estimated_wait_seconds: int | None = None
    status: HandoffStatus
    queue_position: int | None = Field(None, description="Only while queued.")
    fallback: HandoffFallback | None = Field(None, description="Only when the fallback ticket was made.")

    def body(self) -> dict[str, Any]:
        """JSON body: queue_position and fallback only when they apply, the design's fields always."""
        data = self.model_dump(mode="json")
        for extra in ("queue_position", "fallback"):
            if data[extra] is None:
                del data[extra]
        if data.get("fallback"):
            data["fallback"] = {k: v for k, v in data["fallback"].items() if v is not None}
        return data


# --- OpenAPI examples: one per vendor per endpoint, with the sandbox's seed ids (sandbox/*.py), so each works -------

# Each CRM emulator's seed (the same caller, Ahmed, and one open ticket, under the vendor's own ids) is the
# connector class's `sandbox_seed`; deps.request_examples() fills these tables from the registry.
SeedExample = Any  # a function of one CRM's seed ids -> the request body's vendor part


def _per_vendor(body: SeedExample) -> SeedExample:
    """Marks a table entry as one example per registered CRM (expanded by `expand_examples`)."""
    return ("per_vendor", body)


def expand_examples(seeds: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """REQUEST_EXAMPLES with every per-CRM entry expanded over `seeds` ({crm_type: seed ids})."""
    def expand(value: Any) -> dict[str, Any]:
        _, body = value
        examples = {vendor: body(seed) for vendor, seed in seeds.items()}  # None: not for this vendor
        return {
            vendor: {"summary": f"{vendor} (sandbox seed)", "value": {"crm_type": vendor, **example}}
            for vendor, example in examples.items()
            if example is not None
        }

    tables: dict[str, dict[str, dict[str, Any]]] = {}
    for path, examples in REQUEST_EXAMPLES.items():
        if isinstance(examples, tuple):
            tables[path] = expand(examples)
        else:
            tables[path] = {}
            for name, example in examples.items():
                tables[path].update(expand(example) if isinstance(example, tuple) else {name: example})
    return tables


REQUEST_EXAMPLES: dict[str, Any] = {
    "/crm/customer": _per_vendor(lambda seed: {"customer_id": seed["customer_id"]}),
    "/crm/customer/search": {
        "per vendor": _per_vendor(lambda seed: {"phone": seed["phone"]}),
        "by email": {"summary": "zendesk, by email", "value": {"crm_type": "zendesk", "email": "ahmed@example.ae"}},
    },
    "/crm/ticket": _per_vendor(lambda seed: {"ticket_id": seed["ticket_id"]}),
    "/crm/ticket/create": _per_vendor(
        lambda seed: {
            "subject": "Callback request",
            "description": "Caller asked for a callback about order ORD12345.",
            "customer_id": seed["customer_id"],
            "priority": "high",
            "tags": ["voice_ai"],
        }
    ),
    "/crm/ticket/update": _per_vendor(
        lambda seed: {
            "ticket_id": seed["ticket_id"],
            "status": "pending",
            "comment": {"body": "Customer called back; waiting on the courier.", "public": False},
        }
    ),
    "/crm/customer/context": _per_vendor(lambda seed: {"phone": seed["phone"], "include": ["tickets", "deals", "handoffs"]}),
    "/crm/ticket/search": _per_vendor(
        lambda seed: {"customer_id": seed["customer_id"], "status": ["open", "new"], "limit": 5}
        if seed["lists_tickets"]
        else None
    ),
    "/crm/ticket/batch": _per_vendor(
        lambda seed: {
            "tickets": [
                {"subject": "Callback request", "description": "Caller asked for a callback.", "customer_id": seed["customer_id"],
                 "idempotency_key": "call_abc123-1"},
                {"subject": "Refund question", "description": "Caller asked about a refund.", "customer_id": seed["customer_id"],
                 "idempotency_key": "call_abc123-2"},
            ]
        }
    ),
    "/handoff/create": {
        "livechat": {"summary": "livechat (the sandbox's agent Sara takes it)", "value": {"chat_type": "livechat", "context": _HANDOFF_CONTEXT}},
        "fallback to hubspot": {
            "summary": "livechat, with a HubSpot ticket when no agent can take it",
            "value": {"chat_type": "livechat", "context": {**_HANDOFF_CONTEXT, "call_id": "call_def456"}, "config": {"fallback_crm": "hubspot"}},
        },
    },
    "/handoff/status": {
        "fallback ticket": {
            "summary": "a fallback ticket (the Zendesk seed ticket)",
            "value": {"chat_type": "livechat", "handoff_id": "ticket:zendesk:12345"},
        },
        "livechat chat": {
            "summary": "the first chat a fresh sandbox opens (run /handoff/create first)",
            "value": {"chat_type": "livechat", "handoff_id": "C000000001"},
        },
    },
}
