"""BaseCRMConnector: the five operations every CRM connector implements, over the shared upstream layer."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from connectors.http import UpstreamConnector
from errors import InvalidRequest, MalformedAnswer
from models import Customer, Ticket, TicketCreateRequest, TicketPriority, TicketStatus, TicketUpdateRequest
from phone import PhoneQuery, to_e164

# ASCII digits only: `\d` also matches Arabic-Indic and other Unicode digits, which no vendor id holds.
NUMERIC_ID = re.compile(r"[0-9]{1,20}", re.ASCII)


def require(mapping: Any, key: str, vendor: str, kind: type | tuple[type, ...] = object) -> Any:
    """A field the vendor always sends (of the `kind` it documents); else the answer is not what the API documents."""
    if not isinstance(mapping, Mapping) or key not in mapping or mapping[key] is None:
        raise MalformedAnswer(f"the {vendor} answer has no {key!r}", crm_type=vendor)
    if not isinstance(mapping[key], kind) or (kind is int and isinstance(mapping[key], bool)):
        raise MalformedAnswer(f"the {vendor} answer's {key!r} is not of the documented type", crm_type=vendor)
    return mapping[key]


class BaseCRMConnector(UpstreamConnector, ABC):
    """One CRM: customer lookup and search, and ticket get, create and update, in the unified models."""

    # Ids go into URL paths and queries, so each connector states their exact form (400 before any call).
    # True where the vendor itself dedupes creates by Idempotency-Key, so a repeat with the same key is safe.
    vendor_dedupes_creates: ClassVar[bool] = False
    customer_id_pattern: ClassVar[re.Pattern[str]] = NUMERIC_ID
    ticket_id_pattern: ClassVar[re.Pattern[str]] = NUMERIC_ID

    def _check_id(self, value: str, what: str, pattern: re.Pattern[str]) -> str:
        """Validate an id before it enters a path, so it cannot address anything else."""
        value = value.strip()
        if not pattern.fullmatch(value):
            raise InvalidRequest(f"{what} {value!r} is not a valid {self.display_name} id", crm_type=self.vendor)
        return value

    def customer_id(self, value: str) -> str:
        """A validated customer id."""
        return self._check_id(value, "customer_id", self.customer_id_pattern)

    def ticket_id(self, value: str) -> str:
        """A validated ticket id."""
        return self._check_id(value, "ticket_id", self.ticket_id_pattern)

    def e164(self, stored: str | None) -> str | None:
        """A vendor-stored phone number in E.164 where possible."""
        return to_e164(stored, self.ctx.settings.default_phone_region)

    def matches_phone(self, stored: str | None, phone: PhoneQuery) -> bool:
        """Whether a stored number is the caller's, whatever spelling the CRM kept."""
        return self.e164(stored) == phone.e164

    @staticmethod
    def ticket_changes(
        update: TicketUpdateRequest,
        *,
        fields: Mapping[str, str],
        status: Mapping[TicketStatus, Any],
        priority: Mapping[TicketPriority, Any],
    ) -> dict[str, Any]:
        """What an update sets, in the vendor's field names (`fields`) and codes (tables); fields it lacks are left out."""
        values = {
            "status": status[update.status] if update.status else None,
            "priority": priority[update.priority] if update.priority else None,
            "subject": update.subject,
            "tags": update.tags,
        }
        return {fields[name]: value for name, value in values.items() if value is not None and name in fields}

    @abstractmethod
    async def get_customer(self, customer_id: str) -> Customer:
        """The customer with this CRM id."""

    @abstractmethod
    async def find_customers(self, *, phone: PhoneQuery | None, email: str | None, limit: int) -> list[Customer]:
        """Customers whose phone (any stored spelling) or email matches."""

    @abstractmethod
    async def get_ticket(self, ticket_id: str) -> Ticket:
        """The ticket or case with this id."""

    @abstractmethod
    async def create_ticket(self, ticket: TicketCreateRequest, *, idempotency_key: str) -> Ticket:
        """Create a ticket once; vendors that take an idempotency key get this one."""

    @abstractmethod
    async def update_ticket(self, update: TicketUpdateRequest) -> Ticket:
        """Change status, priority, subject or tags, and add a public comment or internal note."""
