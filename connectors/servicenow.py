"""ServiceNow Table API: users (sys_user, or CSM's customer_contact) are customers, incidents are tickets.

Docs: Table API, https://www.servicenow.com/docs/r/api-reference/rest-apis/c_TableAPI.html
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors import auth
from connectors.auth import Auth, OAuthAuth, OAuthToken
from connectors.base import BaseCRMConnector, TicketPage, TicketQuery, require, vendor_statuses
from connectors.field_mapping import FieldMapping
from connectors.hosts import check_dns_label, only_label
from connectors.context import ConnectorContext
from connectors.servicenow_fields import ServiceNowFieldMapping
from connectors.upstream_answers import UpstreamResponse
from connectors.vendor_config import CredentialCheck, VendorConfig
from errors import AuthFailed, CRMError, InvalidRequest, NotFound, NotSupported, SessionExpired, ValidationFailed
from idempotency import fingerprint
from api_models.values import iso_utc
from models import Customer, Ticket, TicketCreateRequest, TicketPriority, TicketStatus, TicketUpdateRequest
from phone import PhoneQuery, parse_phone
from tokens import token_store

SERVICENOW_SUFFIX = ".service-now.com"
TABLE = "/api/now/table"
TOKEN_PATH = "/oauth_token.do"
DOCS = "https://www.servicenow.com/docs/r/api-reference/rest-apis/c_TableAPI.html"
# A sys_id: 32 lower-case hex characters (a GUID without dashes).
SYS_ID = re.compile(r"[0-9a-f]{32}", re.ASCII)
SYS_ID_FORM = "32 hexadecimal characters (a sys_id), e.g. 9d385017c611228701d22104cc95c371"
FIELD_PATH = re.compile(r"[a-z][a-z0-9_]{0,79}(?:\.[a-z][a-z0-9_]{0,79}){0,3}", re.ASCII)  # u_tier, company.u_tier

# The customer table -> its reference to the organisation (sys_user.company -> core_company; CSM's
# customer_contact, which extends sys_user, -> customer_account).
ORG_FIELD: dict[str, str] = {"sys_user": "company", "customer_contact": "account"}
CUSTOMER_FIELDS = (
    "sys_id", "name", "first_name", "last_name", "email", "phone", "mobile_phone", "title", "user_name",
    "active", "time_zone", "preferred_language", "sys_created_on", "sys_updated_on",
)  # fmt: skip
INCIDENT_FIELDS = (
    "sys_id", "number", "short_description", "description", "caller_id", "state", "priority", "impact",
    "urgency", "category", "subcategory", "contact_type", "assignment_group", "assigned_to", "opened_at",
    "resolved_at", "closed_at", "close_code", "correlation_id", "sys_created_on", "sys_updated_on",
)  # fmt: skip
PHONE_FIELDS = ("phone", "mobile_phone")  # both are plain strings on sys_user; a caller may be under either

# Incident state (the base system's choices; instances add their own, so the tables merge per tenant).
STATUS_FROM_SERVICENOW: dict[str, TicketStatus] = {
    "1": TicketStatus.new,
    "2": TicketStatus.open,  # In Progress
    "3": TicketStatus.pending,  # On Hold
    "6": TicketStatus.solved,  # Resolved
    "7": TicketStatus.closed,
    "8": TicketStatus.closed,  # Canceled
}
STATUS_TO_SERVICENOW: dict[TicketStatus, str] = {
    TicketStatus.new: "1",
    TicketStatus.open: "2",
    TicketStatus.pending: "3",
    TicketStatus.solved: "6",
    TicketStatus.closed: "7",
}
# Priority is computed by the instance from impact x urgency (the base Priority Lookup Rules), so it is
# read as priority and written as the (impact, urgency) pair whose product is the wanted priority.
PRIORITY_FROM_SERVICENOW: dict[str, TicketPriority] = {
    "1": TicketPriority.urgent,  # Critical
    "2": TicketPriority.high,
    "3": TicketPriority.medium,  # Moderate
    "4": TicketPriority.low,
    "5": TicketPriority.low,  # Planning
}
PRIORITY_TO_SERVICENOW: dict[TicketPriority, tuple[int, int]] = {
    TicketPriority.urgent: (1, 1),  # -> 1 Critical
    TicketPriority.high: (1, 2),  # -> 2 High
    TicketPriority.medium: (2, 2),  # -> 3 Moderate
    TicketPriority.low: (2, 3),  # -> 4 Low
}
DEFAULT_PRIORITY = TicketPriority.medium
CONTACT_TYPE_PHONE = "phone"  # incident.contact_type: tickets a voice platform opens come from a call
UPDATE_FIELDS: dict[str, str] = {"status": "state", "subject": "short_description"}
NO_PRIORITY_FIELD: dict[TicketPriority, None] = dict.fromkeys(TicketPriority)  # priority is written as impact/urgency
# Incident fields a caller may pass through `metadata` on create, as ServiceNow names them.
CREATE_PASSTHROUGH = ("category", "subcategory", "assignment_group", "assigned_to", "cmdb_ci", "contact_type")

# ServiceNow's errors carry no code, only `{"error":{"message","detail"},"status":"failure"}`; the service
# names two of its own: an OAuth token refused as expired, and the token endpoint's OAuth error.
TOKEN_EXPIRED = "oauth_token_expired"
OAUTH_ERROR = "oauth_error"
ERROR_CODES: dict[str, type[CRMError]] = {TOKEN_EXPIRED: SessionExpired, OAUTH_ERROR: AuthFailed}


def encoded_value(value: str) -> str:
    """A value for an encoded query: `^` (the condition separator) doubled, which ServiceNow reads as a literal.

    The field and operator come before the value, so an `=` in it cannot change the query; nothing else is
    special after the operator. Control characters are refused rather than guessed at.
    """
    if any(ord(c) < 32 for c in value):
        raise InvalidRequest("a search value may not hold control characters", crm_type=ServiceNowConnector.vendor)
    return value.replace("^", "^^")


class ServiceNowConfig(VendorConfig):
    """`instance` plus Basic `username`/`password`, or OAuth `client_id`/`client_secret` (with or without a user)."""

    instance: str  # acme, or acme.service-now.com
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    access_token: SecretStr | None = None  # a token issued elsewhere, used until it is refused
    customer_table: Literal["sys_user", "customer_contact"] = "sys_user"
    tier_field: str | None = None  # e.g. company.u_tier (dot-walked); none by default: no base field holds a tier
    status_map: dict[str, TicketStatus] = Field(default_factory=dict)  # {"10": "open"}
    status_write_map: dict[TicketStatus, str] = Field(default_factory=dict)  # {"pending": "10"}
    priority_map: dict[str, TicketPriority] = Field(default_factory=dict)  # {"5": "medium"}
    priority_write_map: dict[TicketPriority, tuple[int, int]] = Field(default_factory=dict)  # {"low": [3, 3]}
    # customer-table fields (company.u_tier walks one reference) and incident fields (connectors/servicenow_fields.py)
    field_mapping: FieldMapping | None = None

    host_fields: ClassVar[frozenset[str]] = frozenset({"instance"})
    env_checks = {"instance": lambda value: only_label(value, SERVICENOW_SUFFIX, "acme", suffix_allowed=True)}

    @field_validator("tier_field")
    @classmethod
    def _check_tier_field(cls, value: str | None) -> str | None:
        """The name goes into sysparm_fields, so it must be a plain (dot-walked) field name."""
        if value and not FIELD_PATH.fullmatch(value):
            raise ValueError("must be a field name such as company.u_tier")
        return value or None

    @model_validator(mode="after")
    def _needs_credentials(self) -> ServiceNowConfig:
        """Basic, or OAuth (a password or client-credentials grant), or a bare access token."""
        if self.password and not self.username:
            raise ValueError("a password needs its username")
        if bool(self.client_id) != bool(self.client_secret):
            raise ValueError("client_id and client_secret go together")
        if not (self.password or self.client_id or self.access_token):
            raise ValueError("give username and password, or client_id and client_secret, or access_token")
        return self


class ServiceNowConnector(ServiceNowFieldMapping, BaseCRMConnector):
    """ServiceNow: sys_user (or customer_contact) records are customers, incidents are tickets."""

    vendor = "servicenow"
    display_name = "ServiceNow"
    config_model = ServiceNowConfig
    config: ServiceNowConfig
    # The cheapest authenticated call: one sys_id of the customer table.
    credential_check = CredentialCheck(
        "GET", TABLE + "/{customer_table}", DOCS, params={"sysparm_limit": "1", "sysparm_fields": "sys_id"}
    )
    error_codes = ERROR_CODES
    tuning_fields = frozenset({"customer_table", "tier_field", "status_map", "status_write_map", "priority_map",
                               "priority_write_map", "field_mapping"})  # fmt: skip
    incident_fields = INCIDENT_FIELDS
    # Rate limits are rules each instance sets (per hour, per user or role), so there is no published budget.
    # https://www.servicenow.com/docs/r/api-reference/rest-api-explorer/inbound-REST-API-rate-limiting.html documents
    # X-RateLimit-Limit, -Reset and -Rule but no remaining count, so no answer says how much is left: only a 429's
    # Retry-After paces the calls (no rate_limit_headers).
    rate_limit_window_seconds = 3600.0
    emulator = "sandbox.servicenow:ServiceNowEmulator"
    sandbox_credentials = {
        "instance": "sandbox", "username": "sandbox.integration", "password": "sandbox-password",
        "tier_field": "company.u_tier",
    }  # fmt: skip
    sandbox_seed = {
        "customer_id": "a8f98bb0eb32010045e1a5115206fe3a",
        "ticket_id": "9d385017c611228701d22104cc95c371",
        "phone": "+971 50 123 4567",
    }
    customer_id_pattern: ClassVar[re.Pattern[str]] = SYS_ID
    customer_id_form: ClassVar[str] = SYS_ID_FORM
    ticket_id_pattern: ClassVar[re.Pattern[str]] = SYS_ID
    ticket_id_form: ClassVar[str] = SYS_ID_FORM
    # The marker is incident.correlation_id, read by a Table API query on the database: no index lag.
    marker_search_lag_seconds: ClassVar[float] = 0.0

    def __init__(self, config: ServiceNowConfig, context: ConnectorContext) -> None:
        """The state and priority tables, this instance's overrides merged once."""
        super().__init__(config, context)
        self.status_from = {**STATUS_FROM_SERVICENOW, **config.status_map}
        self.status_to = {**STATUS_TO_SERVICENOW, **config.status_write_map}
        self.priority_from = {**PRIORITY_FROM_SERVICENOW, **config.priority_map}
        self.priority_to = {**PRIORITY_TO_SERVICENOW, **config.priority_write_map}
        self.org_field = ORG_FIELD[config.customer_table]

    def _vendor_url(self) -> str:
        """`https://{instance}.service-now.com`, the instance being one DNS label (SSRF guard)."""
        name = self.config.instance.lower().removesuffix(SERVICENOW_SUFFIX)
        return f"https://{check_dns_label(name, 'instance (acme or acme.service-now.com)', self.vendor)}{SERVICENOW_SUFFIX}"

    # --- auth: Basic, or OAuth through the shared token cache ------------------------------------

    def _grant(self) -> dict[str, str] | None:
        """The OAuth form (password grant with a user, else client credentials), or None without a client."""
        config = self.config
        if not (config.client_id and config.client_secret):
            return None
        form = {"client_id": config.client_id, "client_secret": config.client_secret.get_secret_value()}
        if config.username and config.password:
            return {"grant_type": "password", **form, "username": config.username,
                    "password": config.password.get_secret_value()}  # fmt: skip
        return {"grant_type": "client_credentials", **form}

    async def _fetch_token(self) -> OAuthToken:
        """`POST /oauth_token.do`, form-encoded: `{"access_token","expires_in",...}` (30 minutes by default).

        Docs: https://www.servicenow.com/docs/r/platform-security/authentication/r_OAuthAPIRequestParameters.html (30 minutes: .../c_OAuthApplications.html)
        """
        response = await self._request(
            "POST", TOKEN_PATH, data=self._grant(), idempotent=True, operation="oauth_token", authenticate=False
        )
        body = response.json()
        expires_in = body.get("expires_in") if isinstance(body, dict) else None
        expiry = float(expires_in) if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) else None
        token = str(require(body, "access_token", self.vendor, kind=str))
        return OAuthToken(token, expires_at=None if expiry is None else time.time() + expiry)

    def _auth(self) -> Auth:
        """OAuth when a client (or a bare token) is configured, else Basic."""
        grant = self._grant()
        given = self.config.access_token.get_secret_value() if self.config.access_token else None
        if grant is None and given is None:
            assert self.config.username and self.config.password  # the model validator saw to it
            return auth.basic(self.config.username, self.config.password.get_secret_value())
        key = None if grant is None else fingerprint({"base_url": self.base_url, **grant})
        store = token_store(self.ctx.shared, self.ctx.deadline.remaining())
        return OAuthAuth(store, key, self._fetch_token if key else None, given)

    # --- errors -------------------------------------------------------------------------------------

    def _error_codes(self, response: UpstreamResponse) -> list[str]:
        """A 401 to a Bearer token is an expired one (renewed once); the token endpoint's `{"error": "..."}`."""
        body = response.error_json()
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return [OAUTH_ERROR]
        if response.status == 401 and self._sent_auth.get("Authorization", "").startswith("Bearer "):
            return [TOKEN_EXPIRED]
        return []

    def _error_detail(self, response: UpstreamResponse) -> tuple[str, Any]:
        """`{"error":{"message","detail"},"status":"failure"}`: `message: detail`; OAuth's `error: error_description`."""
        body = response.error_json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            parts = [str(error[k]) for k in ("message", "detail") if error.get(k)]
            return ": ".join(parts) or f"ServiceNow answered {response.status}", None
        if isinstance(error, str):
            return ": ".join(str(p) for p in (error, body.get("error_description")) if p), None
        return f"ServiceNow answered {response.status}", None

    # --- mapping ------------------------------------------------------------------------------------

    def _result(self, data: Any, kind: type) -> Any:
        """The `result` every Table API answer wraps its record (or list of records) in."""
        return require(data, "result", self.vendor, kind=kind)

    def _customer_fields(self) -> str:
        """sysparm_fields for a customer: its own fields, the organisation's name dot-walked, the tier field."""
        extra = [self.org_field, f"{self.org_field}.name", *([self.config.tier_field] if self.config.tier_field else [])]
        return ",".join(dict.fromkeys([*CUSTOMER_FIELDS, *extra, *self._mapping.customer.values()]))

    def _record_id(self, record: Any) -> str:
        """A record's sys_id."""
        return str(require(record, "sys_id", self.vendor, kind=str))

    def _customer(self, record: dict[str, Any]) -> Customer:
        """A user (or contact) as a Customer; phone preferred, else mobile_phone."""
        tier = record.get(self.config.tier_field) if self.config.tier_field else None
        tier, extra = self._mapped_customer(record, tier)
        metadata = {
            "organization_id": record.get(self.org_field) or None,
            "organization_name": record.get(f"{self.org_field}.name") or None,
            "vendor_phone": record.get("phone") or None,
            "vendor_mobile": record.get("mobile_phone") or None,
            "mobile": self.e164(record.get("mobile_phone") or None),
            "title": record.get("title") or None,
            "user_name": record.get("user_name") or None,
            "active": record.get("active") == "true" if record.get("active") else None,
            "time_zone": record.get("time_zone") or None,
            "language": record.get("preferred_language") or None,
            "table": self.config.customer_table,
            "created_at": iso_utc(record.get("sys_created_on")),
            "updated_at": iso_utc(record.get("sys_updated_on")),
            **extra,
        }
        name = record.get("name") or " ".join(p for p in (record.get("first_name"), record.get("last_name")) if p)
        return Customer(
            id=self._record_id(record),
            name=name,
            email=record.get("email") or None,
            phone=self.e164(record.get("phone") or record.get("mobile_phone") or None),
            tier=str(tier) if tier else None,
            metadata={k: v for k, v in metadata.items() if v is not None},
        )

    def _ticket(self, record: dict[str, Any]) -> Ticket:
        """An incident as a Ticket; its number, codes and assignment stay in metadata."""
        state, priority = str(record.get("state") or ""), str(record.get("priority") or "")
        metadata = {
            "number": record.get("number") or None,
            "vendor_status": state or None,
            "vendor_priority": priority or None,
            "impact": record.get("impact") or None,
            "urgency": record.get("urgency") or None,
            "category": record.get("category") or None,
            "subcategory": record.get("subcategory") or None,
            "channel": record.get("contact_type") or None,
            "assignment_group": record.get("assignment_group") or None,
            "assigned_to": record.get("assigned_to") or None,
            "close_code": record.get("close_code") or None,
            "resolved_at": iso_utc(record.get("resolved_at")),
            "closed_at": iso_utc(record.get("closed_at")),
        }
        return self._mapped_ticket(Ticket(
            id=self._record_id(record),
            subject=record.get("short_description") or "",
            description=record.get("description") or "",
            status=self.status_from.get(state, TicketStatus.open),
            priority=self.priority_from.get(priority, TicketPriority.medium),
            customer_id=record.get("caller_id") or None,
            created_at=iso_utc(record.get("opened_at") or record.get("sys_created_on")),
            updated_at=iso_utc(record.get("sys_updated_on")),
            metadata={k: v for k, v in metadata.items() if v is not None},
        ), record)

    # --- reads --------------------------------------------------------------------------------------

    def _params(self, fields: str, **extra: str) -> dict[str, str]:
        """Raw values (not display values) and bare sys_ids for references, only the fields mapped."""
        return {"sysparm_display_value": "false", "sysparm_exclude_reference_link": "true",
                "sysparm_fields": fields, **extra}  # fmt: skip

    async def _query(self, table: str, query: str, fields: str, limit: int, operation: str) -> list[dict[str, Any]]:
        """`GET /api/now/table/{table}?sysparm_query=...`: the records matching an encoded query."""
        params = self._params(fields, sysparm_query=query, sysparm_limit=str(limit))
        records = self._result(await self._json("GET", f"{TABLE}/{table}", params=params, operation=operation), list)
        return [r for r in records if isinstance(r, dict)]

    async def get_customer(self, customer_id: str) -> Customer:
        """`GET /api/now/table/{sys_user|customer_contact}/{sys_id}`."""
        path = f"{TABLE}/{self.config.customer_table}/{self.customer_id(customer_id)}"
        data = await self._json("GET", path, params=self._params(self._customer_fields()), operation="get_customer")
        return self._customer(self._result(data, dict))

    async def _by_phone(self, phone: PhoneQuery, limit: int) -> list[dict[str, Any]]:
        """One query: every common spelling on phone and mobile_phone (`=` is exact), then checked as E.164."""
        terms = [f"{field}={encoded_value(v)}" for v in phone.variants for field in PHONE_FIELDS]
        found = await self._query(
            self.config.customer_table, "^OR".join(terms), self._customer_fields(), limit, "find_customers"
        )
        return [r for r in found if any(self.matches_phone(r.get(f) or None, phone) for f in PHONE_FIELDS)]

    async def _by_email(self, email: str, limit: int) -> list[dict[str, Any]]:
        """`email=<value>` (ServiceNow compares strings case-insensitively), checked again here."""
        found = await self._query(
            self.config.customer_table, f"email={encoded_value(email)}", self._customer_fields(), limit, "find_customers"
        )
        return [r for r in found if str(r.get("email") or "").lower() == email.lower()]

    async def get_ticket(self, ticket_id: str) -> Ticket:
        """`GET /api/now/table/incident/{sys_id}`."""
        path = f"{TABLE}/incident/{self.ticket_id(ticket_id)}"
        data = await self._json("GET", path, params=self._params(self._incident_fields()), operation="get_ticket")
        return self._ticket(self._result(data, dict))

    def _ticket_query(self, query: TicketQuery) -> str:
        """The encoded query for a ticket search: caller, states, last change and text, newest change first."""
        terms = [f"caller_id={self.customer_id(query.customer_id)}"] if query.customer_id else []
        if query.statuses:
            terms.append("stateIN" + ",".join(vendor_statuses(self.status_from, query.statuses)))
        if query.updated_since:  # sys_updated_on is stored in UTC as `YYYY-MM-DD HH:MM:SS`
            terms.append(f"sys_updated_on>={query.updated_since[:19].replace('T', ' ')}")
        if query.text:
            text = encoded_value(query.text)
            terms.append(f"short_descriptionLIKE{text}^ORdescriptionLIKE{text}")
        return "^".join([*terms, "ORDERBYDESCsys_updated_on"])

    async def list_tickets(self, query: TicketQuery, page: Mapping[str, Any] | None) -> TicketPage:
        """Incidents by caller: one `GET /api/now/table/incident?sysparm_query=caller_id=...^ORDERBYDESCsys_updated_on`,
        paged by sysparm_offset; one record more than asked tells whether a next page exists.

        Docs: the Table API's sysparm_query/_limit/_offset (DOCS) and encoded queries,
        https://www.servicenow.com/docs/r/platform-user-interface/c_EncodedQueryStrings.html
        """
        if query.tags:
            raise NotSupported(
                "ServiceNow incidents have no tags: search by caller, status, text or updated_since", crm_type=self.vendor
            )
        if query.statuses and not vendor_statuses(self.status_from, query.statuses):
            return TicketPage([])
        offset = page.get("offset", 0) if page else 0
        offset = offset if isinstance(offset, int) and 0 <= offset <= 100_000 else 0
        params = self._params(
            self._incident_fields(), sysparm_query=self._ticket_query(query),
            sysparm_limit=str(query.limit + 1), sysparm_offset=str(offset),
        )  # fmt: skip
        data = await self._json("GET", f"{TABLE}/incident", params=params, operation="list_tickets")
        records = [r for r in self._result(data, list) if isinstance(r, dict)]
        following = {"offset": offset + query.limit} if len(records) > query.limit else None
        return TicketPage([self._ticket(r) for r in records[: query.limit]], following)

    # --- writes -------------------------------------------------------------------------------------

    async def _caller(self, ticket: TicketCreateRequest) -> dict[str, str]:
        """caller_id: the given id, else the user found by email or phone; none when the caller is unknown."""
        if ticket.customer_id:
            return {"caller_id": await self._known(self.customer_id(ticket.customer_id))}
        found: list[dict[str, Any]] = []
        if ticket.customer_email:
            found = await self._by_email(ticket.customer_email, 1)
        if not found and ticket.customer_phone:
            found = await self._by_phone(parse_phone(ticket.customer_phone, self.ctx.settings.default_phone_region), 1)
        return {"caller_id": self._record_id(found[0])} if found else {}

    async def _known(self, customer_id: str) -> str:
        """The id, once the customer table has it: the Table API stores a dangling reference without a word."""
        path = f"{TABLE}/{self.config.customer_table}/{customer_id}"
        try:
            await self._json("GET", path, params=self._params("sys_id"), operation="create_ticket")
        except NotFound:
            raise ValidationFailed(
                f"customer_id {customer_id} is no {self.config.customer_table} record in ServiceNow", crm_type=self.vendor
            ) from None
        return customer_id

    @staticmethod
    def _unknown_caller(ticket: TicketCreateRequest) -> str:
        """Who called, for an incident with no caller_id (ServiceNow has no free-text caller field)."""
        parts = [p for p in (ticket.customer_name, ticket.customer_email, ticket.customer_phone) if p]
        return f"\n\nCaller: {', '.join(parts)}" if parts else ""

    def _impact_urgency(self, priority: TicketPriority) -> dict[str, str]:
        """The impact and urgency whose lookup gives this priority."""
        impact, urgency = self.priority_to[priority]
        return {"impact": str(impact), "urgency": str(urgency)}

    async def find_created(self, marker: str, ticket: TicketCreateRequest) -> str | None:
        """The incident whose correlation_id is the marker (`sysparm_query=correlation_id=<marker>`)."""
        found = await self._query("incident", f"correlation_id={marker}", "sys_id,correlation_id", 1, "create_ticket")
        return next((self._record_id(r) for r in found if r.get("correlation_id") == marker), None)

    async def create_ticket(
        self, ticket: TicketCreateRequest, *, idempotency_key: str, marker: str | None = None
    ) -> Ticket:
        """`POST /api/now/table/incident` → 201 `{"result": {...}}`, as a phone incident.

        ServiceNow takes no idempotency key: the marker goes in correlation_id (the field meant for an
        external system's reference), where `find_created` looks for it.
        """
        caller = await self._caller(ticket)
        body: dict[str, Any] = {
            "short_description": ticket.subject,
            "description": ticket.description + ("" if caller else self._unknown_caller(ticket)),
            "contact_type": CONTACT_TYPE_PHONE,
            **self._impact_urgency(ticket.priority or DEFAULT_PRIORITY),
            **caller,
        }
        if ticket.status:
            body["state"] = self.status_to[ticket.status]
        if marker:
            body["correlation_id"] = marker
        body.update({key: str(ticket.metadata[key]) for key in CREATE_PASSTHROUGH if key in ticket.metadata})
        body.update(self._mapped_writes(ticket.metadata))
        params = self._params(self._incident_fields())
        data = await self._json("POST", f"{TABLE}/incident", params=params, json=body, operation="create_ticket")
        return self._ticket(self._result(data, dict))

    async def update_ticket(self, update: TicketUpdateRequest) -> Ticket:
        """`PATCH /api/now/table/incident/{sys_id}`: fields and the comment in one call, so nothing half-applies.

        A public comment is `comments` (the caller sees it), an internal one `work_notes`; both journal
        fields are written through the record. Incidents have no tags, so tags are not sent.
        """
        path = f"{TABLE}/incident/{self.ticket_id(update.ticket_id)}"
        changes = self.ticket_changes(update, fields=UPDATE_FIELDS, status=self.status_to, priority=NO_PRIORITY_FIELD)
        if update.priority:
            changes.update(self._impact_urgency(update.priority))
        if update.comment:
            changes["comments" if update.comment.public else "work_notes"] = update.comment.body
        changes.update(self._mapped_writes(update.metadata or {}))
        params = self._params(self._incident_fields())
        if not changes:
            data = await self._json("GET", path, params=params, operation="update_ticket")
        else:
            # A PATCH sets the same values again when repeated; only a journal entry would be added twice.
            data = await self._json(
                "PATCH", path, params=params, json=changes, idempotent=not update.comment, operation="update_ticket"
            )
        return self._ticket(self._result(data, dict))
