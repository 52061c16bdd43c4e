"""Intercom's REST API, the part the CRM and the handoff share: config, auth, errors, contacts and the acting admin.

Docs (API version pinned by `Intercom-Version`, default 2.11): https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from connectors import auth
from connectors.auth import Auth
from connectors.base import require
from connectors.field_mapping import FieldMapping
from connectors.http import UpstreamConnector
from connectors.upstream_answers import UpstreamResponse
from connectors.vendor_config import VendorConfig
from errors import (
    AuthFailed,
    CRMError,
    InvalidConfig,
    MalformedAnswer,
    NotFound,
    RateLimited,
    UpstreamUnavailable,
    ValidationFailed,
)
from api_models.values import iso_utc
from models import TicketPriority, TicketStatus
from phone import PhoneQuery, to_e164

DOCS = "https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io"
API_VERSION = "2.11"
# Intercom's data hosting regions: https://developers.intercom.com/docs/build-an-integration/learn-more/rest-apis#regional-hosting
REGION_HOSTS: Mapping[str, str] = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}
VERSION = re.compile(r"[0-9]\.[0-9]{1,2}|Preview")
# Intercom's contact ids are 24 hex digits (a Mongo-style object id), e.g. 6657a1c2b1e5f2a3c4d5e6f7.
CONTACT_ID = re.compile(r"[0-9a-f]{24}", re.ASCII)
CONTACT_ID_FORM = "24 hexadecimal digits, e.g. 6657a1c2b1e5f2a3c4d5e6f7"
# A search query takes at most 15 filters in one group (docs: Search contacts, "Query limits").
SEARCH_FILTERS_MAX = 15

# Intercom error codes (https://developers.intercom.com/docs/references/2.11/rest-api/errors/error-codes) ->
# contract errors; a code not listed falls back to the HTTP status table.
ERROR_CODES: Mapping[str, type[CRMError]] = {
    "unauthorized": AuthFailed,
    "token_unauthorized": AuthFailed,
    "token_revoked": AuthFailed,
    "token_not_found": AuthFailed,
    "token_blocked": AuthFailed,
    "forbidden": AuthFailed,
    "api_plan_restricted": AuthFailed,
    "not_found": NotFound,
    "contact_not_found": NotFound,
    "ticket_not_found": NotFound,
    "conversation_not_found": NotFound,
    "team_not_found": NotFound,
    "admin_not_found": NotFound,
    "parameter_invalid": ValidationFailed,
    "parameter_not_found": ValidationFailed,
    "missing_parameter": ValidationFailed,
    "parameter_mismatch": ValidationFailed,
    # UpdateTicket 2.12+: "Ticket state id is not valid or is not associated with the ticket type"
    "ticket_state_id_invalid": ValidationFailed,
    "conflict": ValidationFailed,
    "unique_user_constraint": ValidationFailed,
    "intercom_version_invalid": InvalidConfig,
    "rate_limit_exceeded": RateLimited,
    "server_error": UpstreamUnavailable,
    "service_unavailable": UpstreamUnavailable,
}

# Ticket states of API 2.11 (a string; from 2.12 on an object whose `category` is the same word) <-> unified.
# `open: false` is a closed ticket whatever its state.
STATUS_FROM_INTERCOM: Mapping[str, TicketStatus] = {
    "submitted": TicketStatus.new,
    "in_progress": TicketStatus.open,
    "waiting_on_customer": TicketStatus.pending,
    "resolved": TicketStatus.solved,
}
STATUS_TO_INTERCOM: Mapping[TicketStatus, str] = {
    TicketStatus.new: "submitted",
    TicketStatus.open: "in_progress",
    TicketStatus.pending: "waiting_on_customer",
    TicketStatus.solved: "resolved",
    TicketStatus.closed: "resolved",  # and open: false
}
# UpdateTicket's `state` in 2.11 takes only these (`update_ticket_request` in descriptions/2.11 of Intercom's OpenAPI,
# https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/tickets/updateticket): a ticket
# cannot be moved back to submitted. From 2.12 on `state` is gone and `ticket_state_id` names one of the
# workspace's states (GET /ticket_states), of any category:
# https://developers.intercom.com/docs/references/2.14/rest-api/api.intercom.io/tickets/updateticket
UPDATE_STATES_2_11 = frozenset({"in_progress", "waiting_on_customer", "resolved"})
STATE_IDS_SINCE = (2, 12)
TICKET_STATES_TTL_SECONDS = 300.0  # a workspace's ticket states change by hand in settings, rarely
TICKET_STATES_KEY = "intercom_ticket_states"  # key in the app-lifetime `ctx.shared`
TICKET_STATES_MAX = 1_000  # tenants kept

# Intercom tickets have no priority of their own: a ticket type attribute holds it (`priority_attribute`).
PRIORITY_TO_INTERCOM: Mapping[TicketPriority, str] = {
    TicketPriority.low: "Low",
    TicketPriority.medium: "Medium",
    TicketPriority.high: "High",
    TicketPriority.urgent: "Urgent",
}


class IntercomConfig(VendorConfig):
    """An access token, the region and API version, and what tickets and handoffs use (type, admin, team)."""

    access_token: SecretStr
    region: Literal["us", "eu", "au"] = "us"
    api_version: str = Field(API_VERSION, description="The Intercom-Version header sent on every call.")
    ticket_type_id: str | None = Field(None, description="The ticket type tickets are created with (GET /ticket_types).")
    admin_id: str | None = Field(None, description="The admin notes and assignments are made as; default the token's (GET /me).")
    team_id: str | None = Field(None, description="The team a handoff is assigned to.")
    assignee_id: str | None = Field(None, description="The admin a handoff is assigned to (instead of a team; neither: the first available teammate).")
    priority_attribute: str | None = Field(None, description="The ticket type attribute that holds the priority.")
    tier_attribute: str = Field("tier", description="The company custom attribute read as the customer's tier.")
    status_map: dict[str, TicketStatus] = Field(default_factory=dict)
    # custom_attributes.<name> for contacts, ticket_attributes.<name> for tickets (connectors/intercom.py)
    field_mapping: FieldMapping | None = None
    fallback_crm: str | None = None

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        """One of Intercom's version names (2.11, 2.14, Preview), so the header cannot carry anything else."""
        if not VERSION.fullmatch(value):
            raise ValueError("must be an Intercom API version such as 2.11 or 2.14")
        return value

    @field_validator("ticket_type_id", "admin_id", "team_id", "assignee_id")
    @classmethod
    def _numeric(cls, value: str | None) -> str | None:
        """Intercom's ticket type, admin and team ids are numbers (sent as strings)."""
        if value is not None and not re.fullmatch(r"[0-9]{1,20}", value, re.ASCII):
            raise ValueError("must be an Intercom id of 1 to 20 digits")
        return value


