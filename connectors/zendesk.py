"""Zendesk Support API v2: users (with their organization sideloaded), user search, tickets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import SecretStr, model_validator

from connectors.base import BaseCRMConnector, TicketPage, TicketQuery, require, vendor_statuses
from connectors.zendesk_bulk import TicketBatches
from connectors.hosts import check_dns_label, only_label
from connectors import auth
from connectors.field_mapping import NO_MAPPING, FieldMapping, mapped, nest, to_write
from connectors.auth import Auth
from connectors.upstream_answers import UpstreamResponse
from connectors.vendor_config import CredentialCheck, VendorConfig
from errors import InvalidRequest
from connectors.governor import RateBudget, RateHeaders
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

# Zendesk status/priority <-> unified. `hold` is Zendesk's "pending on a third party"; `normal` is medium.
STATUS_FROM_ZENDESK: dict[str, TicketStatus] = {
    "new": TicketStatus.new,
    "open": TicketStatus.open,
    "pending": TicketStatus.pending,
    "hold": TicketStatus.pending,
    "solved": TicketStatus.solved,
    "closed": TicketStatus.closed,
}
STATUS_TO_ZENDESK: dict[TicketStatus, str] = {
    TicketStatus.new: "new",
    TicketStatus.open: "open",
    TicketStatus.pending: "pending",
    TicketStatus.solved: "solved",
    TicketStatus.closed: "closed",
}
PRIORITY_FROM_ZENDESK: dict[str | None, TicketPriority] = {
    "low": TicketPriority.low,
    "normal": TicketPriority.medium,
    None: TicketPriority.medium,  # Zendesk leaves priority null until someone sets it
    "high": TicketPriority.high,
    "urgent": TicketPriority.urgent,
}
PRIORITY_TO_ZENDESK: dict[TicketPriority, str] = {
    TicketPriority.low: "low",
    TicketPriority.medium: "normal",
    TicketPriority.high: "high",
    TicketPriority.urgent: "urgent",
}

# Inside a quoted search value `"` ends the value and a backslash or `*` would change its meaning; Zendesk
# documents no escape for them (https://support.zendesk.com/hc/en-us/articles/4408886879258); an email
# carrying any of them, or a space or control character, is refused instead of being searched for.
UNQUOTABLE = frozenset('"\\*')

# A tag Zendesk search takes as one literal term (Zendesk tags are single words: letters, digits, _ - : / .).
SEARCH_TAG = re.compile(r"[A-Za-z0-9_\-:/.]{1,100}")

# Our update fields -> Zendesk's (the same names; tags replace the ticket's tags).
UPDATE_FIELDS: dict[str, str] = {"status": "status", "priority": "priority", "subject": "subject", "tags": "tags"}


class ZendeskConfig(VendorConfig):
    """`subdomain` plus either `email` + `api_token` (Basic) or `oauth_token` (Bearer)."""

    # `acme` of acme.zendesk.com (the connector takes one label): a host would otherwise fail on the first call.
    env_checks = {"subdomain": lambda value: only_label(value, ".zendesk.com", "acme", suffix_allowed=False)}

    subdomain: str | None = None
    email: str | None = None
    api_token: SecretStr | None = None
    oauth_token: SecretStr | None = None
    tier_field: str = "tier"  # the user (or organization) field that holds the tier
    # user_fields.<key> for customers, custom_fields.<id> for tickets (connectors/field_mapping.py)
    field_mapping: FieldMapping | None = None

    @model_validator(mode="after")
    def _needs_credentials(self) -> ZendeskConfig:
        """Zendesk takes an API token with the agent's email, or an OAuth token."""
        if not self.oauth_token and not (self.email and self.api_token):
            raise ValueError("give email and api_token, or oauth_token")
        return self


