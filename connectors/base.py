"""BaseCRMConnector: the five operations every CRM connector implements, over the shared upstream layer."""

from __future__ import annotations

import asyncio
import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from connectors.http import UpstreamConnector
from errors import CRMError, InvalidRequest, MalformedAnswer, NotSupported
from models import Customer, Ticket, TicketCreateRequest, TicketPriority, TicketStatus, TicketUpdateRequest
from phone import PhoneQuery, to_e164

# ASCII digits only: `\d` also matches Arabic-Indic and other Unicode digits, which no vendor id holds.
NUMERIC_ID = re.compile(r"[0-9]{1,20}", re.ASCII)
# A creation marker: one word (no separators, so every vendor's search takes it as one token or tag).
MARKER = re.compile(r"idem[0-9a-f]{24}")
MARKER_LINE = re.compile(r"\n*\[ref (idem[0-9a-f]{24})\]\s*$")  # how it ends a text field


def with_marker(text: str, marker: str | None) -> str:
    """A text field that ends with the marker line (unchanged without a marker)."""
    return f"{text}\n\n[ref {marker}]" if marker else text


def without_marker(text: str) -> str:
    """A text field as the caller wrote it: a trailing marker line dropped."""
    return MARKER_LINE.sub("", text)


def created_by_marker(
    records: Iterable[Any], marker: str, text_of: Callable[[Any], Any], id_of: Callable[[Any], str]
) -> str | None:
    """The id of the first search result whose text field (`text_of`) ends with this marker's line, else None.

    Vendor searches match the marker loosely (a token, a substring, the same subject), so each find_created
    keeps only the record a create actually wrote it into.
    """
    for record in records:
        found = MARKER_LINE.search(text_of(record))
        if found and found.group(1) == marker:
            return id_of(record)
    return None


NUMERIC_ID_FORM = "1 to 20 digits, e.g. 12345"  # what a caller is told a NUMERIC_ID looks like


def require(mapping: Any, key: str, vendor: str, kind: type | tuple[type, ...] = object) -> Any:
    """A field the vendor always sends (of the `kind` it documents); else the answer is not what the API documents."""
    if not isinstance(mapping, Mapping) or key not in mapping or mapping[key] is None:
        raise MalformedAnswer(f"the {vendor} answer has no {key!r}", crm_type=vendor)
    if not isinstance(mapping[key], kind) or (kind is int and isinstance(mapping[key], bool)):
        raise MalformedAnswer(f"the {vendor} answer's {key!r} is not of the documented type", crm_type=vendor)
    return mapping[key]


@dataclass(frozen=True)
class TicketQuery:
    """A ticket list or search (POST /crm/ticket/search, the context's tickets): every filter optional."""

    customer_id: str | None = None
    statuses: tuple[TicketStatus, ...] = ()
    updated_since: str | None = None  # ISO 8601 UTC, ending in Z
    text: str | None = None
    tags: tuple[str, ...] = ()
    limit: int = 10


@dataclass
class TicketPage:
    """One page of tickets, and the vendor's own paging state for the next one (None at the end)."""

    tickets: list[Ticket]
    next: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def vendor_statuses(table: Mapping[Any, TicketStatus], wanted: tuple[TicketStatus, ...]) -> list[Any]:
    """Every vendor status value that maps onto one of the wanted unified statuses (a read table, inverted)."""
    return [vendor for vendor, unified in table.items() if unified in wanted and vendor is not None]


