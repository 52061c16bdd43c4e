"""Freshdesk API v2: contacts (with their company), exact-match contact filters, tickets and notes."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import SecretStr

from connectors.field_mapping import NO_MAPPING, FieldMapping, mapped, nest, to_write, unknown_fields
from connectors.base import MARKER, BaseCRMConnector, TicketPage, TicketQuery, require, vendor_statuses
from connectors.hosts import check_dns_label, only_label
from connectors import auth
from connectors.auth import Auth
from connectors.governor import RateBudget, RateHeaders
from connectors.upstream_answers import UpstreamResponse
from connectors.vendor_config import CredentialCheck, VendorConfig
from errors import InvalidRequest, MalformedAnswer, NotFound, NotSupported, ValidationFailed
from api_models.values import iso_utc
from models import (
    Customer,
    Ticket,
    TicketCreateRequest,
    TicketPriority,
    TicketStatus,
    TicketUpdateRequest,
)
from phone import PhoneQuery, parse_phone

FRESHDESK_SUFFIX = ".freshdesk.com"

# Freshdesk's numeric codes <-> unified. Freshdesk has no "new": a fresh ticket is 2 Open.
# Custom statuses (6 and up) differ per account, so they fall back to open with vendor_status kept.
STATUS_FROM_FRESHDESK: dict[int, TicketStatus] = {
    2: TicketStatus.open,
    3: TicketStatus.pending,
    4: TicketStatus.solved,  # Resolved
    5: TicketStatus.closed,
}
STATUS_TO_FRESHDESK: dict[TicketStatus, int] = {
    TicketStatus.new: 2,
    TicketStatus.open: 2,
    TicketStatus.pending: 3,
    TicketStatus.solved: 4,
    TicketStatus.closed: 5,
}
PRIORITY_FROM_FRESHDESK: dict[int, TicketPriority] = {
    1: TicketPriority.low,
    2: TicketPriority.medium,
    3: TicketPriority.high,
    4: TicketPriority.urgent,
}
PRIORITY_TO_FRESHDESK: dict[TicketPriority, int] = {v: k for k, v in PRIORITY_FROM_FRESHDESK.items()}
DEFAULT_STATUS = TicketStatus.open
DEFAULT_PRIORITY = TicketPriority.low  # what Freshdesk itself defaults to
FILTER_PAGE_SIZE, FILTER_PAGE_MAX = 30, 10  # the filter API's fixed page size and its last page
SOURCE_PHONE = 3  # tickets a voice platform opens come from a phone call
SOURCE_NAMES: dict[int, str] = {
    1: "email",
    2: "portal",
    3: "phone",
    7: "chat",
    9: "feedback_widget",
    10: "outbound_email",
}
UPDATE_FIELDS: dict[str, str] = {"status": "status", "priority": "priority", "subject": "subject", "tags": "tags"}
PHONE_FIELDS = ("phone", "mobile")  # Freshdesk keeps these apart; a caller may be stored under either
# What an answer without a JSON body means (Freshdesk's 404 and 429 usually have none).
BODYLESS_MESSAGES: dict[int, str] = {
    404: "Freshdesk has no such record",
    429: "Freshdesk's rate limit was reached",
}
# Ticket fields a caller may pass through `metadata` on create, as Freshdesk names them.
CREATE_PASSTHROUGH = ("type", "group_id", "responder_id", "product_id", "company_id", "custom_fields", "cc_emails")


def to_html(text: str) -> str:
    """Plain text as the HTML Freshdesk stores descriptions and notes in (escaped, line breaks kept)."""
    return html.escape(text).replace("\r\n", "\n").replace("\n", "<br>")


class FreshdeskConfig(VendorConfig):
    """`domain` (`yourcompany` or `yourcompany.freshdesk.com`) and the agent's `api_key`."""

    domain: str
    api_key: SecretStr
    # custom_fields.<name> for contacts and tickets (connectors/field_mapping.py)
    field_mapping: FieldMapping | None = None

    # `acme` or acme.freshdesk.com (the connector accepts both); anything else fails at start-up.
    env_checks = {"domain": lambda value: only_label(value, ".freshdesk.com", "acme", suffix_allowed=True) and value.strip()}