class ZendeskConnector(TicketBatches, BaseCRMConnector):
    """Zendesk Support: users are customers, tickets are tickets."""

    vendor = "zendesk"
    display_name = "Zendesk"
    credential_check = CredentialCheck(
        "GET", "/api/v2/users/me.json", "https://developer.zendesk.com/api-reference/ticketing/users/users/#show-self"
    )
    config_model = ZendeskConfig
    config: ZendeskConfig
    tuning_fields = frozenset({"tier_field", "field_mapping"})
    emulator = "sandbox.zendesk:ZendeskEmulator"
    sandbox_credentials = {"subdomain": "sandbox", "email": "agent@example.com", "api_token": "sandbox-token"}
    sandbox_seed = {"customer_id": "1001", "ticket_id": "12345", "phone": "+971 50 123 4567"}
    search_page_max: ClassVar[int] = 100
    vendor_dedupes_creates = True  # ticket creation honours Idempotency-Key
    rate_limit_window_seconds = 60.0  # Zendesk's limits are per minute (it normally sends Retry-After)
    # https://developer.zendesk.com/api-reference/introduction/rate-limits/ (Team plan: 200 a minute, the lowest)
    rate_budget = RateBudget(200, 60.0, "https://developer.zendesk.com/api-reference/introduction/rate-limits/")
    rate_limit_headers = (
        RateHeaders(("ratelimit-limit", "X-Rate-Limit"), ("ratelimit-remaining", "X-Rate-Limit-Remaining"), ("ratelimit-reset",)),
    )

    def _vendor_url(self) -> str:
        """`https://{subdomain}.zendesk.com`, the subdomain being one DNS label."""
        if not self.config.subdomain:
            raise self.missing_config("subdomain")
        return f"https://{check_dns_label(self.config.subdomain, 'subdomain', self.vendor)}.zendesk.com"

    def _auth(self) -> Auth:
        """Bearer for OAuth tokens, else Basic `{email}/token:{api_token}`."""
        if self.config.oauth_token:
            return auth.bearer(self.config.oauth_token.get_secret_value())
        assert self.config.email and self.config.api_token
        return auth.basic(f"{self.config.email}/token", self.config.api_token.get_secret_value())

    def _error_detail(self, response: UpstreamResponse) -> tuple[str, Any]:
        """Zendesk errors: `{"error": "RecordNotFound", "description": ..., "details": {...}}`."""
        body = response.error_json()
        if not isinstance(body, dict):
            return f"Zendesk answered {response.status}", None
        error = body.get("error")
        if isinstance(error, dict):  # some endpoints nest it: {"error": {"title", "message"}}
            return str(error.get("message") or error.get("title") or response.status), None
        message = body.get("description") or error or f"Zendesk answered {response.status}"
        return str(message), body.get("details")

    # --- mapping ------------------------------------------------------------------------------

    def _customer(self, user: dict[str, Any], organizations: list[dict[str, Any]]) -> Customer:
        """A Zendesk user (and its organization, when sideloaded) as a Customer."""
        org = next((o for o in organizations if o.get("id") == user.get("organization_id")), None) or {}
        tier_field = self.config.tier_field
        tier = (user.get("user_fields") or {}).get(tier_field) or (org.get("organization_fields") or {}).get(tier_field)
        metadata = {
            "vendor_role": user.get("role"),
            "organization_id": user.get("organization_id"),
            "organization_name": org.get("name"),
            "tags": user.get("tags") or [],
            "vendor_phone": user.get("phone"),
            "external_id": user.get("external_id"),
            "time_zone": user.get("time_zone"),
            "created_at": iso_utc(user.get("created_at")),
            "updated_at": iso_utc(user.get("updated_at")),
        }
        tier, extra = mapped(self._mapping.customer, user, fallback_tier=tier)
        metadata.update(extra)
        return Customer(
            id=str(require(user, "id", self.vendor)),
            name=user.get("name") or "",
            email=user.get("email"),
            phone=self.e164(user.get("phone")),
            tier=str(tier) if tier is not None else None,
            metadata={k: v for k, v in metadata.items() if v is not None},
        )

    def _ticket(self, ticket: dict[str, Any], *, replayed: bool = False) -> Ticket:
        """A Zendesk ticket as a Ticket; Zendesk's own status, priority and ids stay in metadata."""
        status = ticket.get("status")
        metadata = {
            "tags": ticket.get("tags") or [],
            "vendor_status": status,
            "vendor_priority": ticket.get("priority"),
            "type": ticket.get("type"),
            "channel": (ticket.get("via") or {}).get("channel"),
            "assignee_id": ticket.get("assignee_id"),
            "group_id": ticket.get("group_id"),
            "organization_id": ticket.get("organization_id"),
            "external_id": ticket.get("external_id"),
            "url": ticket.get("url"),
            **mapped(self._mapping.ticket, ticket)[1],
        }
        if replayed:
            metadata["vendor_idempotent_replay"] = True
        requester = ticket.get("requester_id")
        return Ticket(
            id=str(require(ticket, "id", self.vendor)),
            subject=ticket.get("subject") or ticket.get("raw_subject") or "",
            description=ticket.get("description") or "",
            status=STATUS_FROM_ZENDESK.get(status or "", TicketStatus.open),
            priority=PRIORITY_FROM_ZENDESK.get(ticket.get("priority"), TicketPriority.medium),
            customer_id=str(requester) if requester is not None else None,
            created_at=iso_utc(ticket.get("created_at")),
            updated_at=iso_utc(ticket.get("updated_at")),
            metadata={k: v for k, v in metadata.items() if v is not None},
        )

    # --- operations ---------------------------------------------------------------------------

    async def get_customer(self, customer_id: str) -> Customer:
        """`GET /users/{id}.json?include=organizations`: the user and its organization in one round trip."""
        data = await self._json(
            "GET",
            f"/api/v2/users/{self.customer_id(customer_id)}.json",
            params={"include": "organizations"},
            operation="get_customer",
        )
        return self._customer(require(data, "user", self.vendor), data.get("organizations") or [])

    async def _search_users(self, query: str, limit: int) -> list[dict[str, Any]]:
        """`GET /users/search.json?query=...`, organizations sideloaded."""
        data = await self._json(
            "GET",
            "/api/v2/users/search.json",
            params={"query": query, "per_page": str(min(limit, self.search_page_max)), "include": "organizations"},
            operation="find_customers",
        )
        orgs = data.get("organizations") or [] if isinstance(data, dict) else []
        users = require(data, "users", self.vendor)
        for user in users:
            user["_organizations"] = orgs
        return users

    def _email_query(self, email: str) -> str:
        """`email:"..."`, refusing what could end the quotes or widen the match (nothing can add a term)."""
        if any(c in UNQUOTABLE or c.isspace() or not c.isprintable() for c in email):
            raise InvalidRequest("email has a character Zendesk search cannot take literally", crm_type=self.vendor)
        return f'email:"{email}"'

    async def _by_email(self, email: str, limit: int) -> list[dict[str, Any]]:
        """Zendesk's search also matches similar addresses; keep only the exact one (case-insensitive)."""
        users = await self._search_users(self._email_query(email), limit)
        return [user for user in users if (user.get("email") or "").lower() == email.lower()]

    async def _by_phone(self, phone: PhoneQuery, limit: int) -> list[dict[str, Any]]:
        """`phone:*{digits}` matches every stored spelling (Zendesk's caller-id search); keep exact callers."""
        users = await self._search_users(f"phone:*{phone.national_significant}", limit)
        # The wildcard also matches another country's number with the same tail.
        return [user for user in users if self.matches_phone(user.get("phone"), phone)]

    def _check_search(self, phone: PhoneQuery | None, email: str | None) -> None:
        """An email Zendesk search cannot take literally is refused before any call."""
        if email:
            self._email_query(email)

    async def _customers(self, records: list[dict[str, Any]]) -> list[Customer]:
        """Users with the organizations their search sideloaded."""
        return [self._customer(user, user.pop("_organizations")) for user in records]

    async def get_ticket(self, ticket_id: str) -> Ticket:
        """`GET /tickets/{id}.json`."""
        data = await self._json("GET", f"/api/v2/tickets/{self.ticket_id(ticket_id)}.json", operation="get_ticket")
        return self._ticket(require(data, "ticket", self.vendor))

    async def _requester(self, ticket: TicketCreateRequest) -> dict[str, Any]:
        """requester_id when known (or found by phone), else a requester Zendesk creates from name and email."""
        if ticket.customer_id:
            return {"requester_id": int(self.customer_id(ticket.customer_id))}
        if ticket.customer_email:
            return {"requester": {"name": ticket.customer_name or ticket.customer_email, "email": ticket.customer_email}}
        if ticket.customer_phone:
            caller = parse_phone(ticket.customer_phone, self.ctx.settings.default_phone_region)
            matches = await self.find_customers(phone=caller, email=None, limit=1)
            if matches:
                return {"requester_id": int(matches[0].id)}
            return {"requester": {"name": ticket.customer_name or f"Caller {caller.e164}"}}
        if ticket.customer_name:
            return {"requester": {"name": ticket.customer_name}}
        return {}  # Zendesk then makes the authenticated agent the requester

    async def create_ticket(
        self, ticket: TicketCreateRequest, *, idempotency_key: str, marker: str | None = None
    ) -> Ticket:
        """`POST /tickets.json` with Idempotency-Key, so a retry can never open a second ticket."""
        response = await self._request(
            "POST",
            "/api/v2/tickets.json",
            json={"ticket": await self._create_body(ticket)},
            headers={"Idempotency-Key": idempotency_key},
            idempotent=True,  # Zendesk replays the first answer for a repeated key
            operation="create_ticket",
        )
        replayed = response.headers.get("x-idempotency-lookup") == "hit"
        return self._ticket(require(response.json(), "ticket", self.vendor), replayed=replayed)

    async def _create_body(self, ticket: TicketCreateRequest) -> dict[str, Any]:
        """The `ticket` object a create sends (single or create_many)."""
        body: dict[str, Any] = {
            "subject": ticket.subject,
            "comment": {"body": ticket.description, "public": True},
            "tags": ticket.tags,
            **await self._requester(ticket),
        }
        if ticket.priority:
            body["priority"] = PRIORITY_TO_ZENDESK[ticket.priority]
        if ticket.status:
            body["status"] = STATUS_TO_ZENDESK[ticket.status]
        for key in ("external_id", "custom_fields", "type", "group_id", "assignee_id"):
            if key in ticket.metadata:
                body[key] = ticket.metadata[key]
        self._write_mapped(body, ticket.metadata)
        return body

    async def update_ticket(self, update: TicketUpdateRequest) -> Ticket:
        """`PUT /tickets/{id}.json`; a comment with public false is an internal note."""
        body = self.ticket_changes(update, fields=UPDATE_FIELDS, status=STATUS_TO_ZENDESK, priority=PRIORITY_TO_ZENDESK)
        if update.comment:
            body["comment"] = {"body": update.comment.body, "public": update.comment.public}
        self._write_mapped(body, update.metadata or {})
        data = await self._json(
            "PUT",
            f"/api/v2/tickets/{self.ticket_id(update.ticket_id)}.json",
            json={"ticket": body},
            idempotent=update.comment is None,  # a repeated comment would be posted twice
            operation="update_ticket",
        )
        return self._ticket(require(data, "ticket", self.vendor))

    # --- ticket listing (POST /crm/ticket/search, /crm/customer/context) ------------------------------

    def _search_query(self, query: TicketQuery) -> str:
        """A Search API query (https://developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/searching-with-the-zendesk-api/):
        each value validated or quoted so that nothing a caller sends adds a term."""
        terms = ["type:ticket"]
        if query.customer_id:
            terms.append(f"requester:{self.customer_id(query.customer_id)}")
        terms += [f"status:{s}" for s in vendor_statuses(STATUS_FROM_ZENDESK, query.statuses)]  # a repeated keyword ORs
        for tag in query.tags:
            if not SEARCH_TAG.fullmatch(tag):
                raise InvalidRequest(f"tag {tag[:40]!r} is not one Zendesk search term", crm_type=self.vendor)
            terms.append(f"tags:{tag}")
        if query.updated_since:
            terms.append(f"updated>={query.updated_since}")
        if query.text:
            if any(c in UNQUOTABLE or not c.isprintable() for c in query.text):
                raise InvalidRequest("text has a character Zendesk search cannot take literally", crm_type=self.vendor)
            terms.append(f'"{query.text}"')
        return " ".join(terms)

    async def list_tickets(self, query: TicketQuery, page: Mapping[str, Any] | None) -> TicketPage:
        """A customer's tickets: `GET /users/{id}/tickets/requested` with cursor pagination
        (https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#list-tickets); any other
        filter: the Search API, page by page (https://developer.zendesk.com/api-reference/ticketing/ticket-management/search/)."""
        filtered = query.statuses or query.tags or query.updated_since or query.text or not query.customer_id
        if not filtered:
            assert query.customer_id
            params = {"page[size]": str(min(query.limit, self.search_page_max))}
            if page and isinstance(page.get("after"), str):
                params["page[after]"] = page["after"]
            data = await self._json(
                "GET", f"/api/v2/users/{self.customer_id(query.customer_id)}/tickets/requested.json",
                params=params, operation="list_tickets",
            )
            meta = data.get("meta") or {}
            after = meta.get("after_cursor") if meta.get("has_more") else None
            tickets = [self._ticket(t) for t in require(data, "tickets", self.vendor)]
            return TicketPage(tickets, {"after": after} if after else None)
        number = page.get("page", 1) if page else 1
        number = number if isinstance(number, int) and 0 < number <= 1000 else 1
        data = await self._json(
            "GET", "/api/v2/search.json",
            params={"query": self._search_query(query), "sort_by": "updated_at", "sort_order": "desc",
                    "page": str(number), "per_page": str(min(query.limit, self.search_page_max))},
            operation="list_tickets",
        )
        tickets = [self._ticket(t) for t in require(data, "results", self.vendor) if t.get("result_type", "ticket") == "ticket"]
        return TicketPage(tickets, {"page": number + 1} if data.get("next_page") else None)

    # --- field mapping (connectors/field_mapping.py) ----------------------------------------------

    @property
    def _mapping(self) -> FieldMapping:
        return self.config.field_mapping or NO_MAPPING

    def _write_mapped(self, body: dict[str, Any], metadata: Mapping[str, Any]) -> None:
        """The mapped metadata keys as the ticket's custom_fields entries ([{"id", "value"}])."""
        values = nest(to_write(self._mapping.ticket, metadata), frozenset({"custom_fields"}))
        if values.get("custom_fields"):
            body["custom_fields"] = [*(body.get("custom_fields") or []), *values.pop("custom_fields")]
        body.update(values)

    async def check_field_mapping(self, mapping: FieldMapping) -> list[dict[str, Any]]:
        """Each mapped name the account lacks, per `GET /ticket_fields` and `GET /user_fields`.

        https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_fields/#list-ticket-fields,
        https://developer.zendesk.com/api-reference/ticketing/users/user_fields/#list-user-fields
        """
        problems: list[dict[str, Any]] = []
        wanted = {"customer": ("user_fields", "/api/v2/user_fields.json", "user_fields", "key"),
                  "ticket": ("custom_fields", "/api/v2/ticket_fields.json", "ticket_fields", "id")}  # fmt: skip
        for kind, (root, path, answer_key, name) in wanted.items():
            entries = getattr(mapping, kind)
            if not entries:
                continue
            listed = require(await self._json("GET", path, operation="list_fields"), answer_key, self.vendor)
            known = {str(field.get(name)) for field in listed if isinstance(field, dict)}
            for key, vendor_path in entries.items():
                head, _, rest = vendor_path.partition(".")
                if head != root or not rest or rest.split(".")[0] not in known:
                    message = f"{vendor_path}: no such {'user field key' if kind == 'customer' else 'ticket field id'}"
                    problems.append({"loc": ["field_mapping", kind, key], "msg": message, "type": "unknown_field"})
        return problems

