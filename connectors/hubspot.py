"""HubSpot CRM (date-versioned, or legacy v3): contacts with their deals, contact search, tickets, notes on tickets."""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from connectors import auth
from connectors.auth import Auth
from connectors.base import BaseCRMConnector, created_by_marker, require, with_marker, without_marker
from connectors.field_mapping import NO_MAPPING, FieldMapping, mapped, to_write, unknown_fields
from connectors.governor import RateBudget, RateHeaders
from connectors.context import ConnectorContext
from connectors.retry_policy import parse_retry_after
from connectors.upstream_answers import UpstreamResponse
from connectors.vendor_config import CredentialCheck
from connectors.hubspot_bulk import TicketBatches
from connectors.hubspot_errors import property_errors, rate_limit_wait
from connectors.hubspot_lists import TicketLists
from connectors.hubspot_tables import (
    CONTACT_PROPERTIES,
    CREATE_PASSTHROUGH,
    DEAL_PROPERTIES,
    NOTE_TO_TICKET,
    PHONE_PROPERTIES,
    PRIORITY_FROM_HUBSPOT,
    PRIORITY_TO_HUBSPOT,
    STAGE_TO_HUBSPOT,
    TICKET_PROPERTIES,
    TICKET_TO_CONTACT,
    UPDATE_PROPERTIES,
    VENDOR_URL,
    HubSpotConfig,
    api_path,
    associated_ids,
    association,
)
from errors import InvalidRequest
from api_models.values import iso_utc
from models import Customer, Ticket, TicketCreateRequest, TicketPriority, TicketStatus, TicketUpdateRequest
from phone import PhoneQuery, parse_phone


