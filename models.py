"""The API models (the design's model module): the unified answers, the request bodies and their values.

They live in api_models/ by kind (values, requests, answers, examples); this module re-exports the model names,
so `from models import Ticket` keeps working. Helpers (iso_utc, Tag, the limits, the examples) come from there.
"""

from __future__ import annotations

from api_models.answers import (
    Customer,
    CustomerList,
    ErrorDetail,
    ErrorResponse,
    HandoffFallback,
    HandoffResponse,
    Ticket,
)
from api_models.requests import (
    CRMRequest,
    CustomerRequest,
    CustomerSearchRequest,
    HandoffContext,
    HandoffRequest,
    HandoffStatusRequest,
    TicketComment,
    TicketCreateRequest,
    TicketRequest,
    TicketUpdateRequest,
)
from api_models.values import HandoffStatus, TicketPriority, TicketStatus

__all__ = [
    "CRMRequest",
    "Customer",
    "CustomerList",
    "CustomerRequest",
    "CustomerSearchRequest",
    "ErrorDetail",
    "ErrorResponse",
    "HandoffContext",
    "HandoffFallback",
    "HandoffRequest",
    "HandoffResponse",
    "HandoffStatus",
    "HandoffStatusRequest",
    "Ticket",
    "TicketComment",
    "TicketCreateRequest",
    "TicketPriority",
    "TicketRequest",
    "TicketStatus",
    "TicketUpdateRequest",
]
