"""Salesforce REST API: Contacts with their Account (SOQL), caller-ID search (SOSL), Cases and CaseComments."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from connectors.auth import Auth, OAuthAuth, OAuthToken
from connectors.base import BaseCRMConnector, TicketPage, TicketQuery, created_by_marker, require, vendor_statuses, with_marker, without_marker
from connectors.field_mapping import NO_MAPPING, FieldMapping, mapped, to_write
from connectors.governor import RateBudget, RateHeaders
from connectors.hosts import check_vendor_url
from connectors.context import ConnectorContext
from connectors.upstream_answers import UpstreamResponse
from connectors.vendor_config import CredentialCheck
from connectors.salesforce_bulk import CaseCollections
from connectors.salesforce_describe import FieldDescribe
from connectors.salesforce_soql import LOCATOR_PATH, SOQL_ESCAPES, SOQL_LIKE_ESCAPES, field_value, soql_quote, sosl_phrase
from connectors.salesforce_tables import (
    CASE_FIELDS,
    CASE_METADATA_FIELDS,
    CONTACT_FIELDS,
    ERROR_CODES,
    OAUTH_ERROR,
    PRIORITY_FROM_SALESFORCE,
    PRIORITY_TO_SALESFORCE,
    SALESFORCE_DOMAINS,
    SALESFORCE_ID,
    SALESFORCE_ID_FORM,
    STATUS_FROM_SALESFORCE,
    STATUS_TO_SALESFORCE,
    TOKEN_PATH,
    SalesforceConfig,
    error_text,
)
from errors import CRMError, InvalidConfig, InvalidRequest, MalformedAnswer, NotFound, NotSupported
from idempotency import fingerprint
from api_models.values import iso_utc
from models import Customer, Ticket, TicketCreateRequest, TicketPriority, TicketStatus, TicketUpdateRequest
from phone import PhoneQuery, parse_phone
from tokens import token_store


class SalesforceConnector(CaseCollections, FieldDescribe, BaseCRMConnector):
    """Salesforce: Contacts (with their Account) are customers, Cases are tickets."""

    case_read_fields: ClassVar[tuple[str, ...]] = CASE_FIELDS  # what a Case is read with (the collection read too)

    vendor = "salesforce"
    display_name = "Salesforce"
    credential_check = CredentialCheck(
        "GET",
        "/services/data/{api_version}/limits",
        "https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_limits.htm",
    )
    rate_limit_window_seconds = 60.0  # REQUEST_LIMIT_EXCEEDED names no wait; a minute keeps callers off it
    # API requests per rolling 24 h (15,000 in a Developer Edition), stated as Sforce-Limit-Info (docs/upstream-etiquette.md)
    rate_budget = RateBudget(15_000, 86_400.0, "https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm")
    rate_limit_headers = (RateHeaders(usage="Sforce-Limit-Info", window_seconds=86_400.0),)
    config_model = SalesforceConfig
    config: SalesforceConfig
    error_codes = ERROR_CODES
    tuning_fields = frozenset({"status_map", "status_write_map", "priority_map", "priority_write_map", "field_mapping"})
    emulator = "sandbox.salesforce:SalesforceEmulator"
    # The client-credentials flow runs against the emulator's token endpoint; the org has Account.Tier__c.
    sandbox_credentials = {
        "instance_url": "https://sandbox.my.salesforce.com",
        "client_id": "sandbox-client-id",
        "client_secret": "sandbox-client-secret",
        "tier_field": "Account.Tier__c",
    }
    sandbox_seed = {"customer_id": "003000000000001AAA", "ticket_id": "500000000000001AAA", "phone": "(+971) 50-123-4567"}
    customer_id_pattern: ClassVar[re.Pattern[str]] = SALESFORCE_ID
    customer_id_form: ClassVar[str] = SALESFORCE_ID_FORM
    ticket_id_pattern: ClassVar[re.Pattern[str]] = SALESFORCE_ID
    ticket_id_form: ClassVar[str] = SALESFORCE_ID_FORM

    def __init__(self, config: SalesforceConfig, context: ConnectorContext) -> None:
        """The picklist tables, this org's overrides (request config over SALESFORCE_*_MAP) merged once."""
        super().__init__(config, context)
        self.status_from = {**STATUS_FROM_SALESFORCE, **config.status_map}
        self.status_to = {**STATUS_TO_SALESFORCE, **config.status_write_map}
        self.priority_from = {**PRIORITY_FROM_SALESFORCE, **config.priority_map}
        self.priority_to = {**PRIORITY_TO_SALESFORCE, **config.priority_write_map}

    def _vendor_url(self) -> str:
        """The org's instance: https on a Salesforce domain, unless an operator allowed the host."""
        if not self.config.instance_url:
            raise self.missing_config("instance_url")
        try:
            return check_vendor_url(
                self.config.instance_url,
                crm_type=self.vendor,
                suffixes=SALESFORCE_DOMAINS,
                allowed_hosts=self.ctx.allowed_hosts,
                what="instance_url",
            )
        except InvalidConfig as exc:
            raise InvalidConfig(
                f"{exc.message}; instance_url must be https on a Salesforce domain (e.g. acme.my.salesforce.com)",
                crm_type=self.vendor,
            ) from None

    def _data(self, path: str) -> str:
        """A REST resource path under the configured API version."""
        return f"/services/data/{self.config.api_version}{path}"

    # --- auth: a given token, or one from the token endpoint, cached per org and client -----------

    def _grant(self) -> dict[str, str] | None:
        """The OAuth form that renews this config's token (refresh_token first), or None for a bare token."""
        config = self.config
        secret = config.client_secret.get_secret_value() if config.client_secret else None
        if config.refresh_token and config.client_id:
            form = {"grant_type": "refresh_token", "refresh_token": config.refresh_token.get_secret_value()}
            return {**form, "client_id": config.client_id, **({"client_secret": secret} if secret else {})}
        if config.client_id and secret:
            return {"grant_type": "client_credentials", "client_id": config.client_id, "client_secret": secret}
        return None

    def _grant_key(self) -> str | None:
        """This org and client's token key (a hash, secrets included, so no tenant gets another's), or None."""
        grant = self._grant()
        return None if grant is None else fingerprint({"base_url": self.base_url, **grant})

    async def _fetch_token(self) -> OAuthToken:
        """POST the grant, form-encoded; Salesforce states no expiry, so a token lives until its first 401."""
        response = await self._request(
            "POST", TOKEN_PATH, data=self._grant(), idempotent=True, operation="oauth_token", authenticate=False
        )
        return OAuthToken(str(require(response.json(), "access_token", self.vendor)))

    def _auth(self) -> Auth:
        """The shared OAuth cache for this org and client (renewed on INVALID_SESSION_ID), or a bare access_token."""
        given = self.config.access_token.get_secret_value() if self.config.access_token else None
        store = token_store(self.ctx.shared, self.ctx.deadline.remaining())
        key = self._grant_key()
        return OAuthAuth(store, key, self._fetch_token if key else None, given)

    # --- errors -------------------------------------------------------------------------------------

    def _errors(self, response: UpstreamResponse) -> list[dict[str, Any]]:
        """The error list (`[{"message","errorCode","fields"}]`), or the token endpoint's one `{"error",...}`."""
        body = response.error_json()
        if isinstance(body, dict):
            body = [body]
        return [item for item in body if isinstance(item, dict)] if isinstance(body, list) else []

    def _error_codes(self, response: UpstreamResponse) -> Iterator[str]:
        """Each error's errorCode (403 REQUEST_LIMIT_EXCEEDED is the rate limit); the token endpoint's OAuth errors."""
        for error in self._errors(response):
            if isinstance(error.get("errorCode"), str):
                yield error["errorCode"]
            if "error" in error and response.status < 500:  # invalid_grant, invalid_client, ...
                yield OAUTH_ERROR

    def _error_detail(self, response: UpstreamResponse) -> tuple[str, Any]:
        """`CODE: message` of each error, and the list itself (with `fields`) as details."""
        errors = self._errors(response)
        if not errors:
            return f"Salesforce answered {response.status}", None
        text = "; ".join(filter(None, map(error_text, errors)))
        return text or f"Salesforce answered {response.status}", errors

    # --- mapping ------------------------------------------------------------------------------------

    def _customer(self, contact: dict[str, Any]) -> Customer:
        """A Contact (and its Account, queried alongside) as a Customer."""
        account = contact.get("Account") or {}
        tier = field_value(contact, self.config.tier_field)
        metadata = {
            "first_name": contact.get("FirstName"),
            "last_name": contact.get("LastName"),
            "account_id": contact.get("AccountId"),
            "account_name": account.get("Name"),
            "account_type": account.get("Type"),
            "account_industry": account.get("Industry"),
            "vendor_phone": contact.get("Phone"),
            "mobile_phone": contact.get("MobilePhone"),
            "created_at": iso_utc(contact.get("CreatedDate")),
            "updated_at": iso_utc(contact.get("LastModifiedDate")),
        }
        tier, extra = mapped(self._mapping.customer, contact, fallback_tier=tier)
        metadata.update(extra)
        name = contact.get("Name") or " ".join(filter(None, (contact.get("FirstName"), contact.get("LastName"))))
        return Customer(
            id=str(require(contact, "Id", self.vendor)),
            name=name,
            email=contact.get("Email"),
            phone=self.e164(contact.get("Phone") or contact.get("MobilePhone")),
            tier=str(tier) if tier is not None else None,
            metadata={k: v for k, v in metadata.items() if v is not None},
        )

    def _ticket(self, case: dict[str, Any]) -> Ticket:
        """A Case as a Ticket; an unmapped Status falls back on IsClosed, Salesforce's own values stay in metadata."""
        status = self.status_from.get(case.get("Status") or "")
        priorities = self.priority_from
        metadata = {
            "case_number": case.get("CaseNumber"),
            "vendor_status": case.get("Status"),
            "vendor_priority": case.get("Priority"),
            "origin": case.get("Origin"),
            "type": case.get("Type"),
            "reason": case.get("Reason"),
            "account_id": case.get("AccountId"),
            "owner_id": case.get("OwnerId"),
            "is_closed": case.get("IsClosed"),
            **mapped(self._mapping.ticket, case)[1],
        }
        return Ticket(
            id=str(require(case, "Id", self.vendor)),
            subject=case.get("Subject") or "",
            description=without_marker(case.get("Description") or ""),
            status=status or (TicketStatus.closed if case.get("IsClosed") else TicketStatus.open),
            priority=priorities.get(case.get("Priority") or "", TicketPriority.medium),
            customer_id=case.get("ContactId"),
            created_at=iso_utc(case.get("CreatedDate")),
            updated_at=iso_utc(case.get("LastModifiedDate")),
            metadata={k: v for k, v in metadata.items() if v is not None},
        )

    def _case_fields(self, status: TicketStatus | None, priority: TicketPriority | None) -> dict[str, str]:
        """Status and Priority in this org's picklist values."""
        fields = {}
        if status:
            fields["Status"] = self.status_to[status]
        if priority:
            fields["Priority"] = self.priority_to[priority]
        return fields

    # --- operations ---------------------------------------------------------------------------------

    def _contact_select(self) -> str:
        """`SELECT ... FROM Contact`'s field list: the Account's fields and the configured tier field ride along."""
        fields = list(CONTACT_FIELDS)
        for extra in (self.config.tier_field, *self._mapping.customer.values()):
            if extra and extra.lower() not in {f.lower() for f in fields}:  # a field selected twice fails the query
                fields.append(extra)
        return ", ".join(fields)

    async def _query(self, soql: str, operation: str) -> list[dict[str, Any]]:
        """`GET /query/?q=` and its records (limits here stay far below one 2,000-record batch)."""
        data = await self._json("GET", self._data("/query/"), params={"q": soql}, operation=operation)
        return require(data, "records", self.vendor)

    async def get_customer(self, customer_id: str) -> Customer:
        """The Contact and its Account in one SOQL round trip."""
        contact_id = self.customer_id(customer_id)
        soql = f"SELECT {self._contact_select()} FROM Contact WHERE Id = {soql_quote(contact_id)}"
        records = await self._query(soql, "get_customer")
        if not records:
            raise NotFound(f"Salesforce has no Contact {contact_id}", crm_type=self.vendor)
        return self._customer(records[0])

    async def _by_phone(self, phone: PhoneQuery, limit: int) -> list[dict[str, Any]]:
        """SOSL over phone fields for each digit spelling the org may hold; keep only the caller's number."""
        spellings = dict.fromkeys("".join(c for c in form if c.isdigit()) for form in phone.variants)
        terms = " OR ".join(sosl_phrase(digits) for digits in spellings if digits)
        sosl = f"FIND {{{terms}}} IN PHONE FIELDS RETURNING Contact({self._contact_select()}) LIMIT {limit}"
        data = await self._json("GET", self._data("/search/"), params={"q": sosl}, operation="find_customers")
        records = require(data, "searchRecords", self.vendor)
        # A short spelling can also match another country's number that ends the same way.
        return [r for r in records if any(self.matches_phone(r.get(f), phone) for f in ("Phone", "MobilePhone"))]

    async def _by_email(self, email: str, limit: int) -> list[dict[str, Any]]:
        """SOQL on Email (Salesforce compares it case-insensitively)."""
        soql = f"SELECT {self._contact_select()} FROM Contact WHERE Email = {soql_quote(email)} LIMIT {limit}"
        return await self._query(soql, "find_customers")

    def _record_id(self, record: Any) -> str:
        """Contacts are keyed `Id`."""
        return str(require(record, "Id", self.vendor))

    async def get_ticket(self, ticket_id: str) -> Ticket:
        """`GET /sobjects/Case/{id}?fields=...`."""
        data = await self._json(
            "GET",
            self._data(f"/sobjects/Case/{self.ticket_id(ticket_id)}"),
            params={"fields": ",".join(dict.fromkeys([*CASE_FIELDS, *self._mapping.ticket.values()]))},
            operation="get_ticket",
        )
        return self._ticket(data)

    async def _contact_of(self, ticket: TicketCreateRequest) -> dict[str, str]:
        """ContactId when known (given, or found by phone or email), else the caller in the Web-to-Case fields."""
        if ticket.customer_id:
            return {"ContactId": self.customer_id(ticket.customer_id)}
        region = self.ctx.settings.default_phone_region
        caller = parse_phone(ticket.customer_phone, region) if ticket.customer_phone else None
        if caller or ticket.customer_email:
            found = await self.find_customers(phone=caller, email=ticket.customer_email, limit=1)
            if found:
                return {"ContactId": found[0].id}
        supplied = {
            "SuppliedName": ticket.customer_name,
            "SuppliedEmail": ticket.customer_email,
            "SuppliedPhone": caller.e164 if caller else None,
        }
        return {k: v for k, v in supplied.items() if v}

    async def find_created(self, marker: str, ticket: TicketCreateRequest) -> str | None:
        """SOQL for Cases with this exact Subject, newest first; the one whose Description ends with the marker.

        Case.Description is a long text area, which SOQL cannot filter on, so the filterable Subject narrows the
        query and the marker is checked here. SOQL reads the database itself, so an empty answer proves absence.
        Docs: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm and
        https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_case.htm
        """
        soql = (
            f"SELECT Id, Description FROM Case WHERE Subject = {soql_quote(ticket.subject)} "
            "ORDER BY CreatedDate DESC LIMIT 200"
        )
        return created_by_marker(
            await self._query(soql, "create_ticket"), marker,
            lambda case: case.get("Description") or "", lambda case: str(require(case, "Id", self.vendor)),
        )  # fmt: skip

    async def create_ticket(
        self, ticket: TicketCreateRequest, *, idempotency_key: str, marker: str | None = None
    ) -> Ticket:
        """`POST /sobjects/Case` (201 `{"id","success","errors"}`), then the Case read back.

        Salesforce takes no idempotency key, so the create is retried only where it cannot have arrived; the
        marker ends the Description, where `find_created` looks for it after a lost answer.
        """
        body = await self._case_body(ticket, marker)
        data = await self._json(
            "POST", self._data("/sobjects/Case"), json=body, idempotent=False, operation="create_ticket"
        )
        case_id = str(require(data, "id", self.vendor))
        if not SALESFORCE_ID.match(case_id):
            raise MalformedAnswer("the Salesforce create answer has no valid id", crm_type=self.vendor)
        try:
            return await self.get_ticket(case_id)
        except CRMError:
            # The Case exists: answer with what was sent rather than an error that invites a second create.
            return self._ticket({**body, "Id": case_id, "Status": body.get("Status", "New")})

    async def _case_body(self, ticket: TicketCreateRequest, marker: str | None) -> dict[str, Any]:
        """The new Case's fields, the marker ending its Description (one create and the collection create share it)."""
        body: dict[str, Any] = {
            "Subject": ticket.subject,
            "Description": with_marker(ticket.description, marker),
            "Origin": "Phone",  # the voice platform's calls
            **self._case_fields(ticket.status, ticket.priority),
            **await self._contact_of(ticket),
        }
        body.update({k: ticket.metadata[k] for k in CASE_METADATA_FIELDS if k in ticket.metadata})
        body.update(to_write(self._mapping.ticket, ticket.metadata))
        return body

    async def update_ticket(self, update: TicketUpdateRequest) -> Ticket:
        """`PATCH /sobjects/Case/{id}` (204), a CaseComment for the comment, then the Case read back.

        Cases have no tags, so `tags` is ignored. The PATCH goes first: a rejected change posts no comment.
        """
        case_id = self.ticket_id(update.ticket_id)
        fields: dict[str, Any] = self._case_fields(update.status, update.priority)
        if update.subject is not None:
            fields["Subject"] = update.subject
        fields.update(to_write(self._mapping.ticket, update.metadata or {}))
        if not fields and update.comment is None:
            message = "Salesforce Cases have no tags; give status, priority, subject or comment"
            raise InvalidRequest(message, crm_type=self.vendor)
        if fields:
            # Setting the same values again is harmless, so the PATCH may be retried.
            path = self._data(f"/sobjects/Case/{case_id}")
            await self._request("PATCH", path, json=fields, idempotent=True, operation="update_ticket")
        comment_id = None
        if update.comment:
            comment = {"ParentId": case_id, "CommentBody": update.comment.body, "IsPublished": update.comment.public}
            path = self._data("/sobjects/CaseComment")
            data = await self._json("POST", path, json=comment, operation="update_ticket")
            comment_id = require(data, "id", self.vendor)
        ticket = await self.get_ticket(case_id)
        if comment_id:
            ticket.metadata["comment_id"] = comment_id
        return ticket


    # --- ticket listing (POST /crm/ticket/search, /crm/customer/context) ------------------------------

    def _case_query(self, query: TicketQuery) -> str:
        """One SOQL over Case (https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select.htm):
        every value a quoted literal, so nothing a caller sends changes the query's shape."""
        where = []
        if query.customer_id:
            where.append(f"ContactId = {soql_quote(self.customer_id(query.customer_id))}")
        if query.statuses:
            values = vendor_statuses(self.status_from, query.statuses)
            where.append(f"Status IN ({', '.join(soql_quote(v) for v in values)})")
        if query.updated_since:  # validated ISO 8601 UTC (the request model): a SOQL dateTime literal
            where.append(f"LastModifiedDate >= {query.updated_since}")
        if query.text:
            pattern = query.text.translate(SOQL_ESCAPES).translate(SOQL_LIKE_ESCAPES)
            where.append(f"Subject LIKE '%{pattern}%'")
        if query.tags:
            raise NotSupported("Salesforce Cases have no tags: search by status, text or updated_since", crm_type=self.vendor)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return f"SELECT {', '.join(CASE_FIELDS)} FROM Case{clause} ORDER BY LastModifiedDate DESC"

    async def list_tickets(self, query: TicketQuery, page: Mapping[str, Any] | None) -> TicketPage:
        """The Case query, paged by Salesforce's own nextRecordsUrl (.../dome_query.htm#retrieve-the-remaining-results);
        batches are at least 200 records (Sforce-Query-Options), so a smaller page also keeps its place in one."""
        skip = page.get("skip", 0) if page else 0
        locator = page.get("locator") if page else None
        if not isinstance(skip, int) or not 0 <= skip <= 2000:
            skip = 0
        if locator is not None and not (isinstance(locator, str) and LOCATOR_PATH.fullmatch(locator)
                                        and locator.startswith(self._data("/query/"))):
            raise InvalidRequest("the cursor does not hold a Salesforce query locator", crm_type=self.vendor)
        if query.statuses and not vendor_statuses(self.status_from, query.statuses):
            return TicketPage([])  # no picklist value of this org maps onto the wanted statuses
        if locator:
            data = await self._json("GET", locator, operation="list_tickets")
        else:
            batch = {"Sforce-Query-Options": f"batchSize={max(200, query.limit)}"}
            params = {"q": self._case_query(query)}
            data = await self._json("GET", self._data("/query/"), params=params, headers=batch, operation="list_tickets")
        records = require(data, "records", self.vendor)
        tickets = [self._ticket(r) for r in records[skip : skip + query.limit]]
        if skip + query.limit < len(records):
            return TicketPage(tickets, {"locator": locator, "skip": skip + query.limit})
        following = data.get("nextRecordsUrl")
        return TicketPage(tickets, {"locator": following, "skip": 0} if isinstance(following, str) else None)

    # --- field mapping (connectors/field_mapping.py) ----------------------------------------------

    @property
    def _mapping(self) -> FieldMapping:
        return self.config.field_mapping or NO_MAPPING