def state_category(value: Any) -> str | None:
    """A ticket's state word: the 2.11 string, or the category of a 2.12+ state object."""
    if isinstance(value, dict):
        value = value.get("category")
    return value if isinstance(value, str) else None


def version_key(version: str) -> tuple[int, int]:
    """An Intercom-Version as a comparable pair; Preview is newer than every numbered version."""
    if version == "Preview":
        return (99, 0)
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


def takes_state_ids(version: str) -> bool:
    """Whether UpdateTicket takes `ticket_state_id` (2.12 and later) rather than 2.11's `state` word."""
    return version_key(version) >= STATE_IDS_SINCE


@dataclasses.dataclass(frozen=True)
class TicketState:
    """One workspace ticket state: its id, its category, and the ticket types it belongs to (None: not stated)."""

    id: str
    category: str
    ticket_types: frozenset[str] | None


def read_ticket_states(listed: list[Any]) -> list[TicketState]:
    """`GET /ticket_states`'s `data`, without archived states (the list includes them) or unreadable entries.

    Docs: https://developers.intercom.com/docs/references/2.14/rest-api/api.intercom.io/ticket-states/listticketstates
    """
    states = []
    for entry in listed:
        if not isinstance(entry, dict) or entry.get("archived") is True:
            continue
        sid, category = entry.get("id"), entry.get("category")
        if not isinstance(sid, (str, int)) or isinstance(sid, bool) or category not in STATUS_FROM_INTERCOM:
            continue
        types = entry.get("ticket_types")
        named = None
        if isinstance(types, dict) and isinstance(types.get("data"), list):
            named = frozenset(str(t["id"]) for t in types["data"] if isinstance(t, dict) and t.get("id") is not None)
        states.append(TicketState(str(sid), category, named))
    return states