class BaseCRMConnector(UpstreamConnector, ABC):
    """One CRM: customer lookup and search, and ticket get, create and update, in the unified models."""

    # Ids go into URL paths and queries, so each connector states their exact form (400 before any call).
    # True where the vendor itself dedupes creates by Idempotency-Key, so a repeat with the same key is safe.
    vendor_dedupes_creates: ClassVar[bool] = False
    # Each pattern has, beside it, the words that tell a caller what the vendor's ids look like.
    customer_id_pattern: ClassVar[re.Pattern[str]] = NUMERIC_ID
    customer_id_form: ClassVar[str] = NUMERIC_ID_FORM
    ticket_id_pattern: ClassVar[re.Pattern[str]] = NUMERIC_ID
    # The emulator's seed (the caller Ahmed and one open ticket, in the vendor's ids): the OpenAPI examples.
    sandbox_seed: ClassVar[Mapping[str, str]] = {}
    # How long after a create the vendor's marker search may still miss it (an eventually consistent index):
    # within it, not finding the marker proves nothing, so a repeat is refused rather than created again.
    marker_search_lag_seconds: ClassVar[float] = 0.0
    ticket_id_form: ClassVar[str] = NUMERIC_ID_FORM

    def _check_id(self, value: str, what: str, pattern: re.Pattern[str], form: str) -> str:
        """Validate an id before it enters a path, so it cannot address anything else; say what a valid one is."""
        value = value.strip()
        if not pattern.fullmatch(value):
            shown = repr(value) if len(value) <= 40 else repr(value[:40] + "…")
            raise InvalidRequest(
                f"{what} {shown} ({len(value)} characters) is not a valid {self.display_name} id: "
                f"{self.display_name} {what}s are {form}",
                crm_type=self.vendor,
            )
        return value

    def customer_id(self, value: str) -> str:
        """A validated customer id."""
        return self._check_id(value, "customer_id", self.customer_id_pattern, self.customer_id_form)

    def ticket_id(self, value: str) -> str:
        """A validated ticket id."""
        return self._check_id(value, "ticket_id", self.ticket_id_pattern, self.ticket_id_form)

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

    def creation_marker(self, key: str, *, bulk: bool = False) -> str | None:
        """The word a create writes into its record, so a lost answer can be found; None where the vendor dedupes
        (its single creates: a bulk create, such as Zendesk's create_many, documents no Idempotency-Key)."""
        if self.vendor_dedupes_creates and not bulk:
            return None
        return "idem" + hashlib.sha256(f"{self.tenant_fingerprint()}:{key}".encode()).hexdigest()[:24]

    async def find_created(self, marker: str, ticket: TicketCreateRequest) -> str | None:
        """The id of the ticket an earlier create wrote `marker` into, or None (the vendor has none)."""
        return None

    # The most tickets the vendor's bulk create takes in one call; 0: none, so a batch creates them one by one.
    bulk_create_max: ClassVar[int] = 0

    async def create_tickets(self, tickets: list[tuple[TicketCreateRequest, str | None]]) -> list[Ticket | CRMError]:
        """The vendor's bulk create (where bulk_create_max > 0): each (ticket, marker) made, or its own error, in order."""
        raise NotSupported(f"{self.display_name} has no bulk create here", crm_type=self.vendor)

    # True where the vendor's Customer carries its deals (metadata["deals"]): the context's `deals` part.
    has_deals: ClassVar[bool] = False

    async def list_tickets(self, query: TicketQuery, page: Mapping[str, Any] | None) -> TicketPage:
        """Tickets matching `query`, newest first, from the vendor's paging state `page` (None: the first page).

        The default: this vendor has no ticket listing here, so the context reports `tickets: not_supported`.
        """
        raise NotSupported(f"{self.display_name} ticket listing is not supported by this connector", crm_type=self.vendor)

    @abstractmethod
    async def get_customer(self, customer_id: str) -> Customer:
        """The customer with this CRM id."""

    # --- find_customers: a template over per-vendor hooks ----------------------------------------

    async def find_customers(self, *, phone: PhoneQuery | None, email: str | None, limit: int) -> list[Customer]:
        """Customers whose phone (any stored spelling) or email matches: both lookups at once, de-duplicated."""
        self._check_search(phone, email)  # refused before any call, the other lookup's too
        searches = []
        if phone:
            searches.append(self._by_phone(phone, limit))
        if email:
            searches.append(self._by_email(email, limit))
        records: dict[str, Any] = {}
        for found in await asyncio.gather(*searches):
            for record in found:
                records.setdefault(self._record_id(record), record)
        return await self._customers(list(records.values())[:limit])

    def _check_search(self, phone: PhoneQuery | None, email: str | None) -> None:
        """Refuse a search the vendor cannot run literally, before any call (none by default)."""

    async def _by_phone(self, phone: PhoneQuery, limit: int) -> list[Any]:
        """The vendor records of the caller with this number (exact callers only)."""
        raise NotImplementedError

    async def _by_email(self, email: str, limit: int) -> list[Any]:
        """The vendor records with this email (exact matches only)."""
        raise NotImplementedError

    def _record_id(self, record: Any) -> str:
        """A found record's id, the key duplicates share."""
        return str(require(record, "id", self.vendor))

    async def _customers(self, records: list[Any]) -> list[Customer]:
        """Found records as Customers (a vendor that needs more per record, e.g. its company, overrides this)."""
        return [self._customer(record) for record in records]

    def _customer(self, record: Any) -> Customer:
        """One vendor record as a Customer."""
        raise NotImplementedError

    @abstractmethod
    async def get_ticket(self, ticket_id: str) -> Ticket:
        """The ticket or case with this id."""

    @abstractmethod
    async def create_ticket(
        self, ticket: TicketCreateRequest, *, idempotency_key: str, marker: str | None = None
    ) -> Ticket:
        """Create a ticket once; vendors that take an idempotency key get this one; `marker` goes into the record."""

    @abstractmethod
    async def update_ticket(self, update: TicketUpdateRequest) -> Ticket:
        """Change status, priority, subject or tags, and add a public comment or internal note."""
