"""The answers: the unified Customer and Ticket every connector returns, the handoff's state, the error body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api_models.values import HandoffStatus, TicketPriority, TicketStatus


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

class CustomerList(BaseModel):
    """Answer of /crm/customer/search."""

    customers: list[Customer]


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
