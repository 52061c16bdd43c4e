"""Intercom (REST API, `Intercom-Version` 2.11 by default): contacts are customers, tickets are tickets, and the
same class is the `chat_type: "intercom"` handoff target (connectors/intercom_chat.py).

Docs: https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/ (Contacts, Companies, Tickets,
Ticket Types, Admins); rate limits: https://developers.intercom.com/docs/references/2.11/rest-api/errors/rate-limiting
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from connectors.base import (
    BaseCRMConnector, TicketPage, TicketQuery, created_by_marker, require, vendor_statuses, with_marker, without_marker,
)
from connectors.field_mapping import NO_MAPPING, FieldMapping, mapped, nest, to_write, unknown_fields
from connectors.governor import RateBudget, RateHeaders
from connectors.vendor_config import CredentialCheck
from connectors.intercom_api import (
    CONTACT_ID,
    CONTACT_ID_FORM,
    DOCS,
    PRIORITY_TO_INTERCOM,
    STATUS_FROM_INTERCOM,
    STATUS_TO_INTERCOM,
    UPDATE_STATES_2_11,
    TicketState,
    TicketStates,
    epoch_iso,
    read_ticket_states,
    state_category,
    state_ids,
    takes_state_ids,
)
from connectors.intercom_chat import IntercomChat
from errors import NotFound, NotSupported, ValidationFailed
from models import Customer, Ticket, TicketCreateRequest, TicketPriority, TicketStatus, TicketUpdateRequest
from phone import PhoneQuery, parse_phone

TITLE, DESCRIPTION = "_default_title_", "_default_description_"  # the default ticket attributes' keys
CONTACT_ROOT, TICKET_ROOT = "custom_attributes", "ticket_attributes"  # where mapped fields live in each record
PRIORITY_FROM_INTERCOM = {v.lower(): k for k, v in PRIORITY_TO_INTERCOM.items()}
SEARCH_PAGE_MAX = 150  # per_page's documented ceiling on a search
DEFAULT_PRIORITY = TicketPriority.medium  # what a ticket without a priority attribute reads as


class IntercomConnector(IntercomChat, BaseCRMConnector):
    """Intercom: contacts (with their first company), tickets of the configured type, notes as ticket replies."""

    credential_check = CredentialCheck("GET", "/me", f"{DOCS}/admins/identifyadmin")
    # Private apps: 10,000 calls a minute, spread over 10-second windows; 429 with X-RateLimit-* (Reset: epoch s).
    rate_budget = RateBudget(10_000, 60.0, "https://developers.intercom.com/docs/references/2.11/rest-api/errors/rate-limiting")
    rate_limit_headers = (RateHeaders(("X-RateLimit-Limit",), ("X-RateLimit-Remaining",), ("X-RateLimit-Reset",)),)
    rate_limit_window_seconds = 10.0
    emulator = "sandbox.intercom:IntercomEmulator"
    sandbox_credentials = {
        "access_token": "sandbox-token",
        "ticket_type_id": "1",
        "admin_id": "991267001",
        "priority_attribute": "priority",
    }
    sandbox_seed = {"customer_id": "6657a1c2b1e5f2a3c4d50001", "ticket_id": "201", "phone": "+971501234567"}
    customer_id_pattern = CONTACT_ID
    customer_id_form = CONTACT_ID_FORM
    # The ticket search reads an index; Intercom documents no delay, so a short window is assumed.
    marker_search_lag_seconds: ClassVar[float] = 30.0

    def __init__(self, config: Any, context: Any) -> None:
        super().__init__(config, context)
        self.status_from = {**STATUS_FROM_INTERCOM, **self.config.status_map}

    # --- mapping ----------------------------------------------------------------------------------

    def _customer(self, contact: dict[str, Any], company: dict[str, Any] | None = None) -> Customer:
        """A contact (and its first company) as a Customer; the tier is the company's tier attribute, else its plan."""
        company = company or {}
        attributes = company.get("custom_attributes") if isinstance(company.get("custom_attributes"), dict) else {}
        plan = company.get("plan") if isinstance(company.get("plan"), dict) else {}
        tier = attributes.get(self.config.tier_attribute) or plan.get("name")
        tier, extra = mapped(self._mapping.customer, contact, fallback_tier=tier)
        metadata = {
            "role": contact.get("role"),
            "external_id": contact.get("external_id"),
            "company_id": company.get("id"),
            "organization_name": company.get("name"),
            "vendor_phone": contact.get("phone"),
            "created_at": epoch_iso(contact.get("created_at")),
            "updated_at": epoch_iso(contact.get("updated_at")),
            **extra,
        }
        return Customer(
            id=str(require(contact, "id", self.vendor, kind=str)),
            name=contact.get("name") or "",
            email=contact.get("email"),
            phone=self.e164(contact.get("phone")),
            tier=str(tier) if tier else None,
            metadata={k: v for k, v in metadata.items() if v is not None},
        )

    def _ticket(self, ticket: dict[str, Any]) -> Ticket:
        """A ticket as a Ticket: its state word through the table (`open: false` is closed), priority from the attribute."""
        attributes = ticket.get("ticket_attributes") if isinstance(ticket.get("ticket_attributes"), dict) else {}
        raw_state = ticket.get("ticket_state")  # 2.11: the word; 2.12+: {id, category, labels}
        state = state_category(raw_state)
        status = TicketStatus.closed if ticket.get("open") is False else self.status_from.get(state or "", TicketStatus.open)
        raw_priority = attributes.get(self.config.priority_attribute) if self.config.priority_attribute else None
        priority = PRIORITY_FROM_INTERCOM.get(str(raw_priority).lower(), DEFAULT_PRIORITY)
        contacts = ticket.get("contacts") if isinstance(ticket.get("contacts"), dict) else {}
        people = [c for c in contacts.get("contacts") or [] if isinstance(c, dict)]
        ticket_type = ticket.get("ticket_type") if isinstance(ticket.get("ticket_type"), dict) else {}
        metadata = {
            "ticket_number": ticket.get("ticket_id"),  # the number the Inbox shows; the API addresses `id`
            "vendor_status": state,
            "vendor_state_id": raw_state.get("id") if isinstance(raw_state, dict) else None,
            "vendor_priority": raw_priority,
            "ticket_type_id": ticket_type.get("id"),
            "category": ticket.get("category"),
            "admin_assignee_id": ticket.get("admin_assignee_id"),
            "team_assignee_id": ticket.get("team_assignee_id"),
            **mapped(self._mapping.ticket, ticket)[1],
        }
        return Ticket(
            id=require(ticket, "id", self.vendor, kind=str),
            subject=str(attributes.get(TITLE) or ""),
            description=without_marker(str(attributes.get(DESCRIPTION) or "")),
            status=status,
            priority=priority,
            customer_id=str(people[0]["id"]) if people and people[0].get("id") else None,
            created_at=epoch_iso(ticket.get("created_at")),
            updated_at=epoch_iso(ticket.get("updated_at")),
            metadata={k: v for k, v in metadata.items() if v not in (None, "", "0")},
        )

    # --- reads ------------------------------------------------------------------------------------

    async def _company(self, contact: dict[str, Any]) -> dict[str, Any] | None:
        """The contact's first company, `GET /companies/{id}` (https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/companies/retrieveacompanybyid); gone is none."""
        companies = contact.get("companies") if isinstance(contact.get("companies"), dict) else {}
        first = next((c for c in companies.get("data") or [] if isinstance(c, dict) and isinstance(c.get("id"), str)), None)
        if first is None or not CONTACT_ID.fullmatch(first["id"]):
            return None
        try:
            return await self._json("GET", f"/companies/{first['id']}", operation="get_company")
        except NotFound:
            return None

    async def get_customer(self, customer_id: str) -> Customer:
        """`GET /contacts/{id}` (https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/contacts/showcontact), then its first company."""
        contact = await self._json("GET", f"/contacts/{self.customer_id(customer_id)}", operation="get_customer")
        require(contact, "id", self.vendor, kind=str)
        return self._customer(contact, await self._company(contact))

    async def _by_phone(self, phone: PhoneQuery, limit: int) -> list[dict[str, Any]]:
        """One search, every common spelling ORed (https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/contacts/searchcontacts)."""
        return await self.contacts_by_phone(phone, limit)

    async def _by_email(self, email: str, limit: int) -> list[dict[str, Any]]:
        """The exact email search."""
        return await self.contacts_by_email(email, limit)

    async def _customers(self, records: list[dict[str, Any]]) -> list[Customer]:
        """Found contacts with their companies, read at once."""
        companies = await asyncio.gather(*(self._company(c) for c in records))
        return [self._customer(c, company) for c, company in zip(records, companies, strict=True)]

    async def get_ticket(self, ticket_id: str) -> Ticket:
        """`GET /tickets/{id}` (https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/tickets/getticket)."""
        data = await self._json("GET", f"/tickets/{self.ticket_id(ticket_id)}", operation="get_ticket")
        return self._ticket(data)

    async def list_tickets(self, query: TicketQuery, page: Mapping[str, Any] | None) -> TicketPage:
        """`POST /tickets/search` by `contact_ids`, state, `updated_at` and title, paged by `starting_after`
        (https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/tickets/searchtickets)."""
        if query.tags:
            raise NotSupported("Intercom tickets have no tags: search by customer, status, text or updated_since", crm_type=self.vendor)
        filters: list[dict[str, Any]] = []
        if query.customer_id:
            filters.append({"field": "contact_ids", "operator": "=", "value": self.customer_id(query.customer_id)})
        if query.statuses:
            states: list[dict[str, Any]] = [{"field": "state", "operator": "IN",
                                              "value": vendor_statuses(self.status_from, query.statuses)}]  # fmt: skip
            if TicketStatus.closed in query.statuses:  # closed is `open: false`, whatever the state
                states.append({"field": "open", "operator": "=", "value": False})
            filters.append({"operator": "OR", "value": states})
        if query.updated_since:
            since = int(datetime.fromisoformat(query.updated_since.replace("Z", "+00:00")).timestamp())
            filters.append({"field": "updated_at", "operator": ">", "value": since - 1})
        if query.text:
            filters.append({"field": TITLE, "operator": "~", "value": query.text})
        # A search needs a query: every ticket was created after the epoch.
        filters = filters or [{"field": "created_at", "operator": ">", "value": 0}]
        pagination: dict[str, Any] = {"per_page": min(query.limit, SEARCH_PAGE_MAX)}
        if page and isinstance(page.get("starting_after"), str) and len(page["starting_after"]) <= 512:
            pagination["starting_after"] = page["starting_after"]
        body = {"query": {"operator": "AND", "value": filters}, "pagination": pagination}
        data = await self._json("POST", "/tickets/search", json=body, idempotent=True, operation="list_tickets")
        tickets = [self._ticket(t) for t in require(data, "tickets", self.vendor, kind=list) if isinstance(t, dict)]
        following = ((data.get("pages") or {}).get("next") or {}).get("starting_after")
        return TicketPage(tickets, {"starting_after": following} if isinstance(following, str) else None)

    # --- writes -----------------------------------------------------------------------------------

    async def _contact_ref(self, ticket: TicketCreateRequest) -> dict[str, str]:
        """The ticket's contact: the id given, else found (or created as a lead) by phone, else by email."""
        if ticket.customer_id:
            return {"id": self.customer_id(ticket.customer_id)}
        if ticket.customer_phone:
            caller = parse_phone(ticket.customer_phone, self.ctx.settings.default_phone_region)
            known = await self.contacts_by_phone(caller, 1)
            if known:
                return {"id": str(known[0]["id"])}
            if not ticket.customer_email:
                made = await self.create_contact(name=ticket.customer_name, email=None, phone=caller.e164)
                return {"id": str(made["id"])}
        if ticket.customer_email:
            return {"email": ticket.customer_email}  # Intercom finds the contact, or makes a lead
        raise ValidationFailed(
            "Intercom needs a contact: give customer_id, customer_email or customer_phone", crm_type=self.vendor
        )

    def _attributes(self, *, title: str | None, priority: TicketPriority | None) -> dict[str, Any]:
        """Ticket attributes for a title and a priority (the priority only where a priority attribute is configured)."""
        attributes: dict[str, Any] = {TITLE: title} if title is not None else {}
        if priority and self.config.priority_attribute:
            attributes[self.config.priority_attribute] = PRIORITY_TO_INTERCOM[priority]
        return attributes

    async def find_created(self, marker: str, ticket: TicketCreateRequest) -> str | None:
        """`POST /tickets/search` for the description that holds the marker (https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/tickets/searchtickets)."""
        body = {"query": {"field": DESCRIPTION, "operator": "~", "value": marker}, "pagination": {"per_page": 5}}
        data = await self._json("POST", "/tickets/search", json=body, idempotent=True, operation="create_ticket")

        def description(record: Any) -> str:
            attributes = record.get("ticket_attributes") if isinstance(record, dict) else None
            return str((attributes or {}).get(DESCRIPTION) or "")

        tickets = require(data, "tickets", self.vendor, kind=list)
        return created_by_marker(tickets, marker, description, lambda record: str(require(record, "id", self.vendor)))

    async def create_ticket(
        self, ticket: TicketCreateRequest, *, idempotency_key: str, marker: str | None = None
    ) -> Ticket:
        """`POST /tickets` of the configured type (https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/tickets/createticket), then its state when one was asked.

        Intercom takes no idempotency key: the marker ends the description, where `find_created` looks for it.
        """
        if not self.config.ticket_type_id:
            raise self.missing_config("ticket_type_id")
        attributes = self._attributes(title=ticket.subject, priority=ticket.priority)
        attributes[DESCRIPTION] = with_marker(ticket.description, marker)
        attributes.update(self._mapped_attributes(ticket.metadata))
        body = {
            "ticket_type_id": self.config.ticket_type_id,
            "contacts": [await self._contact_ref(ticket)],
            "ticket_attributes": attributes,
        }
        data = await self._json("POST", "/tickets", json=body, operation="create_ticket")
        created = self._ticket(data)
        if ticket.status and ticket.status is not created.status:  # a create always starts as submitted
            kind = str(created.metadata.get("ticket_type_id") or self.config.ticket_type_id)
            created = self._ticket(await self._put(created.id, await self._state_change(created.id, ticket.status, kind)))
        return created

    # --- ticket states: 2.11's `state` word, or from 2.12 the id of one of the workspace's states ------

    async def _state_change(self, ticket_id: str, status: TicketStatus, ticket_type: str | None) -> dict[str, Any]:
        """The PUT's fields for a status; `open: false` closes, any other status keeps (or makes) the ticket open.

        2.11 takes only in_progress, waiting_on_customer and resolved, so `new` is refused before any call.
        2.12+ takes the `ticket_state_id` of a state of the status's category for the ticket's type: when the
        workspace's states leave that open and the type is not known, `GET /tickets/{id}` tells it.
        """
        category, opened = STATUS_TO_INTERCOM[status], {"open": status is not TicketStatus.closed}
        if not takes_state_ids(self.config.api_version):
            if category not in UPDATE_STATES_2_11:
                raise NotSupported(
                    f"Intercom API {self.config.api_version} cannot move a ticket back to {category} (status {status.value}): "
                    f"its UpdateTicket state takes only {', '.join(sorted(UPDATE_STATES_2_11))}", crm_type=self.vendor)
            return {"state": category, **opened}
        states = await self._ticket_states()
        ids = state_ids(states, category, ticket_type)
        if len(ids) > 1 and ticket_type is None:
            ticket = await self._json("GET", f"/tickets/{ticket_id}", operation="update_ticket")
            ticket_type = str(self._ticket(ticket).metadata.get("ticket_type_id") or "") or None
            ids = state_ids(states, category, ticket_type)
        if not ids:
            raise NotSupported(f"the Intercom workspace has no {category} ticket state for ticket type "
                               f"{ticket_type or '(any)'} (GET /ticket_states)", crm_type=self.vendor)
        return {"ticket_state_id": ids[0], **opened}

    async def _ticket_states(self) -> list[TicketState]:
        """The workspace's ticket states, cached per tenant for a few minutes: `GET /ticket_states` (2.12+,
        https://developers.intercom.com/docs/references/2.14/rest-api/api.intercom.io/ticket-states/listticketstates)."""
        async def load() -> list[TicketState]:
            data = await self._json("GET", "/ticket_states", operation="update_ticket")
            return read_ticket_states(require(data, "data", self.vendor, kind=list))

        return await TicketStates(self.ctx.shared).get(self.tenant_fingerprint(), load)

    async def _put(self, ticket_id: str, changes: dict[str, Any]) -> Any:
        """`PUT /tickets/{id}` (https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/tickets/updateticket,
        2.12+: .../2.14/rest-api/api.intercom.io/tickets/updateticket): safe to repeat. A refused state id may
        have been archived since it was read, so the cached states are dropped."""
        try:
            return await self._json("PUT", f"/tickets/{ticket_id}", json=changes, idempotent=True, operation="update_ticket")
        except ValidationFailed:
            if "ticket_state_id" in changes:
                TicketStates(self.ctx.shared).forget(self.tenant_fingerprint())
            raise

    async def update_ticket(self, update: TicketUpdateRequest) -> Ticket:
        """`PUT /tickets/{id}` for the state (`_state_change`), title and priority, then a reply: a note, or a comment the contact sees.

        Replies: `POST /tickets/{id}/reply` with `message_type` note or comment, as the acting admin
        (https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/tickets/replyticket). Tags need tag ids (`POST /tickets/{id}/tags`), so they are not set.
        """
        ticket_id = self.ticket_id(update.ticket_id)
        changes: dict[str, Any] = await self._state_change(ticket_id, update.status, None) if update.status else {}
        attributes = self._attributes(title=update.subject, priority=update.priority)
        attributes.update(self._mapped_attributes(update.metadata or {}))
        if attributes:
            changes["ticket_attributes"] = attributes
        data = await self._put(ticket_id, changes) if changes else None
        part = None
        if update.comment:
            kind = "comment" if update.comment.public else "note"
            body = {"message_type": kind, "type": "admin", "admin_id": await self.acting_admin(), "body": update.comment.body}
            part = await self._json("POST", f"/tickets/{ticket_id}/reply", json=body, operation="update_ticket")
        if data is None:
            data = await self._json("GET", f"/tickets/{ticket_id}", operation="update_ticket")
        result = self._ticket(data)
        if isinstance(part, dict) and part.get("id") is not None:
            result.metadata["note_id"] = str(part["id"])
        return result

    # --- field mapping (connectors/field_mapping.py) ----------------------------------------------

    @property
    def _mapping(self) -> FieldMapping:
        return self.config.field_mapping or NO_MAPPING

    def _mapped_attributes(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """The mapped metadata keys as ticket attributes (PUT merges the attributes sent into the ticket's)."""
        return nest(to_write(self._mapping.ticket, metadata)).get(TICKET_ROOT, {})

    async def check_field_mapping(self, mapping: FieldMapping) -> list[dict[str, Any]]:
        """Each mapped attribute Intercom lacks, refused in Intercom's "... does not exist" words: contacts' custom data
        attributes, `GET /data_attributes?model=contact` ("List all data attributes",
        https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/data-attributes/listdataattributes),
        tickets' the configured type's `ticket_type_attributes`, `GET /ticket_types/{id}` ("Retrieve a ticket type",
        https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/ticket-types/gettickettype)."""
        problems: list[dict[str, Any]] = []
        if mapping.customer:
            data = await self._json("GET", "/data_attributes", params={"model": "contact"}, operation="list_fields")
            listed = [a for a in require(data, "data", self.vendor, kind=list) if isinstance(a, dict) and a.get("custom")]
            known = {str(a.get("full_name") or "").removeprefix(f"{CONTACT_ROOT}.") for a in listed}
            problems += unknown_fields("customer", mapping.customer, known, CONTACT_ROOT, "Custom attribute '{name}' does not exist")
        if mapping.ticket:
            if not self.config.ticket_type_id:
                raise self.missing_config("ticket_type_id")
            kind = await self._json("GET", f"/ticket_types/{self.config.ticket_type_id}", operation="list_fields")
            listed = require(require(kind, "ticket_type_attributes", self.vendor, kind=dict), "ticket_type_attributes",
                             self.vendor, kind=list)  # fmt: skip
            known = {str(a.get("name")) for a in listed if isinstance(a, dict)}
            problems += unknown_fields("ticket", mapping.ticket, known, TICKET_ROOT, "Ticket attribute '{name}' does not exist")
        return problems