def state_ids(states: Iterable[TicketState], category: str, ticket_type: str | None) -> list[str]:
    """The ids of the category's states, in the vendor's order: of this ticket type, or (None) of any type."""
    found = [s.id for s in states if s.category == category and (
        s.ticket_types is None or (ticket_type in s.ticket_types if ticket_type else bool(s.ticket_types)))]
    return list(dict.fromkeys(found))


class TicketStates:
    """Each tenant's ticket states for a few minutes, over the app-lifetime shared state (per replica)."""

    def __init__(self, shared: MutableMapping[str, Any], clock: Callable[[], float] = time.monotonic) -> None:
        """`clock` is injectable so tests never sleep."""
        self.entries: dict[str, tuple[float, list[TicketState]]] = shared.setdefault(TICKET_STATES_KEY, {})
        self.loading: dict[str, asyncio.Task[list[TicketState]]] = shared.setdefault(TICKET_STATES_KEY + ":loading", {})
        self.clock = clock

    async def get(self, tenant: str, load: Callable[[], Awaitable[list[TicketState]]]) -> list[TicketState]:
        """The fresh states, else one `load` per tenant however many updates ask at once (single flight).

        Each caller awaits the shared load shielded, so a caller that gives up (its deadline) leaves it to the rest.
        """
        states = self.fresh(tenant)
        if states is not None:
            return states
        task = self.loading.get(tenant)
        if task is None:
            task = self.loading[tenant] = asyncio.ensure_future(load())
            task.add_done_callback(lambda done: self._loaded(tenant, done))
        return await asyncio.shield(task)

    def _loaded(self, tenant: str, task: asyncio.Task[list[TicketState]]) -> None:
        """Keep what a load read; a failed one is only forgotten (its error reached every caller that waited)."""
        self.loading.pop(tenant, None)
        if not task.cancelled() and task.exception() is None:
            self.put(tenant, task.result())

    def fresh(self, tenant: str) -> list[TicketState] | None:
        """The tenant's states while younger than the TTL."""
        entry = self.entries.get(tenant)
        return entry[1] if entry and self.clock() - entry[0] < TICKET_STATES_TTL_SECONDS else None

    def put(self, tenant: str, states: list[TicketState]) -> None:
        """Keep a tenant's states, evicting the oldest tenant when full."""
        self.entries.pop(tenant, None)
        if len(self.entries) >= TICKET_STATES_MAX:
            self.entries.pop(next(iter(self.entries)))
        self.entries[tenant] = (self.clock(), states)

    def forget(self, tenant: str) -> None:
        """Drop a tenant's states (Intercom refused one of them), so the next update reads them again."""
        self.entries.pop(tenant, None)