class HubSpotConnector(TicketBatches, TicketLists, BaseCRMConnector):
    """HubSpot: contacts are customers (with their deals), tickets are tickets, comments are notes."""

    vendor = "hubspot"
    display_name = "HubSpot"
    credential_check = CredentialCheck(
        "GET",
        "contacts",  # in the configured API version's objects path (_credential_path)
        "https://developers.hubspot.com/docs/api-reference/crm-contacts-v3/basic/get-crm-v3-objects-contacts",
        params={"limit": 1, "archived": "false"},
    )
    rate_limit_window_seconds = 10.0  # HubSpot's burst limit is a ten-second rolling window
    # https://developers.hubspot.com/docs/api/usage-details: private apps 100 (Pro/Enterprise 190)
    # per 10 s and a daily cap; the answer states both windows (the daily one's reset is not sent: a whole day assumed)
    rate_budget = RateBudget(100, 10.0, "https://developers.hubspot.com/docs/api/usage-details")
    rate_limit_headers = (
        RateHeaders(
            ("X-HubSpot-RateLimit-Max",),
            ("X-HubSpot-RateLimit-Remaining",),
            window="X-HubSpot-RateLimit-Interval-Milliseconds",
            window_seconds=10.0,
        ),
        RateHeaders(("X-HubSpot-RateLimit-Daily",), ("X-HubSpot-RateLimit-Daily-Remaining",), window_seconds=86_400.0),
    )
    config_model = HubSpotConfig
    config: HubSpotConfig
    tuning_fields = frozenset({"field_mapping"})
    emulator = "sandbox.hubspot:HubSpotEmulator"
    # The portal has a custom contact property customer_tier (HubSpot has no built-in tier).
    sandbox_credentials = {"api_key": "sandbox-token", "tier_property": "customer_tier"}
    sandbox_seed = {"customer_id": "12345", "ticket_id": "3001", "phone": "+971501234567"}
    search_page_max: ClassVar[int] = 100
    has_deals = True  # get_customer reads the contact's deals (metadata.deals): the context's deals part
    marker_search_lag_seconds: ClassVar[float] = 60.0  # search is an index, not read-after-write

    def __init__(self, config: HubSpotConfig, context: ConnectorContext) -> None:
        """The stage table both ways, the config's overrides merged over HubSpot's default pipeline."""
        super().__init__(config, context)
        self.stage_for = {**STAGE_TO_HUBSPOT, **{TicketStatus(k): v for k, v in config.stage_map.items()}}
        # Read back, a stage shared by several statuses is the latest of them in the lifecycle ("4" is closed).
        self.status_for = {stage: status for status, stage in self.stage_for.items()}

    def _vendor_url(self) -> str:
        """`https://api.hubapi.com` whatever the portal."""
        return VENDOR_URL

    def _auth(self) -> Auth:
        """Bearer with the private-app or OAuth token (HubSpot retired `hapikey` API keys in 2022)."""
        return auth.bearer(self.config.api_key.get_secret_value())

    def _credential_path(self) -> str:
        """The contacts list in the configured version's objects API."""
        return self._path("objects", self.credential_check.path)

    def _path(self, api: str, resource: str) -> str:
        """`api_path` for this portal's configured API version."""
        return api_path(self.config.api_version, api, resource)

    def _error_detail(self, response: UpstreamResponse) -> tuple[str, Any]:
        """HubSpot errors: `{"status":"error","message","correlationId","category","errors"?}`; a 404 may be empty.

        Property errors come back keyed by property, `{"hs_ticket_priority": [{"message", "code"}]}`, the form
        the other connectors use; category and correlationId (what HubSpot support asks for) go in the message.
        """
        body = response.error_json()
        if not isinstance(body, dict) or not body.get("message"):
            return f"HubSpot answered {response.status}", None
        fields = property_errors(body)
        message = str(body["message"])
        if fields:  # instead of HubSpot's message, which embeds the same list as escaped JSON
            problems = "; ".join(f"{name}: {e['message']}" for name, errors in fields.items() for e in errors)
            message = f"Property values were not valid: {problems}"
        notes = [str(body[key]) for key in ("category", "policyName") if body.get(key)]
        if body.get("correlationId"):
            notes.append(f"correlationId {body['correlationId']}")
        return message + (f" ({', '.join(notes)})" if notes else ""), fields or None

    def _retry_after(self, response: UpstreamResponse) -> float | None:
        """Retry-After when sent; else every 429 gets a wait estimated from HubSpot's policy and rate headers."""
        stated = parse_retry_after(response.headers.get("Retry-After"))
        if stated is not None or response.status != 429:
            return stated
        return rate_limit_wait(response)

    # --- mapping ------------------------------------------------------------------------------

    @property
    def contact_properties(self) -> list[str]:
        """Contact properties to read, with the configured tier property."""
        tier = self.config.tier_property
        return list(dict.fromkeys([*CONTACT_PROPERTIES, *([tier] if tier else []), *self._mapping.customer.values()]))

    @property
    def ticket_properties(self) -> list[str]:
        """Ticket properties to read, with the mapped ones (so a read needs no second call)."""
        return list(dict.fromkeys([*TICKET_PROPERTIES, *self._mapping.ticket.values()]))

    @property
    def _mapping(self) -> FieldMapping:
        return self.config.field_mapping or NO_MAPPING

    @staticmethod
    def _deal(deal: dict[str, Any]) -> dict[str, Any]:
        """A deal summarized for customer metadata (amount as HubSpot stores it, a string)."""
        props = deal.get("properties") or {}
        return {
            "id": str(deal.get("id")),
            "name": props.get("dealname"),
            "stage": props.get("dealstage"),
            "amount": props.get("amount"),
            "pipeline": props.get("pipeline"),
            "close_date": iso_utc(props.get("closedate")),
        }

    def _customer(self, contact: dict[str, Any], deals: list[dict[str, Any]] | None) -> Customer:
        """A HubSpot contact as a Customer; deals are None where they were not read (search results)."""
        props = contact.get("properties") or {}
        tier = props.get(self.config.tier_property) if self.config.tier_property else None
        name = " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p)
        metadata = {
            "company": props.get("company"),
            "organization_name": props.get("company"),  # the key every connector fills with the company
            "lifecycle_stage": props.get("lifecyclestage"),
            "job_title": props.get("jobtitle"),
            "lead_status": props.get("hs_lead_status"),
            "vendor_phone": props.get("phone"),
            "mobile_phone": self.e164(props.get("mobilephone")),
            "deals": [self._deal(d) for d in deals] if deals is not None else None,
            "created_at": iso_utc(contact.get("createdAt") or props.get("createdate")),
            "updated_at": iso_utc(contact.get("updatedAt") or props.get("lastmodifieddate")),
        }
        tier, extra = mapped(self._mapping.customer, props, fallback_tier=tier)
        metadata.update(extra)
        return Customer(
            id=str(require(contact, "id", self.vendor)),
            name=name or props.get("email") or "",
            email=props.get("email"),
            phone=self.e164(props.get("phone") or props.get("mobilephone")),
            tier=str(tier) if tier else None,
            metadata={k: v for k, v in metadata.items() if v is not None},
        )

    def _ticket(
        self, ticket: dict[str, Any], *, contact_ids: list[str] | None = None, extra: dict[str, Any] | None = None
    ) -> Ticket:
        """A HubSpot ticket as a Ticket; the first associated contact is the customer."""
        props = ticket.get("properties") or {}
        stage, priority = props.get("hs_pipeline_stage"), props.get("hs_ticket_priority")
        contacts = associated_ids(ticket, "contacts") if contact_ids is None else contact_ids
        metadata = {
            "vendor_status": stage,  # the pipeline stage id
            "vendor_pipeline": props.get("hs_pipeline"),
            "vendor_priority": priority,
            "category": props.get("hs_ticket_category"),
            "source_type": props.get("source_type"),
            "owner_id": props.get("hubspot_owner_id"),
            "contact_ids": contacts or None,
            **mapped(self._mapping.ticket, props)[1],
            **(extra or {}),
        }
        return Ticket(
            id=str(require(ticket, "id", self.vendor)),
            subject=props.get("subject") or "",
            description=without_marker(props.get("content") or ""),
            status=self.status_for.get(stage or "", TicketStatus.open),
            priority=PRIORITY_FROM_HUBSPOT.get(priority or "", TicketPriority.medium),  # unset: medium
            customer_id=contacts[0] if contacts else None,
            created_at=iso_utc(ticket.get("createdAt") or props.get("createdate")),
            updated_at=iso_utc(ticket.get("updatedAt") or props.get("hs_lastmodifieddate")),
            metadata={k: v for k, v in metadata.items() if v is not None},
        )

    # --- operations ---------------------------------------------------------------------------

    async def get_customer(self, customer_id: str) -> Customer:
        """The contact with its deal ids in one GET, then every deal in one batch read (none when no deals)."""
        contact = await self._json(
            "GET",
            self._path("objects", f"contacts/{self.customer_id(customer_id)}"),
            params={"properties": ",".join(self.contact_properties), "associations": "deals"},
            operation="get_customer",
        )
        deal_ids = associated_ids(contact, "deals")[:100]  # a batch read takes up to 100 ids
        deals: list[dict[str, Any]] = []
        if deal_ids:
            data = await self._json(
                "POST",
                self._path("objects", "deals/batch/read"),
                json={"properties": list(DEAL_PROPERTIES), "inputs": [{"id": i} for i in deal_ids]},
                idempotent=True,  # a read, though sent as POST
                operation="get_customer",
            )
            # 207 lists deals deleted since the association was read under `errors`: summarize the rest.
            order = {deal_id: n for n, deal_id in enumerate(deal_ids)}
            deals = sorted(require(data, "results", self.vendor), key=lambda d: order.get(str(d.get("id")), len(order)))
        return self._customer(contact, deals)

    def _is_match(self, contact: dict[str, Any], phone: PhoneQuery | None, email: str | None) -> bool:
        """The email's owner, or an exact caller (a bare national number may belong to another country)."""
        props = contact.get("properties") or {}
        if email and (props.get("email") or "").lower() == email.lower():
            return True
        return phone is not None and any(self.matches_phone(props.get(p), phone) for p in PHONE_PROPERTIES)

    async def find_customers(self, *, phone: PhoneQuery | None, email: str | None, limit: int) -> list[Customer]:
        """One CRM search: a filter group per phone property (IN the caller's spellings) and one for the email.

        HubSpot keeps phones as typed and matches exactly, so the common spellings are listed; groups OR.
        """
        groups = []
        if phone:
            groups += [
                {"filters": [{"propertyName": prop, "operator": "IN", "values": list(phone.variants)}]}
                for prop in PHONE_PROPERTIES
            ]
        if email:
            groups.append({"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]})
        data = await self._json(
            "POST",
            self._path("objects", "contacts/search"),
            # A full page: the exact-caller check below may drop a few, and the caller's limit applies after it.
            json={"filterGroups": groups, "properties": self.contact_properties, "limit": self.search_page_max},
            idempotent=True,  # a search changes nothing
            operation="find_customers",
        )
        contacts = require(data, "results", self.vendor)
        return [self._customer(c, None) for c in contacts if self._is_match(c, phone, email)][:limit]

    def _ticket_path(self, ticket_id: str) -> str:
        """The path of one ticket, its id checked."""
        return self._path("objects", f"tickets/{self.ticket_id(ticket_id)}")

    async def _read_ticket(self, ticket_id: str, operation: str) -> dict[str, Any]:
        """`GET .../objects/tickets/{id}` with its properties and associated contacts."""
        return await self._json(
            "GET",
            self._ticket_path(ticket_id),
            params={"properties": ",".join(self.ticket_properties), "associations": "contacts"},
            operation=operation,
        )

    async def get_ticket(self, ticket_id: str) -> Ticket:
        """The ticket; its first associated contact is the customer."""
        return self._ticket(await self._read_ticket(ticket_id, "get_ticket"))

    async def _contact_for(self, ticket: TicketCreateRequest) -> str | None:
        """The contact to associate: the given id, else one found by email or phone (one search), else none."""
        if ticket.customer_id:
            return self.customer_id(ticket.customer_id)
        if not (ticket.customer_email or ticket.customer_phone):
            return None
        region = self.ctx.settings.default_phone_region
        phone = parse_phone(ticket.customer_phone, region) if ticket.customer_phone else None
        matches = await self.find_customers(phone=phone, email=ticket.customer_email, limit=1)
        return matches[0].id if matches else None

    @staticmethod
    def _content(ticket: TicketCreateRequest, contact_id: str | None) -> str:
        """The description; with no contact to associate, the caller's details go below it so they are not lost."""
        caller = [v for v in (ticket.customer_name, ticket.customer_email, ticket.customer_phone) if v]
        if contact_id or not caller:
            return ticket.description
        return f"{ticket.description}\n\nCaller: {', '.join(caller)}"

    async def find_created(self, marker: str, ticket: TicketCreateRequest) -> str | None:
        """`POST .../objects/tickets/search`: `content` CONTAINS_TOKEN the marker (the marker is one token).

        The search index may trail writes (not documented as read-after-write), hence `marker_search_lag_seconds`.
        Docs: https://developers.hubspot.com/docs/api-reference/2026-03/crm/search-the-crm
        """
        data = await self._json(
            "POST",
            self._path("objects", "tickets/search"),
            json={
                "filterGroups": [{"filters": [{"propertyName": "content", "operator": "CONTAINS_TOKEN", "value": marker}]}],
                "properties": ["content"],
                "limit": 10,
            },
            idempotent=True,  # a search changes nothing
            operation="create_ticket",
        )
        return created_by_marker(
            require(data, "results", self.vendor), marker,
            lambda record: (record.get("properties") or {}).get("content") or "",
            lambda record: str(require(record, "id", self.vendor)),
        )  # fmt: skip

    async def create_ticket(
        self, ticket: TicketCreateRequest, *, idempotency_key: str, marker: str | None = None
    ) -> Ticket:
        """`POST .../objects/tickets` → 201, associated to the contact.

        HubSpot takes no idempotency key here, so `_request` repeats the create only where HubSpot cannot have
        received it (429, no connection); the marker ends `content`, where `find_created` searches for it.
        """
        body, contact_id = await self._create_body(ticket, marker)
        data = await self._json("POST", self._path("objects", "tickets"), json=body, operation="create_ticket")
        # The create answer lists no associations: the customer is the contact just associated.
        return self._ticket(data, contact_ids=[contact_id] if contact_id else [])

    async def _create_body(self, ticket: TicketCreateRequest, marker: str | None) -> tuple[dict[str, Any], str | None]:
        """One ticket's create body (properties, its contact association) and that contact's id."""
        contact_id = await self._contact_for(ticket)
        properties = {
            "subject": ticket.subject,
            "content": with_marker(self._content(ticket, contact_id), marker),
            "hs_pipeline": self.config.pipeline,
            "hs_pipeline_stage": self.stage_for[ticket.status or TicketStatus.new],
        }
        if ticket.priority:
            properties["hs_ticket_priority"] = PRIORITY_TO_HUBSPOT[ticket.priority]
        properties.update({k: str(ticket.metadata[k]) for k in CREATE_PASSTHROUGH if k in ticket.metadata})
        properties.update(self._mapped_properties(ticket.metadata))
        body: dict[str, Any] = {"properties": properties}
        if contact_id:
            body["associations"] = [association(contact_id, TICKET_TO_CONTACT)]
        return body, contact_id

    async def _add_note(self, ticket_id: str, text: str) -> dict[str, Any]:
        """`POST .../objects/notes` on the ticket; `hs_note_body` is HTML, so the text is escaped."""
        body = html.escape(text).replace("\n", "<br>")
        return await self._json(
            "POST",
            self._path("objects", "notes"),
            json={
                "properties": {"hs_note_body": body, "hs_timestamp": iso_utc(time.time() * 1000)},
                "associations": [association(ticket_id, NOTE_TO_TICKET)],
            },
            operation="update_ticket",
        )

    async def update_ticket(self, update: TicketUpdateRequest) -> Ticket:
        """Read the ticket (it must exist; its contacts), PATCH its properties, add a comment as a note.

        HubSpot notes are internal: this API has no public reply, so `public` is only recorded in metadata.
        """
        # HubSpot tickets have no tags, so `tags` has no field here.
        properties = self.ticket_changes(
            update, fields=UPDATE_PROPERTIES, status=self.stage_for, priority=PRIORITY_TO_HUBSPOT
        )
        properties.update(self._mapped_properties(update.metadata or {}))
        if not properties and update.comment is None:
            message = "HubSpot tickets have no tags; give status, priority, subject or comment"
            raise InvalidRequest(message, crm_type=self.vendor)
        current = await self._read_ticket(update.ticket_id, "update_ticket")
        ticket = current
        if properties:
            # Setting the same values again is harmless, so a failed PATCH may be retried.
            ticket = await self._json(
                "PATCH",
                self._ticket_path(update.ticket_id),
                json={"properties": properties},
                idempotent=True,
                operation="update_ticket",
            )
        extra: dict[str, Any] = {}
        if update.comment:
            note = await self._add_note(str(require(current, "id", self.vendor)), update.comment.body)
            extra = {"note_id": str(require(note, "id", self.vendor)), "note_public_requested": update.comment.public}
        return self._ticket(ticket, contact_ids=associated_ids(current, "contacts"), extra=extra)

    # --- field mapping (connectors/field_mapping.py) ----------------------------------------------

    def _mapped_properties(self, metadata: Mapping[str, Any]) -> dict[str, str]:
        """The mapped metadata keys as ticket properties (HubSpot property values are strings)."""
        return {name: str(value) for name, value in to_write(self._mapping.ticket, metadata).items()}

    async def check_field_mapping(self, mapping: FieldMapping) -> list[dict[str, Any]]:
        """Each mapped property the portal lacks, per `GET .../properties/{objectType}` (contacts, tickets);
        refused in HubSpot's PROPERTY_DOESNT_EXIST words.

        https://developers.hubspot.com/docs/api-reference/latest/crm/properties/get-properties
        """
        problems: list[dict[str, Any]] = []
        for kind, object_type in (("customer", "contacts"), ("ticket", "tickets")):
            entries = getattr(mapping, kind)
            if entries:
                data = await self._json("GET", self._path("properties", object_type), operation="list_fields")
                known = {str(p.get("name")) for p in require(data, "results", self.vendor) if isinstance(p, dict)}
                problems += unknown_fields(kind, entries, known, None, 'Property "{name}" does not exist')
        return problems
