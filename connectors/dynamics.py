"""Microsoft Dynamics 365 (Dataverse Web API v9.2): contacts with their account, incidents (cases) and notes.

Docs: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/overview (the Web API),
.../webapi/query-data-web-api, .../webapi/retrieve-entity-using-web-api, .../webapi/create-entity-web-api,
.../webapi/update-delete-entities-using-web-api, and the incident, contact and annotation table references.
Tokens: Microsoft Entra ID's client-credentials grant (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator
from yarl import URL

from connectors.auth import Auth, OAuthAuth, OAuthToken
from connectors.base import (
    BaseCRMConnector, TicketPage, TicketQuery, created_by_marker, require, vendor_statuses, with_marker, without_marker,
)
from connectors.dynamics_tables import (
    API_VERSION, AUTHORITY_HOSTS, AUTHORITY_URL, COLUMN, CONTACT_COLUMNS, DOCS, DYNAMICS_DOMAINS, ERROR_CODES, GUID,
    GUID_FORM, INCIDENT_COLUMNS, LOOKUP_NAMES, OAUTH_ERROR, ODATA_HEADERS, ORIGIN_PHONE, PHONE_COLUMNS,
    PRIORITY_FROM_DYNAMICS, PRIORITY_TO_DYNAMICS, RETURN_RECORD, STATE_FALLBACK, STATE_OF_REASON, STATUS_FROM_DYNAMICS,
    STATUS_TO_DYNAMICS, TENANT, TOKEN_PATH, any_equal, odata_quote,
)
from connectors.dynamics_fields import DynamicsFieldMapping
from connectors.field_mapping import FieldMapping, mapped, to_write
from connectors.governor import RateBudget
from connectors.hosts import check_vendor_url, parse_url
from connectors.upstream_answers import DEFAULT_STATUS_ERRORS, UpstreamResponse
from connectors.vendor_config import CredentialCheck, VendorConfig
from errors import (
    InvalidConfig,
    InvalidRequest,
    MalformedAnswer,
    NotFound,
    NotSupported,
    SessionExpired,
    ValidationFailed,
)
from idempotency import fingerprint
from api_models.values import iso_utc
from models import Customer, Ticket, TicketCreateRequest, TicketPriority, TicketStatus, TicketUpdateRequest
from phone import PhoneQuery, parse_phone
from tokens import token_store

class DynamicsConfig(VendorConfig):
    """`instance_url` (https://{org}.crm{N}.dynamics.com), Entra ID `tenant_id`, `client_id` + `client_secret`.

    Or an `access_token` alone (used until it is rejected). `authority_url` is Entra ID's host for other clouds.
    """

    # Where the token request goes, beside the instance: naming one brings the request's own secrets.
    host_fields: ClassVar[frozenset[str]] = frozenset({"authority_url", "tenant_id"})

    instance_url: str | None = None
    tenant_id: str | None = None
    client_id: str | None = Field(None, max_length=100)
    client_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    authority_url: str | None = None
    api_version: str = "v9.2"
    tier_field: str | None = None  # an account column with the tier (e.g. a custom new_tier); none by default
    status_map: dict[int, TicketStatus] = Field(default_factory=dict)  # {"100000001": "pending"}
    status_write_map: dict[TicketStatus, int] = Field(default_factory=dict)  # {"pending": 3}
    priority_map: dict[int, TicketPriority] = Field(default_factory=dict)
    priority_write_map: dict[TicketPriority, int] = Field(default_factory=dict)
    # contact columns for customers, incident columns for tickets (connectors/dynamics_fields.py)
    field_mapping: FieldMapping | None = None

    @field_validator("api_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        """`v9.2` (or `9.2`), as it appears in the path."""
        match = API_VERSION.match(value)
        if not match:
            raise ValueError("must look like v9.2")
        return f"v{match.group(1)}"

    @field_validator("tier_field")
    @classmethod
    def _check_tier_field(cls, value: str | None) -> str | None:
        """The name goes into $select, so it must be a column's logical name."""
        if value and not COLUMN.match(value):
            raise ValueError("must be an account column's logical name, such as new_tier")
        return value or None

    @field_validator("tenant_id")
    @classmethod
    def _check_tenant(cls, value: str | None) -> str | None:
        """The tenant goes into the token URL's path: a GUID or a verified domain (contoso.onmicrosoft.com)."""
        if value and not TENANT.match(value):
            raise ValueError("must be the Entra ID tenant's GUID or domain, e.g. contoso.onmicrosoft.com")
        return value or None

    @model_validator(mode="after")
    def _needs_credentials(self) -> DynamicsConfig:
        """A token, or what it takes to get one."""
        if not (self.access_token or (self.tenant_id and self.client_id and self.client_secret)):
            raise ValueError("give tenant_id, client_id and client_secret, or access_token")
        return self


class DynamicsConnector(DynamicsFieldMapping, BaseCRMConnector):
    """Dynamics 365 Customer Service over Dataverse: contacts are customers, incidents (cases) are tickets."""

    vendor = "dynamics"
    display_name = "Dynamics 365"
    config_model = DynamicsConfig
    config: DynamicsConfig
    credential_check = CredentialCheck("GET", "/api/data/{api_version}/WhoAmI", f"{DOCS}/webapi/reference/whoami")
    # 401 is an expired (or revoked) token: renewed once, then the grant's own answer decides.
    status_errors = {**DEFAULT_STATUS_ERRORS, 401: SessionExpired}
    error_codes = ERROR_CODES
    # Service protection: 6,000 requests per user per 5-minute sliding window; a 429 states Retry-After.
    rate_budget = RateBudget(6000, 300.0, f"{DOCS}/api-limits")
    rate_limit_window_seconds = 300.0
    tuning_fields = frozenset(
        {"status_map", "status_write_map", "priority_map", "priority_write_map", "tier_field", "field_mapping"}
    )
    emulator = "sandbox.dynamics:DynamicsEmulator"
    sandbox_credentials = {
        "instance_url": "https://sandbox.crm4.dynamics.com",
        "tenant_id": "sandbox.onmicrosoft.com",
        "client_id": "sandbox-client-id",
        "client_secret": "sandbox-client-secret",
        "tier_field": "new_tier",
    }
    sandbox_seed = {
        "customer_id": "6f1c1c0e-0000-4000-8000-000000001001",
        "ticket_id": "a1b2c3d4-0000-4000-8000-000000054321",
        "phone": "+971 50 123 4567",
    }
    customer_id_pattern = GUID
    customer_id_form = GUID_FORM
    ticket_id_pattern = GUID
    ticket_id_form = GUID_FORM

    def __init__(self, config: DynamicsConfig, context: Any) -> None:
        """The status and priority tables, this org's overrides merged once; the token host resolved."""
        super().__init__(config, context)
        self.status_from = {**STATUS_FROM_DYNAMICS, **config.status_map}
        self.status_to = {**STATUS_TO_DYNAMICS, **config.status_write_map}
        self.priority_from = {**PRIORITY_FROM_DYNAMICS, **config.priority_map}
        self.priority_to = {**PRIORITY_TO_DYNAMICS, **config.priority_write_map}
        self.authority = self._resolve_authority()

    # --- hosts ----------------------------------------------------------------------------------------

    def _vendor_url(self) -> str:
        """The environment's https URL on a Dynamics domain (no path), unless an operator allowed the host."""
        if not self.config.instance_url:
            raise self.missing_config("instance_url")
        hint = "instance_url must be the environment's https URL on a Dynamics domain (e.g. https://contoso.crm4.dynamics.com)"
        try:
            url = check_vendor_url(
                self.config.instance_url, crm_type=self.vendor, suffixes=DYNAMICS_DOMAINS,
                allowed_hosts=self.ctx.allowed_hosts, what="instance_url",
            )
        except InvalidConfig as exc:
            raise InvalidConfig(f"{exc.message}; {hint}", crm_type=self.vendor) from None
        parts = parse_url(url, self.vendor, "instance_url")
        if parts.path and (parts.hostname or "").endswith(DYNAMICS_DOMAINS):  # the Web API's path is ours to add
            raise InvalidConfig(f"instance_url may not carry a path; {hint}", crm_type=self.vendor)
        return url

    def _resolve_authority(self) -> str:
        """DYNAMICS_AUTHORITY_URL (an Entra ID host, or an allowed one), else the sandbox, else the global cloud."""
        given = self.config.authority_url
        if given:
            host = (parse_url(given, self.vendor, "authority_url").hostname or "").lower()
            exact = (host,) if host in AUTHORITY_HOSTS else ()
            return check_vendor_url(
                given, crm_type=self.vendor, suffixes=exact, allowed_hosts=self.ctx.allowed_hosts, what="authority_url"
            )
        return self.ctx.sandbox_urls.get(self.vendor) or AUTHORITY_URL

    def _api(self, path: str) -> str:
        """A Web API resource path under the configured version."""
        return f"/api/data/{self.config.api_version}/{path}"

    # --- auth: Entra ID client credentials, cached per environment, tenant and client -----------------

    def _grant(self) -> dict[str, str] | None:
        """The client-credentials form (scope: the environment's `.default`), or None for a bare token."""
        config = self.config
        if not (config.tenant_id and config.client_id and config.client_secret):
            return None
        return {
            "grant_type": "client_credentials",
            "client_id": config.client_id,
            "client_secret": config.client_secret.get_secret_value(),
            "scope": f"{(config.instance_url or self.base_url).rstrip('/')}/.default",
        }

    def _grant_key(self) -> str | None:
        """This environment, tenant and client's token key (a hash, secrets included), or None."""
        grant = self._grant()
        if grant is None:
            return None
        return fingerprint({"base_url": self.base_url, "authority": self.authority, "tenant": self.config.tenant_id, **grant})

    async def _fetch_token(self) -> OAuthToken:
        """POST the grant to Entra ID's v2.0 token endpoint; `expires_in` sets when the token is renewed.

        Docs: https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#get-a-token
        """
        url = self.authority + TOKEN_PATH.format(tenant=self.config.tenant_id)
        answer = (
            await self._request("POST", url, data=self._grant(), idempotent=True, operation="oauth_token", authenticate=False)
        ).json()
        token = str(require(answer, "access_token", self.vendor))
        try:  # a number of seconds (Entra ID sends an int; some proxies of it a string)
            seconds: float | None = float(answer.get("expires_in"))
        except (TypeError, ValueError):
            seconds = None  # no stated expiry: the token lives until its first 401
        return OAuthToken(token, time.time() + seconds if seconds and seconds > 0 else None)

    def _auth(self) -> Auth:
        """The shared OAuth cache (renewed before `expires_in` and after a 401), or a bare access_token."""
        given = self.config.access_token.get_secret_value() if self.config.access_token else None
        key = self._grant_key()
        store = token_store(self.ctx.shared, self.ctx.deadline.remaining())
        return OAuthAuth(store, key, self._fetch_token if key else None, given)

    # --- errors -------------------------------------------------------------------------------------

    def _error_codes(self, response: UpstreamResponse) -> Iterator[str]:
        """The Web API's `{"error": {"code"}}`; Entra ID's `{"error": "invalid_client", ...}` is an OAuth refusal."""
        body = response.error_json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            yield error["code"].lower()
        elif isinstance(error, str) and response.status < 500:
            yield OAUTH_ERROR

    def _error_detail(self, response: UpstreamResponse) -> tuple[str, Any]:
        """`code: message` of the OData error, or Entra ID's error and description (its AADSTS number)."""
        body = response.error_json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            text = ": ".join(str(error[k]) for k in ("code", "message") if error.get(k))
            return text or f"Dynamics 365 answered {response.status}", None
        if isinstance(error, str):
            description = str(body.get("error_description") or "").split("\r\n", 1)[0]
            return ": ".join(filter(None, (error, description))), None
        return f"Dynamics 365 answered {response.status}", None

    # --- calls --------------------------------------------------------------------------------------

    async def _odata(self, method: str, path: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
        """One Web API call with the OData version headers; the answer's JSON (None for a 204)."""
        return await self._json(method, self._api(path), headers={**ODATA_HEADERS, **(headers or {})}, **kwargs)

    def _contact_params(self) -> dict[str, str]:
        """$select of the contact's columns and its parent account's name (and tier column) by $expand."""
        account = ",".join(filter(None, ("name", self.config.tier_field)))
        return {"$select": self._columns(CONTACT_COLUMNS, "customer"), "$expand": f"parentcustomerid_account($select={account})"}

    async def _contacts(self, where: str, limit: int) -> list[dict[str, Any]]:
        """`GET contacts?$filter=...&$top=` (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-data-web-api)."""
        params = {**self._contact_params(), "$filter": where, "$top": str(limit)}
        data = await self._odata("GET", "contacts", params=params, operation="find_customers")
        records = require(data, "value", self.vendor, kind=list)
        return [record for record in records if isinstance(record, dict)]

    # --- mapping ------------------------------------------------------------------------------------

    def _customer(self, contact: dict[str, Any]) -> Customer:
        """A contact (and its parent account, expanded alongside) as a Customer."""
        account = contact.get("parentcustomerid_account") or {}
        tier = account.get(self.config.tier_field) if self.config.tier_field else None
        tier, extra = mapped(self._mapping.customer, contact, fallback_tier=tier)
        metadata = {
            "first_name": contact.get("firstname"),
            "last_name": contact.get("lastname"),
            "job_title": contact.get("jobtitle"),
            "account_id": account.get("accountid"),
            "organization_name": account.get("name"),
            "vendor_phone": contact.get("telephone1"),
            "mobile_phone": contact.get("mobilephone"),
            "created_at": iso_utc(contact.get("createdon")),
            "updated_at": iso_utc(contact.get("modifiedon")),
            **extra,
        }
        name = contact.get("fullname") or " ".join(filter(None, (contact.get("firstname"), contact.get("lastname"))))
        return Customer(
            id=str(require(contact, "contactid", self.vendor, kind=str)),
            name=name,
            email=contact.get("emailaddress1"),
            phone=self.e164(contact.get("telephone1") or contact.get("mobilephone")),
            tier=str(tier) if tier is not None else None,
            metadata={k: v for k, v in metadata.items() if v is not None},
        )

    def _ticket(self, incident: dict[str, Any]) -> Ticket:
        """An incident as a Ticket; an unmapped statuscode falls back on its statecode; Dataverse's codes stay in metadata."""
        state, reason, priority = incident.get("statecode"), incident.get("statuscode"), incident.get("prioritycode")
        status = self.status_from.get(reason) or STATE_FALLBACK.get(state, TicketStatus.open)  # type: ignore[arg-type]
        metadata = {
            "ticket_number": incident.get("ticketnumber"),
            "vendor_state": state,
            "vendor_status": reason,
            "vendor_priority": priority,
            "origin": incident.get("caseorigincode"),
            "customer_type": incident.get("_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"),
            "owner_id": incident.get("_ownerid_value"),  # the systemuser or team that holds the case
            **mapped(self._mapping.ticket, incident)[1],
        }
        return Ticket(
            id=str(require(incident, "incidentid", self.vendor, kind=str)),
            subject=incident.get("title") or "",
            description=without_marker(incident.get("description") or ""),
            status=status,
            priority=self.priority_from.get(priority, TicketPriority.medium),  # type: ignore[arg-type]
            customer_id=incident.get("_customerid_value"),
            created_at=iso_utc(incident.get("createdon")),
            updated_at=iso_utc(incident.get("modifiedon")),
            metadata={k: v for k, v in metadata.items() if v is not None},
        )

    # --- operations ---------------------------------------------------------------------------------

    async def get_customer(self, customer_id: str) -> Customer:
        """`GET contacts({id})?$select=...&$expand=parentcustomerid_account($select=name)`: one round trip.

        Docs: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/retrieve-entity-using-web-api
        """
        path = f"contacts({self.customer_id(customer_id)})"
        return self._customer(await self._odata("GET", path, params=self._contact_params(), operation="get_customer"))

    async def _by_phone(self, phone: PhoneQuery, limit: int) -> list[dict[str, Any]]:
        """One `$filter` over telephone1 and mobilephone for every spelling; only the caller's number is kept."""
        records = await self._contacts(any_equal(PHONE_COLUMNS, list(phone.variants)), limit)
        return [r for r in records if any(self.matches_phone(r.get(column), phone) for column in PHONE_COLUMNS)]

    async def _by_email(self, email: str, limit: int) -> list[dict[str, Any]]:
        """`$filter=emailaddress1 eq '...'` (Dataverse compares it case-insensitively)."""
        return await self._contacts(any_equal(("emailaddress1",), [email]), limit)

    def _record_id(self, record: Any) -> str:
        """Contacts are keyed `contactid`."""
        return str(require(record, "contactid", self.vendor))

    async def get_ticket(self, ticket_id: str) -> Ticket:
        """`GET incidents({id})?$select=...` with the customer lookup's table named."""
        path = f"incidents({self.ticket_id(ticket_id)})"
        params = {"$select": self._columns(INCIDENT_COLUMNS, "ticket")}
        return self._ticket(await self._odata("GET", path, params=params, headers=LOOKUP_NAMES, operation="get_ticket"))

    async def list_tickets(self, query: TicketQuery, page: Mapping[str, Any] | None) -> TicketPage:
        """A contact's cases: `GET incidents?$filter=_customerid_value eq {id}&$orderby=modifiedon desc` with
        `Prefer: odata.maxpagesize`; the next page is the same query with the answer's `$skiptoken`.

        Docs: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-data-web-api (filter on a
        lookup's _value), https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/page-results
        """
        if query.tags or query.updated_since:
            raise NotSupported("Dynamics 365 ticket search here takes a customer, status or text", crm_type=self.vendor)
        where = [f"_customerid_value eq {self.customer_id(query.customer_id)}"] if query.customer_id else []
        if query.statuses:
            codes = vendor_statuses(self.status_from, query.statuses)
            if not codes:
                return TicketPage([])
            where.append("(" + " or ".join(f"statuscode eq {code}" for code in codes) + ")")
        if query.text:
            where.append(f"contains(title,{odata_quote(query.text)})")
        params = {"$select": self._columns(INCIDENT_COLUMNS, "ticket"), "$orderby": "modifiedon desc"}
        if where:
            params["$filter"] = " and ".join(where)
        token = page.get("skiptoken") if page else None
        if isinstance(token, str) and 0 < len(token) <= 4096:
            params["$skiptoken"] = token
        headers = {"Prefer": f'{LOOKUP_NAMES["Prefer"]},odata.maxpagesize={query.limit}'}
        data = await self._odata("GET", "incidents", params=params, headers=headers, operation="list_tickets")
        records = require(data, "value", self.vendor, kind=list)
        following = URL(str(data.get("@odata.nextLink") or "")).query.get("$skiptoken")
        return TicketPage([self._ticket(r) for r in records if isinstance(r, dict)],
                          {"skiptoken": following} if following else None)  # fmt: skip

    async def _customer_of(self, ticket: TicketCreateRequest) -> str:
        """The contact a case is for: given, or found by phone or email. Dataverse requires a case's customer."""
        if ticket.customer_id:
            return self.customer_id(ticket.customer_id)
        region = self.ctx.settings.default_phone_region
        caller = parse_phone(ticket.customer_phone, region) if ticket.customer_phone else None
        if caller or ticket.customer_email:
            found = await self.find_customers(phone=caller, email=ticket.customer_email, limit=1)
            if found:
                return found[0].id
        raise ValidationFailed(
            "Dynamics 365 cases need a customer: give customer_id, or the phone or email of an existing contact",
            crm_type=self.vendor,
        )

    async def find_created(self, marker: str, ticket: TicketCreateRequest) -> str | None:
        """Cases with this exact title, newest first; the one whose description ends with the marker.

        Dataverse queries read the database itself, so an empty answer proves absence (no search lag).
        Docs: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-data-web-api
        """
        params = {
            "$select": "incidentid,description",
            "$filter": f"title eq {odata_quote(ticket.subject)}",
            "$orderby": "createdon desc",
            "$top": "50",
        }
        data = await self._odata("GET", "incidents", params=params, operation="create_ticket")
        return created_by_marker(
            require(data, "value", self.vendor, kind=list), marker,
            lambda incident: (incident or {}).get("description") or "",
            lambda incident: str(require(incident, "incidentid", self.vendor)),
        )  # fmt: skip

    async def create_ticket(
        self, ticket: TicketCreateRequest, *, idempotency_key: str, marker: str | None = None
    ) -> Ticket:
        """`POST incidents` with `Prefer: return=representation` → 201 and the case, in one round trip.

        Dataverse takes no idempotency key: the create is resent only where it cannot have arrived; the marker
        ends the description, where `find_created` looks. A resolved status cannot be set on create.
        Docs: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-entity-web-api
        """
        body: dict[str, Any] = {
            "title": ticket.subject,
            "description": with_marker(ticket.description, marker),
            "caseorigincode": ORIGIN_PHONE,
            "customerid_contact@odata.bind": f"/contacts({await self._customer_of(ticket)})",
        }
        if ticket.priority:
            body["prioritycode"] = self.priority_to[ticket.priority]
        reason = self.status_to[ticket.status] if ticket.status else None
        if reason is not None and STATE_OF_REASON.get(reason, 0) == 0:
            body["statuscode"] = reason
        body.update(to_write(self._mapping.ticket, ticket.metadata))
        params = {"$select": self._columns(INCIDENT_COLUMNS, "ticket")}
        try:
            data = await self._odata(
                "POST", "incidents", params=params, json=body, headers=RETURN_RECORD, idempotent=False,
                operation="create_ticket",
            )
        except NotFound as exc:  # the bound contact does not exist: the request is wrong, nothing was made
            raise ValidationFailed(
                f"Dynamics 365 refused the case: {exc.message}", crm_type=self.vendor, upstream_status=exc.upstream_status
            ) from None
        if not isinstance(data, dict) or not GUID.fullmatch(str(data.get("incidentid") or "")):
            raise MalformedAnswer("the Dynamics 365 create answer has no valid incidentid", crm_type=self.vendor)
        return self._ticket(data)

    async def _close(self, case_id: str, reason: int) -> None:
        """`POST CloseIncident`: the only way to resolve a case (an update may not set statecode 1).

        Docs: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/closeincident
        """
        resolution = {"subject": "Resolved by the voice platform", "incidentid@odata.bind": f"/incidents({case_id})"}
        body = {"IncidentResolution": resolution, "Status": reason}
        await self._odata("POST", "CloseIncident", json=body, idempotent=False, operation="update_ticket")

    async def update_ticket(self, update: TicketUpdateRequest) -> Ticket:
        """`PATCH incidents({id})` (If-Match: * so it never creates), a note as an annotation, CloseIncident to resolve.

        Cases have no tags, so `tags` is ignored; a note is an internal annotation whatever `public` says.
        Docs: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/update-delete-entities-using-web-api
        and https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/annotation
        """
        case_id = self.ticket_id(update.ticket_id)
        reason = self.status_to[update.status] if update.status else None
        closing = reason is not None and STATE_OF_REASON.get(reason) == 1
        fields: dict[str, Any] = {}
        if reason is not None and not closing:
            fields.update(statecode=STATE_OF_REASON.get(reason, 0), statuscode=reason)  # reopens a resolved case
        if update.priority:
            fields["prioritycode"] = self.priority_to[update.priority]
        if update.subject is not None:
            fields["title"] = update.subject
        fields.update(to_write(self._mapping.ticket, update.metadata or {}))
        if not fields and update.comment is None and not closing:
            raise InvalidRequest(
                "Dynamics 365 cases have no tags; give status, priority, subject or comment", crm_type=self.vendor
            )
        path = f"incidents({case_id})"
        if fields:  # setting the same values again is harmless, so the PATCH may be retried
            headers = {"If-Match": "*", **RETURN_RECORD}
            await self._odata("PATCH", path, json=fields, headers=headers, idempotent=True, operation="update_ticket")
        note_id = None
        if update.comment:  # before a close: a resolved case takes no new notes
            note = {"subject": "Voice call note", "notetext": update.comment.body, "objectid_incident@odata.bind": f"/{path}"}
            answer = await self._odata(
                "POST", "annotations", params={"$select": "annotationid"}, json=note, headers=RETURN_RECORD,
                operation="update_ticket",
            )
            note_id = answer.get("annotationid") if isinstance(answer, dict) else None
        if closing:
            assert reason is not None
            await self._close(case_id, reason)
        ticket = await self.get_ticket(case_id)
        if note_id:
            ticket.metadata["note_id"] = note_id
        return ticket