def epoch_iso(value: Any) -> str | None:
    """Intercom's Unix-seconds timestamps as ISO 8601 UTC (iso_utc reads numbers as epoch ms)."""
    return iso_utc(value * 1000) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class IntercomAPI(UpstreamConnector):
    """What every Intercom call needs: the regional host, Bearer token and version header, error bodies, contacts."""

    vendor = "intercom"
    display_name = "Intercom"
    config_model = IntercomConfig
    config: IntercomConfig
    error_codes = ERROR_CODES
    tuning_fields = frozenset({"priority_attribute", "tier_attribute", "status_map", "field_mapping"})

    def _vendor_url(self) -> str:
        """The region's API host (a fixed table, so a config cannot name any other host)."""
        return REGION_HOSTS[self.config.region]

    def _auth(self) -> Auth:
        """Bearer access token, with the pinned Intercom-Version on every call (docs: Authentication, Versioning)."""
        token = self.config.access_token.get_secret_value()
        return auth.StaticAuth({"Authorization": f"Bearer {token}", "Intercom-Version": self.config.api_version})

    def _errors(self, response: UpstreamResponse) -> list[dict[str, Any]]:
        """The `errors` of Intercom's `{"type":"error.list","errors":[{code,message,field?}]}` body."""
        body = response.error_json()
        if not isinstance(body, dict):
            return []
        return [e for e in body.get("errors") or [] if isinstance(e, dict)]

    def _error_codes(self, response: UpstreamResponse) -> Iterable[str]:
        """Each error's `code`."""
        return [str(e.get("code")) for e in self._errors(response)]

    def _error_detail(self, response: UpstreamResponse) -> tuple[str, Any]:
        """The errors' messages joined; field errors keyed by field for callers."""
        errors = self._errors(response)
        if not errors:
            return f"Intercom answered {response.status}", None
        message = "; ".join(f"{e.get('code')}: {e.get('message') or ''}".strip() for e in errors)
        fields = {str(e["field"]): [{"message": e.get("message"), "code": e.get("code")}] for e in errors if e.get("field")}
        return message, fields or None

    # --- contacts ---------------------------------------------------------------------------------

    async def search_contacts(self, query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        """`POST /contacts/search` → `{"type":"list","data":[...]}`. Docs: https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/contacts/searchcontacts"""
        body = {"query": query, "pagination": {"per_page": max(1, min(limit, 150))}}
        data = await self._json("POST", "/contacts/search", json=body, idempotent=True, operation="find_customers")
        found = require(data, "data", self.vendor, kind=list)
        return [c for c in found if isinstance(c, dict)]

    async def contacts_by_phone(self, phone: PhoneQuery, limit: int) -> list[dict[str, Any]]:
        """Contacts whose `phone` is any common spelling of the number (Intercom matches `=` exactly), verified."""
        spellings = phone.variants[:SEARCH_FILTERS_MAX]
        query = {"operator": "OR", "value": [{"field": "phone", "operator": "=", "value": v} for v in spellings]}
        found = await self.search_contacts(query, limit)
        return [c for c in found if self.same_phone(c.get("phone"), phone)]

    def same_phone(self, stored: Any, phone: PhoneQuery) -> bool:
        """Whether a stored number is the caller's."""
        return isinstance(stored, str) and to_e164(stored, self.ctx.settings.default_phone_region) == phone.e164

    async def contacts_by_email(self, email: str, limit: int) -> list[dict[str, Any]]:
        """Contacts with this email (`=` is exact)."""
        return await self.search_contacts({"field": "email", "operator": "=", "value": email}, limit)

    async def create_contact(self, *, name: str | None, email: str | None, phone: str | None) -> dict[str, Any]:
        """`POST /contacts` as a lead (a caller Intercom does not know). Docs: https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/contacts/createcontact"""
        body = {"role": "lead", **{k: v for k, v in {"name": name, "email": email, "phone": phone}.items() if v}}
        # A repeat makes at worst a second lead; a contact is not worth losing the call over.
        data = await self._json("POST", "/contacts", json=body, idempotent=True, operation="create_contact")
        require(data, "id", self.vendor, kind=str)
        return data

    async def acting_admin(self) -> str:
        """The admin notes and assignments are made as: `admin_id`, else the token's own (`GET /me`).

        Docs: https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/admins/identifyadmin
        """
        if self.config.admin_id:
            return self.config.admin_id
        me = await self._json("GET", "/me", operation="identify_admin")
        admin = require(me, "id", self.vendor)
        if not isinstance(admin, (str, int)) or isinstance(admin, bool):
            raise MalformedAnswer("the intercom /me answer's 'id' is not an id", crm_type=self.vendor)
        return str(admin)