class FreshdeskConnector(BaseCRMConnector):
    """Freshdesk: contacts are customers, tickets are tickets, a comment is a note."""

    vendor = "freshdesk"
    display_name = "Freshdesk"
    credential_check = CredentialCheck("GET", "/api/v2/agents/me", "https://developers.freshdesk.com/api/#me")
    rate_limit_window_seconds = 60.0  # Freshdesk's limits are per minute (it normally sends Retry-After)
    # https://developers.freshdesk.com/api/#ratelimit: per minute by plan (Growth 200, the lowest paid); no reset header
    rate_budget = RateBudget(200, 60.0, "https://developers.freshdesk.com/api/#ratelimit")
    rate_limit_headers = (RateHeaders(("X-RateLimit-Total",), ("X-RateLimit-Remaining",)),)
    config_model = FreshdeskConfig
    config: FreshdeskConfig
    tuning_fields = frozenset({"field_mapping"})
    emulator = "sandbox.freshdesk:FreshdeskEmulator"
    sandbox_credentials = {"domain": "sandbox.freshdesk.com", "api_key": "sandbox-key"}
    sandbox_seed = {"customer_id": "1001", "ticket_id": "54321", "phone": "+971501234567"}
    page_max: ClassVar[int] = 100  # Freshdesk's per_page ceiling
    marker_search_lag_seconds: ClassVar[float] = 60.0  # the filter API is an index; its delay is undocumented
    # Exact-match filters tried at once: a few, not all 14 spellings x fields, to spare the rate limit.
    filters_at_once: ClassVar[int] = 4

    def _vendor_url(self) -> str:
        """`https://{name}.freshdesk.com`, the name being one DNS label (SSRF guard)."""
        name = self.config.domain.lower().removesuffix(FRESHDESK_SUFFIX)
        label = check_dns_label(name, "domain (yourcompany or yourcompany.freshdesk.com)", self.vendor)
        return f"https://{label}{FRESHDESK_SUFFIX}"

    def _auth(self) -> Auth:
        """Basic `{api_key}:X`: Freshdesk ignores the password when the user part is an API key."""
        return auth.basic(self.config.api_key.get_secret_value(), "X")

    def _error_detail(self, response: UpstreamResponse) -> tuple[str, Any]:
        """400 `{"description","errors":[{field,message,code}]}`; others `{"code","message"}`; 404 often empty.

        Field errors come back keyed by field, `{"status": [{"message", "code"}]}`, the shape Zendesk's take,
        so callers read one form and the service can add its own keys beside them.
        """
        body = response.error_json()
        if not isinstance(body, dict):
            return BODYLESS_MESSAGES.get(response.status, f"Freshdesk answered {response.status}"), None
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        if errors:
            details: dict[str, list[dict[str, Any]]] = {}
            for e in errors:
                details.setdefault(str(e.get("field") or "request"), []).append(
                    {"message": e.get("message"), "code": e.get("code")}
                )
            problems = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors)
            return f"{body.get('description') or 'Validation failed'}: {problems}", details
        message = body.get("message") or body.get("description") or body.get("code")
        return str(message or f"Freshdesk answered {response.status}"), None

    # --- mapping ------------------------------------------------------------------------------

    def _customer(self, contact: dict[str, Any], company: dict[str, Any] | None) -> Customer:
        """A Freshdesk contact (and its company) as a Customer; phone preferred, else mobile."""
        company = company or {}
        metadata = {
            "company_id": contact.get("company_id"),
            "company_name": company.get("name"),
            "organization_name": company.get("name"),  # the key every connector uses for the account
            "vendor_phone": contact.get("phone"),
            "vendor_mobile": contact.get("mobile"),
            "mobile": self.e164(contact.get("mobile")),
            "job_title": contact.get("job_title"),
            "language": contact.get("language"),
            "time_zone": contact.get("time_zone"),
            "unique_external_id": contact.get("unique_external_id"),
            "tags": contact.get("tags") or [],
            "active": contact.get("active"),
            "created_at": iso_utc(contact.get("created_at")),
            "updated_at": iso_utc(contact.get("updated_at")),
        }
        tier = company.get("account_tier")  # Freshdesk's default company field (Basic, Premium, Enterprise)
        tier, extra = mapped(self._mapping.customer, contact, fallback_tier=tier)
        metadata.update(extra)
        return Customer(
            id=str(require(contact, "id", self.vendor)),
            name=contact.get("name") or "",
            email=contact.get("email"),
            phone=self.e164(contact.get("phone") or contact.get("mobile")),
            tier=str(tier) if tier is not None else None,
            metadata={k: v for k, v in metadata.items() if v is not None},
        )

    def _ticket(self, ticket: dict[str, Any]) -> Ticket:
        """A Freshdesk ticket as a Ticket; its numeric codes, source and HTML description stay in metadata."""
        ticket_id = require(ticket, "id", self.vendor)
        status, priority, source = ticket.get("status"), ticket.get("priority"), ticket.get("source")
        metadata = {
            "tags": [tag for tag in ticket.get("tags") or [] if not MARKER.fullmatch(tag)],
            "vendor_status": status,
            "vendor_priority": priority,
            "source": source,
            "channel": SOURCE_NAMES.get(source) if isinstance(source, int) else None,
            "type": ticket.get("type"),
            "responder_id": ticket.get("responder_id"),
            "group_id": ticket.get("group_id"),
            "company_id": ticket.get("company_id"),
            "description_html": ticket.get("description"),
            "due_by": iso_utc(ticket.get("due_by")),
            "fr_due_by": iso_utc(ticket.get("fr_due_by")),
            "custom_fields": ticket.get("custom_fields") or None,
            **mapped(self._mapping.ticket, ticket)[1],
        }
        requester = ticket.get("requester_id")
        return Ticket(
            id=str(ticket_id),
            subject=ticket.get("subject") or "",
            description=ticket.get("description_text") or "",
            status=STATUS_FROM_FRESHDESK.get(status, TicketStatus.open),
            priority=PRIORITY_FROM_FRESHDESK.get(priority, TicketPriority.medium),
            customer_id=str(requester) if requester is not None else None,
            created_at=iso_utc(ticket.get("created_at")),
            updated_at=iso_utc(ticket.get("updated_at")),
            metadata={k: v for k, v in metadata.items() if v is not None},
        )

    # --- reads --------------------------------------------------------------------------------

    async def _company(self, company_id: Any) -> dict[str, Any] | None:
        """`GET /companies/{id}`; a company deleted since does not hide the contact."""
        if not isinstance(company_id, int):  # none set (ids are JSON numbers; anything else is not a path)
            return None
        try:
            return await self._json("GET", f"/api/v2/companies/{company_id}", operation="get_company")
        except NotFound:
            return None

    async def get_customer(self, customer_id: str) -> Customer:
        """`GET /contacts/{id}`, then its company (only when it has one) for the name and tier."""
        contact = await self._json(
            "GET", f"/api/v2/contacts/{self.customer_id(customer_id)}", operation="get_customer"
        )
        require(contact, "id", self.vendor, kind=int)  # Freshdesk ids are numbers
        return self._customer(contact, await self._company(contact.get("company_id")))

    async def _contacts_where(self, field: str, value: str, limit: int) -> list[dict[str, Any]]:
        """`GET /contacts?{field}=...`: Freshdesk's exact-match filter (email, phone or mobile)."""
        contacts = await self._json(
            "GET",
            "/api/v2/contacts",
            params={field: value, "per_page": str(min(limit, self.page_max))},
            operation="find_customers",
        )
        if not isinstance(contacts, list):
            raise MalformedAnswer("the freshdesk contact list is not an array", crm_type=self.vendor)
        return contacts

    async def _by_phone(self, phone: PhoneQuery, limit: int) -> list[dict[str, Any]]:
        """The caller's contacts: each common spelling on phone and mobile, a few filters at a time.

        The filters match exactly, so the stored spelling must be guessed; the most canonical come first,
        and the search stops at the first batch that finds the caller.
        """
        filters = [(field, variant) for variant in phone.variants for field in PHONE_FIELDS]
        for start in range(0, len(filters), self.filters_at_once):
            batch = filters[start : start + self.filters_at_once]
            answers = await asyncio.gather(*(self._contacts_where(f, v, limit) for f, v in batch))
            callers = [
                contact
                for contacts in answers
                for contact in contacts
                if any(self.matches_phone(contact.get(field), phone) for field in PHONE_FIELDS)
            ]
            if callers:
                return callers
        return []

    async def _by_email(self, email: str, limit: int) -> list[dict[str, Any]]:
        """The exact-match email filter."""
        return await self._contacts_where("email", email, limit)

    async def _customers(self, records: list[dict[str, Any]]) -> list[Customer]:
        """Contacts with their companies, each company read once."""
        company_ids = list(dict.fromkeys(c["company_id"] for c in records if c.get("company_id") is not None))
        companies = dict(zip(company_ids, await asyncio.gather(*(self._company(i) for i in company_ids)), strict=True))
        return [self._customer(c, companies.get(c.get("company_id"))) for c in records]

    async def get_ticket(self, ticket_id: str) -> Ticket:
        """`GET /tickets/{id}` (a bare ticket, with description and description_text)."""
        data = await self._json("GET", f"/api/v2/tickets/{self.ticket_id(ticket_id)}", operation="get_ticket")
        return self._ticket(data)

    # --- writes -------------------------------------------------------------------------------

    async def _requester(self, ticket: TicketCreateRequest) -> dict[str, Any]:
        """requester_id when known (or found by phone), else email, else phone with the name Freshdesk requires."""
        if ticket.customer_id:
            return {"requester_id": int(self.customer_id(ticket.customer_id))}
        name = {"name": ticket.customer_name} if ticket.customer_name else {}
        if ticket.customer_email:
            return {"email": ticket.customer_email, **name}  # Freshdesk reuses or creates the contact
        if ticket.customer_phone:
            caller = parse_phone(ticket.customer_phone, self.ctx.settings.default_phone_region)
            # Freshdesk matches `phone` only as spelled, so look the caller up in any spelling first.
            known = await self._by_phone(caller, 1)
            if known:
                return {"requester_id": int(require(known[0], "id", self.vendor))}
            return {"phone": caller.e164, "name": ticket.customer_name or f"Caller {caller.e164}"}
        raise ValidationFailed(
            "Freshdesk needs a requester: give customer_id, customer_email or customer_phone", crm_type=self.vendor
        )

    async def find_created(self, marker: str, ticket: TicketCreateRequest) -> str | None:
        """The filter API, `GET /search/tickets?query="tag:'<marker>'"`: the ticket tagged with the marker.

        The filter API reads a search index that trails writes, hence `marker_search_lag_seconds`.
        Docs: https://developers.freshdesk.com/api/#filter_tickets
        """
        data = await self._json(
            "GET", "/api/v2/search/tickets", params={"query": f"\"tag:'{marker}'\""}, operation="create_ticket"
        )
        for record in require(data, "results", self.vendor):
            if marker in (record.get("tags") or []):
                return str(require(record, "id", self.vendor))
        return None

    async def create_ticket(
        self, ticket: TicketCreateRequest, *, idempotency_key: str, marker: str | None = None
    ) -> Ticket:
        """`POST /tickets` → 201 bare ticket, as a phone ticket.

        Freshdesk takes no idempotency key, so `_request` resends the create only where Freshdesk cannot
        have received it (429, refused connection); the marker is a tag, where `find_created` looks for it.
        """
        body: dict[str, Any] = {
            "subject": ticket.subject,
            "description": to_html(ticket.description),
            "status": STATUS_TO_FRESHDESK[ticket.status or DEFAULT_STATUS],
            "priority": PRIORITY_TO_FRESHDESK[ticket.priority or DEFAULT_PRIORITY],
            "source": SOURCE_PHONE,
            "tags": [*ticket.tags, marker] if marker else ticket.tags,
            **await self._requester(ticket),
        }
        body.update({key: ticket.metadata[key] for key in CREATE_PASSTHROUGH if key in ticket.metadata})
        self._write_mapped(body, ticket.metadata)
        data = await self._json("POST", "/api/v2/tickets", json=body, operation="create_ticket")
        return self._ticket(data)

    async def update_ticket(self, update: TicketUpdateRequest) -> Ticket:
        """`PUT /tickets/{id}` for the fields, then a comment as `POST /tickets/{id}/notes`.

        The PUT goes first: it is safe to repeat, so a caller retrying after a failed note re-sends only
        a harmless PUT; the note, like a create, is re-sent only where Freshdesk cannot have received it.
        """
        path = f"/api/v2/tickets/{self.ticket_id(update.ticket_id)}"
        changes = self.ticket_changes(
            update, fields=UPDATE_FIELDS, status=STATUS_TO_FRESHDESK, priority=PRIORITY_TO_FRESHDESK
        )
        self._write_mapped(changes, update.metadata or {})
        data = None
        if changes:
            data = await self._json("PUT", path, json=changes, idempotent=True, operation="update_ticket")
        note = None
        if update.comment:
            note = await self._json(
                "POST",
                f"{path}/notes",
                json={"body": to_html(update.comment.body), "private": not update.comment.public},
                operation="update_ticket",
            )
        if data is None:  # a note alone: the ticket as it now is
            data = await self._json("GET", path, operation="update_ticket")
        result = self._ticket(data)
        if isinstance(note, dict) and note.get("id") is not None:
            result.metadata["note_id"] = note["id"]
        return result

    # --- ticket listing (POST /crm/ticket/search, /crm/customer/context) ------------------------------

    def _filter_query(self, query: TicketQuery) -> str:
        """The filter API's query (https://developers.freshdesk.com/api/#filter_tickets): codes are numbers, a tag
        one quoted word, a date yyyy-mm-dd; nothing a caller sends can add a condition (it has no requester field)."""
        terms = []
        if query.statuses:
            codes = vendor_statuses(STATUS_FROM_FRESHDESK, query.statuses)
            terms.append("(" + " OR ".join(f"status:{c}" for c in codes) + ")")
        for tag in query.tags:
            if any(c in "'\"\\" or not c.isprintable() for c in tag):
                raise InvalidRequest(f"tag {tag[:40]!r} has a character Freshdesk's filter cannot take", crm_type=self.vendor)
            terms.append(f"tag:'{tag}'")
        if query.updated_since:
            terms.append(f"updated_at:>'{query.updated_since[:10]}'")
        return '"' + " AND ".join(terms) + '"'

    def _wanted(self, query: TicketQuery, ticket: Any) -> bool:
        """A listed ticket against the filters the list endpoint cannot apply itself (status and tags)."""
        if not isinstance(ticket, dict):
            return True  # mapping then reports the malformed answer
        status_ok = not query.statuses or STATUS_FROM_FRESHDESK.get(ticket.get("status"), DEFAULT_STATUS) in query.statuses
        return status_ok and set(query.tags) <= set(ticket.get("tags") or [])

    async def list_tickets(self, query: TicketQuery, page: Mapping[str, Any] | None) -> TicketPage:
        """A customer's tickets: `GET /tickets?requester_id=` newest change first (https://developers.freshdesk.com/api/#list_all_tickets),
        status and tags kept per page (a page may come back short); without a customer, the filter API's pages of 30."""
        if query.text:
            raise NotSupported("Freshdesk's ticket list and filter cannot search text: use status, tags or updated_since", crm_type=self.vendor)
        number, skip = (page.get("page", 1), page.get("skip", 0)) if page else (1, 0)
        number = number if isinstance(number, int) and 0 < number <= 1000 else 1
        skip = skip if isinstance(skip, int) and 0 <= skip < 100 else 0
        if query.customer_id or not (query.statuses or query.tags):
            params = {
                # Freshdesk lists only the last 30 days' tickets unless given updated_since: the list's documented way back.
                "updated_since": query.updated_since or "2000-01-01T00:00:00Z",
                "order_by": "updated_at", "order_type": "desc",
                "per_page": str(min(query.limit, self.page_max)), "page": str(number),
            }
            if query.customer_id:
                params["requester_id"] = self.customer_id(query.customer_id)
            response = await self._request("GET", "/api/v2/tickets", params=params, operation="list_tickets")
            listed = response.json()
            if not isinstance(listed, list):
                raise MalformedAnswer("the freshdesk ticket list is not an array", crm_type=self.vendor)
            more = 'rel="next"' in response.headers.get("link", "")
            tickets = [self._ticket(t) for t in listed if self._wanted(query, t)]
            return TicketPage(tickets, {"page": number + 1} if more else None)
        if query.statuses and not vendor_statuses(STATUS_FROM_FRESHDESK, query.statuses):
            return TicketPage([])
        data = await self._json(
            "GET", "/api/v2/search/tickets", params={"query": self._filter_query(query), "page": str(number)},
            operation="list_tickets",
        )
        results = require(data, "results", self.vendor, list)
        tickets = [self._ticket(t) for t in results[skip : skip + query.limit]]
        if skip + query.limit < len(results):
            return TicketPage(tickets, {"page": number, "skip": skip + query.limit})
        total = data.get("total") if isinstance(data.get("total"), int) else 0
        more = number * FILTER_PAGE_SIZE < total and number < FILTER_PAGE_MAX
        return TicketPage(tickets, {"page": number + 1, "skip": 0} if more else None)

    # --- field mapping (connectors/field_mapping.py) ----------------------------------------------

    @property
    def _mapping(self) -> FieldMapping:
        return self.config.field_mapping or NO_MAPPING

    def _write_mapped(self, body: dict[str, Any], metadata: Mapping[str, Any]) -> None:
        """The mapped metadata keys into the ticket's `custom_fields` object (Freshdesk updates only the keys sent)."""
        values = nest(to_write(self._mapping.ticket, metadata))
        if values.get("custom_fields"):
            body["custom_fields"] = {**(body.get("custom_fields") or {}), **values.pop("custom_fields")}
        body.update(values)

    async def check_field_mapping(self, mapping: FieldMapping) -> list[dict[str, Any]]:
        """Each mapped custom field the helpdesk lacks, per `GET /contact_fields` and `GET /ticket_fields`.

        https://developers.freshdesk.com/api/#list_all_contact_fields, https://developers.freshdesk.com/api/#list_all_ticket_fields
        """
        problems: list[dict[str, Any]] = []
        for kind, path in (("customer", "/api/v2/contact_fields"), ("ticket", "/api/v2/ticket_fields")):
            entries = getattr(mapping, kind)
            if entries:
                listed = await self._json("GET", path, operation="list_fields")
                if not isinstance(listed, list):
                    raise MalformedAnswer(f"Freshdesk's {path} answer is not a list", crm_type=self.vendor)
                # Only custom fields live under custom_fields; default ones are top-level keys of the record.
                known = {str(f.get("name")) for f in listed if isinstance(f, dict) and not f.get("default")}
                problems += unknown_fields(kind, entries, known, "custom_fields", "Unexpected/invalid field in request")
        return problems
