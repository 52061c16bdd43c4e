"""Dynamics 365 emulator: the Dataverse Web API (contacts, accounts, incidents, annotations, CloseIncident,
WhoAmI) and Microsoft Entra ID's v2.0 client-credentials token endpoint, on the same loopback root.

Shapes follow https://learn.microsoft.com/power-apps/developer/data-platform/webapi/overview and its query,
retrieve, create, update and error pages; tokens https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow.
"""

from __future__ import annotations

import itertools
import re
import secrets
import zlib
from datetime import datetime, timezone
from typing import Any

import orjson
from aiohttp import web

from sandbox import webhook_payloads
from sandbox.core import Emulator, VendorError, bearer_token, json_response
from sandbox.oauth import Wire
from sandbox.odata import (
    EXPAND, ODataError, ordered, page_size, parse_filter, project, selected, skipped_pages, skiptoken, top,
)

GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
KEYED = re.compile(rf"^(?P<set>[A-Za-z]+)\((?P<id>{GUID})\)$")
BIND = re.compile(rf"^/?(?P<set>contacts|accounts|incidents)\((?P<id>{GUID})\)$")
VERSIONS = frozenset({"v9.0", "v9.1", "v9.2"})
TOKEN_LIFETIME = 3599
ORG_ID = "00000000-0000-4000-8000-00000000a001"
USER_ID = "00000000-0000-4000-8000-00000000b001"
BUSINESS_UNIT_ID = "00000000-0000-4000-8000-00000000c001"
STATE_OF_REASON = {1: 0, 2: 0, 3: 0, 4: 0, 5: 1, 1000: 1, 6: 2, 2000: 2}
PRIORITIES = frozenset({1, 2, 3})
ORIGINS = frozenset({1, 2, 3, 2483, 3986, 700610000})  # Phone, Email, Web, Facebook, Twitter, IoT
CONTACT_COLUMNS = frozenset({
    "contactid", "fullname", "firstname", "lastname", "emailaddress1", "telephone1", "telephone2", "mobilephone",
    "jobtitle", "_parentcustomerid_value", "createdon", "modifiedon", "statecode", "statuscode", "new_loyaltynumber",
})  # fmt: skip
ACCOUNT_COLUMNS = frozenset({"accountid", "name", "accountnumber", "telephone1", "new_tier", "createdon", "modifiedon"})
INCIDENT_COLUMNS = frozenset({
    "incidentid", "ticketnumber", "title", "description", "statecode", "statuscode", "prioritycode",
    "caseorigincode", "_customerid_value", "_ownerid_value", "createdon", "modifiedon", "new_ordernumber",
})  # fmt: skip
# Custom columns (publisher prefix new_), for field mapping: the sandbox's tenant-specific fields.
CUSTOM_INCIDENT = frozenset({"new_ordernumber"})
INCIDENT_WRITABLE = frozenset({"title", "description", "statecode", "statuscode", "prioritycode", "caseorigincode"}) | CUSTOM_INCIDENT
ANNOTATION_WRITABLE = frozenset({"subject", "notetext"})
ENTITY_TYPE = {"contacts": "contact", "accounts": "account", "incidents": "incident", "annotations": "annotation"}
# EntityDefinitions (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-metadata-web-api):
# what SDKs read to turn a table's logical name into its entity set.
ENTITY_DEFINITIONS = [
    {"LogicalName": logical, "EntitySetName": entity_set, "PrimaryIdAttribute": f"{logical}id",
     "MetadataId": f"{index:08x}-0000-4000-8000-00000000d000"}
    for index, (entity_set, logical) in enumerate(ENTITY_TYPE.items(), 1)
]
# Choice columns and their options, as the PicklistAttributeMetadata cast lists them (SDKs map labels to values).
PICKLISTS: dict[str, dict[str, dict[int, str]]] = {
    "incident": {"prioritycode": {1: "High", 2: "Normal", 3: "Low"}, "caseorigincode": {1: "Phone", 2: "Email", 3: "Web"}},
}
PICKLIST_PATH = "/api/data/{version}/EntityDefinitions(LogicalName='{logical}')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
ATTRIBUTES_PATH = "/api/data/{version}/EntityDefinitions(LogicalName='{logical}')/Attributes"
# A table's attributes as its definition lists them: a lookup's `_x_value` column is the attribute `x`; the
# metadata type (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/attributemetadata)
# by column, String when not listed.
ATTRIBUTE_TYPES: dict[str, str] = {
    "contactid": "Uniqueidentifier", "incidentid": "Uniqueidentifier", "parentcustomerid": "Customer",
    "customerid": "Customer",
    "createdon": "DateTime", "modifiedon": "DateTime", "statecode": "State", "statuscode": "Status",
    "prioritycode": "Picklist", "caseorigincode": "Picklist",
}  # fmt: skip
ATTRIBUTES: dict[str, list[str]] = {
    logical: sorted(re.sub(r"^_(.+)_value$", r"\1", column) for column in columns)
    for logical, columns in (("contact", CONTACT_COLUMNS), ("incident", INCIDENT_COLUMNS))
}


def now() -> str:
    """Dataverse's timestamp form (UTC, seconds)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def odata_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> VendorError:
    """The Web API's error body, `{"error": {"code", "message"}}`."""
    return VendorError(status, {"error": {"code": code, "message": message}}, headers)


def missing(entity: str, key: str) -> VendorError:
    """ObjectDoesNotExist, as Dataverse words it."""
    return odata_error(404, "0x80040217", f"{entity} With Id = {key} Does Not Exist")


def guid(kind: int, number: int) -> str:
    """A deterministic GUID for seeded and created records (the sandbox's ids are predictable)."""
    return f"{kind:08x}-0000-4000-8000-{number:012d}"


class DynamicsEmulator(Emulator):
    """Answers as `https://{org}.crm{N}.dynamics.com/api/data/v9.2` and `login.microsoftonline.com` do."""

    name = "dynamics"
    # Entra ID's authorization-code flow (learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow);
    # its refresh answer carries a new refresh token, which the client keeps.
    oauth_wire = Wire("/{tenant}/oauth2/v2.0/authorize", "/{tenant}/oauth2/v2.0/token", rotates=True,
                      expires_in=TOKEN_LIFETIME, delegates=True)

    def __init__(self) -> None:
        self.tokens: set[str] = set()  # every token issued: a reset of the data does not revoke them
        super().__init__()

    def reset(self) -> None:
        """Seed: Ahmed in Al-Mansoori Trading (Enterprise, loyalty LOY-7781) with an open and a resolved case; Layla."""
        self.expired: set[str] = set()
        created = "2023-01-15T09:00:00Z"
        self.accounts = {
            guid(0x6f1c1c0e, 2001): {
                "accountid": guid(0x6f1c1c0e, 2001), "name": "Al-Mansoori Trading", "accountnumber": "AMT-001",
                "telephone1": "+971 4 123 4567", "new_tier": "Enterprise", "createdon": created, "modifiedon": created,
            }
        }
        self.contacts: dict[str, dict[str, Any]] = {}
        self._add_contact(1001, "Ahmed", "Al-Mansoori", "ahmed@example.ae", telephone1="+971 50 123 4567",
                          account=guid(0x6f1c1c0e, 2001), loyalty="LOY-7781")
        self._add_contact(1002, "Layla", "Hassan", "layla@example.com", mobilephone="(415) 555-2671")
        self._add_contact(1003, "Omar", "Khalid", None, telephone1="+44 20 7946 0958")
        self.incidents: dict[str, dict[str, Any]] = {}
        self.annotations: dict[str, dict[str, Any]] = {}
        self._case_numbers = itertools.count(1003)
        self._incident_ids = itertools.count(54322)
        self._note_ids = itertools.count(7_000_001)
        ahmed = guid(0x6f1c1c0e, 1001)
        self._add_incident(54321, "Product not working", "The device stopped working after the latest update.",
                           ahmed, prioritycode=1, statuscode=1, stamp="2025-11-18T10:30:00Z", ticketnumber="CAS-01001-K7Q2M9")
        self._add_incident(54320, "Invoice copy", "Sent the October invoice again.", ahmed, prioritycode=2,
                           statuscode=5, stamp="2025-10-02T08:00:00Z", ticketnumber="CAS-01002-P3X8T1")

    def _add_contact(self, number: int, first: str, last: str, email: str | None, *, account: str | None = None,
                     telephone1: str | None = None, mobilephone: str | None = None, loyalty: str | None = None) -> None:
        key = guid(0x6f1c1c0e, number)
        self.contacts[key] = {
            "contactid": key, "fullname": f"{first} {last}", "firstname": first, "lastname": last,
            "emailaddress1": email, "telephone1": telephone1, "telephone2": None, "mobilephone": mobilephone,
            "jobtitle": None, "_parentcustomerid_value": account, "createdon": "2023-01-15T09:00:00Z",
            "modifiedon": "2023-01-15T09:00:00Z", "statecode": 0, "statuscode": 1, "new_loyaltynumber": loyalty,
        }

    def _add_incident(self, number: int, title: str, description: str | None, customer: str, *, prioritycode: int,
                      statuscode: int, stamp: str, ticketnumber: str | None = None, origin: int = 1) -> dict[str, Any]:
        key = guid(0xA1B2C3D4, number)
        self.incidents[key] = record = {
            "incidentid": key,
            "ticketnumber": ticketnumber or f"CAS-{next(self._case_numbers):05d}-{secrets.token_hex(3).upper()}",
            "title": title, "description": description, "statecode": STATE_OF_REASON[statuscode],
            "statuscode": statuscode, "prioritycode": prioritycode, "caseorigincode": origin,
            "_customerid_value": customer, "_ownerid_value": USER_ID,  # owned by the application user, as Dataverse does
            "createdon": stamp, "modifiedon": stamp, "new_ordernumber": None,
        }
        return record

    def ticket_ids(self) -> list[str]:
        """Every case the emulator holds."""
        return list(self.incidents)

    # --- auth and the vendor's own answers ----------------------------------------------------------

    def authenticate(self, request: web.Request) -> bool:
        """Token requests authenticate by their form; Web API calls by a Bearer token that is not `invalid` or expired."""
        if request.path.endswith("/oauth2/v2.0/token"):
            return True
        token = bearer_token(request)
        return bool(token) and "invalid" not in token and token not in self.expired

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        """Dataverse's 401: an empty body and the WWW-Authenticate challenge."""
        challenge = ('Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize, '
                     'error=invalid_token, error_description="The access token is invalid or has expired."')
        return web.Response(status=401, headers={"WWW-Authenticate": challenge})

    def not_found(self) -> web.StreamResponse:
        """An unknown segment."""
        return odata_error(404, "0x80060888", "Resource not found for the segment.").response()

    def rate_limited(self, retry_after: int) -> web.StreamResponse:
        """Service protection's 429 (https://learn.microsoft.com/power-apps/developer/data-platform/api-limits)."""
        message = "Number of requests exceeded the limit of 6000 over time window of 300 seconds."
        return odata_error(429, "0x80072322", message, {"Retry-After": str(retry_after)}).response()

    def server_error(self, status: int) -> web.StreamResponse:
        """A generic platform failure in the OData error shape."""
        return odata_error(status, "0x80040216", "An unexpected error occurred.").response()

    def control(self, action: str, payload: dict[str, Any]) -> Any:
        """`expire_tokens`: every issued token answers 401 from now on (the connector must renew)."""
        if action == "expire_tokens":
            self.expired |= self.tokens
            return {"expired": len(self.tokens)}
        return super().control(action, payload)

    # --- routes -------------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """Entra ID's token endpoint and the Web API's entity sets, keyed records and actions."""
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self.token)
        app.router.add_get("/api/data/{version}/{segment}", self.get)
        app.router.add_get(PICKLIST_PATH, self.picklists)
        app.router.add_get(ATTRIBUTES_PATH, self.attributes)
        app.router.add_post("/api/data/{version}/{segment}", self.post)
        app.router.add_patch("/api/data/{version}/{segment}", self.patch)

    async def token(self, request: web.Request) -> web.StreamResponse:
        """Client credentials: any id and secret except `invalid`; the scope must be a resource's `/.default`."""
        form = await request.post()
        if self.oauth is not None and form.get("grant_type") in ("authorization_code", "refresh_token"):
            return await self.oauth.token(request, dict(form))  # the authorization-code flow (sandbox/oauth.py)
        if form.get("grant_type") != "client_credentials":
            return self._aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if not form.get("client_id") or not form.get("client_secret") or "invalid" in str(form.get("client_secret")):
            return self._aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if not str(form.get("scope") or "").endswith("/.default"):
            return self._aad_error(400, "invalid_scope", 1002012, "The provided value for scope is not valid.")
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return json_response({"token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "ext_expires_in": TOKEN_LIFETIME,
                              "access_token": token})

    @staticmethod
    def _aad_error(status: int, error: str, number: int, text: str) -> web.Response:
        """Entra ID's OAuth error body, AADSTS number first in the description."""
        return json_response({"error": error, "error_description": f"AADSTS{number}: {text}", "error_codes": [number],
                              "timestamp": now(), "trace_id": ORG_ID, "correlation_id": USER_ID}, status=status)

    def _version(self, request: web.Request) -> None:
        if request.match_info["version"] not in VERSIONS:
            raise odata_error(404, "0x80060888", f"Resource not found for the segment '{request.match_info['version']}'.")

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise odata_error(400, "0x80048d19", "Error identified in Payload provided by the user: the body is not a JSON object.")
        return body

    def _table(self, name: str) -> tuple[dict[str, dict[str, Any]], frozenset[str], str]:
        tables = {"contacts": (self.contacts, CONTACT_COLUMNS, "contactid"),
                  "accounts": (self.accounts, ACCOUNT_COLUMNS, "accountid"),
                  "incidents": (self.incidents, INCIDENT_COLUMNS, "incidentid")}
        if name not in tables:
            raise odata_error(404, "0x80060888", f"Resource not found for the segment '{name}'.")
        return tables[name]

    def _shape(self, request: web.Request, name: str, record: dict[str, Any]) -> dict[str, Any]:
        """One record as the Web API answers it: $select, $expand of the contact's account, etag, annotations."""
        rows, columns, key = self._table(name)
        try:
            out = project(record, selected(request.query.get("$select"), columns, key))
            expand = request.query.get("$expand")
            if expand:
                out.update(self._expanded(record, expand))
        except ODataError as exc:
            raise odata_error(400, "0x80060888", str(exc)) from None
        out = {"@odata.etag": f'W/"{abs(hash(record["modifiedon"])) % 10**7}"', **out}
        if "_customerid_value" in out and "lookuplogicalname" in request.headers.get("Prefer", ""):
            out["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] = "contact"
        if "_ownerid_value" in out and "lookuplogicalname" in request.headers.get("Prefer", ""):
            out["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] = "systemuser"
        return out

    def _expanded(self, record: dict[str, Any], expand: str) -> dict[str, Any]:
        match = EXPAND.match(expand.strip())
        if not match or match["name"] != "parentcustomerid_account" or "contactid" not in record:
            raise ODataError(f"Could not find a property named '{expand}' on type 'Microsoft.Dynamics.CRM.contact'.")
        account = self.accounts.get(record.get("_parentcustomerid_value") or "")
        if account is None:
            return {match["name"]: None}
        columns = selected(match["select"], ACCOUNT_COLUMNS, "accountid")
        return {match["name"]: {"@odata.etag": 'W/"1"', **project(account, columns)}}

    def _context(self, request: web.Request, name: str) -> str:
        return f"{request.url.origin()}/{self.name}/api/data/{request.match_info['version']}/$metadata#{name}"

    async def get(self, request: web.Request) -> web.StreamResponse:
        """WhoAmI, a keyed record, or an entity set filtered, ordered and topped."""
        self._version(request)
        segment = request.match_info["segment"]
        if segment == "WhoAmI":
            return json_response({"@odata.context": self._context(request, "Microsoft.Dynamics.CRM.WhoAmIResponse"),
                                  "BusinessUnitId": BUSINESS_UNIT_ID, "UserId": USER_ID, "OrganizationId": ORG_ID})
        if segment == "EntityDefinitions":
            try:
                keep = parse_filter(request.query.get("$filter"), ENTITY_DEFINITIONS[0])
            except ODataError as exc:
                raise odata_error(400, "0x80060888", str(exc)) from None
            return json_response({"@odata.context": self._context(request, "EntityDefinitions"),
                                  "value": [d for d in ENTITY_DEFINITIONS if keep(d)]})
        keyed = KEYED.match(segment)
        if keyed:
            rows, _, _ = self._table(keyed["set"])
            record = rows.get(keyed["id"].lower())
            if record is None:
                raise missing(ENTITY_TYPE[keyed["set"]], keyed["id"])
            return json_response({"@odata.context": self._context(request, f"{keyed['set']}/$entity"),
                                  **self._shape(request, keyed["set"], record)})
        rows, columns, _ = self._table(segment)
        try:
            keep = parse_filter(request.query.get("$filter"), columns)
            found = ordered([r for r in rows.values() if keep(r)], request.query.get("$orderby"), columns)
            limit = top(request.query.get("$top"))
            size, passed = page_size(request.headers.get("Prefer", "")), skipped_pages(request.query.get("$skiptoken"))
        except ODataError as exc:
            raise odata_error(400, "0x80060888", str(exc)) from None
        found = found[:limit] if limit else found
        body: dict[str, Any] = {"@odata.context": self._context(request, segment),
                                "value": [self._shape(request, segment, r) for r in found[passed * size : (passed + 1) * size]]}
        if (passed + 1) * size < len(found):  # more: the same query with the next page's cookie
            body["@odata.nextLink"] = str(request.url.update_query({"$skiptoken": skiptoken(passed + 2)}))
        return json_response(body)

    async def picklists(self, request: web.Request) -> web.StreamResponse:
        """A table's choice columns with their options (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-metadata-web-api)."""
        self._version(request)
        columns = PICKLISTS.get(request.match_info["logical"], {})
        value = [
            {"LogicalName": name, "OptionSet": {"Options": [
                {"Value": number, "Label": {"LocalizedLabels": [{"Label": label, "LanguageCode": 1033}]}}
                for number, label in options.items()
            ]}}
            for name, options in columns.items()
        ]
        return json_response({"@odata.context": self._context(request, "EntityDefinitions"), "value": value})

    async def attributes(self, request: web.Request) -> web.StreamResponse:
        """`EntityDefinitions(LogicalName='x')/Attributes`: each attribute's @odata.type and MetadataId, with the
        `$select`ed properties (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-metadata-web-api)."""
        self._version(request)
        logical = request.match_info["logical"]
        if logical not in ATTRIBUTES:
            raise odata_error(404, "0x80040217", f"Could not find an entity with name '{logical}'.")
        chosen = [n.strip() for n in request.query.get("$select", "LogicalName,AttributeType").split(",") if n.strip()]
        if any(n not in ("LogicalName", "AttributeType") for n in chosen):
            raise odata_error(400, "0x80060888", "The sandbox's attribute definitions carry LogicalName and AttributeType.")
        value = []
        for name in ATTRIBUTES[logical]:
            kind = ATTRIBUTE_TYPES.get(name, "String")
            metadata_id = f"{zlib.crc32(f'{logical}.{name}'.encode()):08x}-0000-4000-8000-00000000e000"
            props = {"LogicalName": name, "AttributeType": kind}
            value.append({"@odata.type": f"#Microsoft.Dynamics.CRM.{kind}AttributeMetadata",
                          **{n: props[n] for n in chosen}, "MetadataId": metadata_id})  # fmt: skip
        context = self._context(request, f"EntityDefinitions('{logical}')/Attributes({','.join(chosen)})")
        return json_response({"@odata.context": context, "value": value})

    def _bound(self, body: dict[str, Any], prop: str, entity_set: str) -> str | None:
        """The record a `prop@odata.bind` names (`/contacts(guid)`), which must exist."""
        value = body.pop(f"{prop}@odata.bind", None)
        if value is None:
            return None
        match = BIND.match(str(value))
        if not match or match["set"] != entity_set:
            raise odata_error(400, "0x80048d19", f"Error identified in Payload provided by the user: '{value}' is not a {entity_set} reference.")
        rows, _, _ = self._table(entity_set)
        if match["id"].lower() not in rows:
            raise missing(ENTITY_TYPE[entity_set], match["id"])
        return match["id"].lower()

    @staticmethod
    def _check_columns(body: dict[str, Any], writable: frozenset[str], entity: str) -> None:
        for name in body:
            if name not in writable:
                raise odata_error(400, "0x80048d19", f"Error identified in Payload provided by the user: "
                                  f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM.{entity}'.")
        if "prioritycode" in body and body["prioritycode"] not in PRIORITIES:
            raise odata_error(400, "0x80040203", f"A validation error occurred. The value {body['prioritycode']} of 'prioritycode' is outside the valid range.")
        if "caseorigincode" in body and body["caseorigincode"] not in ORIGINS:
            raise odata_error(400, "0x80040203", "A validation error occurred. The value of 'caseorigincode' is outside the valid range.")

    def _answer(self, request: web.Request, name: str, record: dict[str, Any], status: int) -> web.StreamResponse:
        """`Prefer: return=representation`: the record; otherwise 204 with OData-EntityId."""
        version = request.match_info["version"]
        entity_id = f"{request.url.origin()}/{self.name}/api/data/{version}/{name}({record[name[:-1] + 'id']})"
        if "return=representation" in request.headers.get("Prefer", ""):
            body = {"@odata.context": self._context(request, f"{name}/$entity"), **self._shape(request, name, record)}
            return json_response(body, status=status, headers={"OData-EntityId": entity_id})
        return web.Response(status=204, headers={"OData-EntityId": entity_id})

    async def post(self, request: web.Request) -> web.StreamResponse:
        """Create an incident or an annotation, or run CloseIncident."""
        self._version(request)
        segment, body = request.match_info["segment"], await self._body(request)
        if segment == "incidents":
            return self._create_incident(request, body)
        if segment == "annotations":
            return self._create_annotation(request, body)
        if segment == "CloseIncident":
            return self._close_incident(body)
        raise odata_error(404, "0x80060888", f"Resource not found for the segment '{segment}'.")

    def _create_incident(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        customer = self._bound(body, "customerid_contact", "contacts")
        self._check_columns(body, INCIDENT_WRITABLE, "incident")
        if not customer:
            raise odata_error(400, "0x80040203", "You should specify a parent contact or account.")
        if not isinstance(body.get("title"), str) or not body["title"].strip():
            raise odata_error(400, "0x80040203", "A validation error occurred. The value of 'title' must be provided.")
        reason = body.get("statuscode", 1)
        if STATE_OF_REASON.get(reason) != 0 or body.get("statecode", 0) != 0:
            raise odata_error(400, "0x80040203", "A new case must be active: statuscode must be an Active reason.")
        record = self._add_incident(next(self._incident_ids), body["title"], body.get("description"), customer,
                                    prioritycode=body.get("prioritycode", 2), statuscode=reason, stamp=now(),
                                    origin=body.get("caseorigincode", 1))
        record.update({column: body[column] for column in CUSTOM_INCIDENT if column in body})
        self.webhooks.emit(webhook_payloads.dynamics("Create", record))  # a step on Create of incident
        return self._answer(request, "incidents", record, 201)

    def _create_annotation(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        incident = self._bound(body, "objectid_incident", "incidents")
        self._check_columns(body, ANNOTATION_WRITABLE, "annotation")
        if incident is None:
            raise odata_error(400, "0x80040203", "A note needs its regarding record: objectid_incident@odata.bind.")
        if self.incidents[incident]["statecode"] != 0:
            raise odata_error(400, "0x80043e0e", "This case has already been resolved. Close and reopen the case, and then try again.")
        key = guid(0xB0B0B0B0, next(self._note_ids))
        self.annotations[key] = {"annotationid": key, "objectid": incident, "createdon": now(), "modifiedon": now(), **body}
        version = request.match_info["version"]
        entity_id = f"{request.url.origin()}/{self.name}/api/data/{version}/annotations({key})"
        if "return=representation" in request.headers.get("Prefer", ""):
            body = {"@odata.context": self._context(request, "annotations/$entity"), "annotationid": key}
            return json_response(body, status=201, headers={"OData-EntityId": entity_id})
        return web.Response(status=204, headers={"OData-EntityId": entity_id})

    def _close_incident(self, body: dict[str, Any]) -> web.StreamResponse:
        resolution = body.get("IncidentResolution")
        if not isinstance(resolution, dict) or body.get("Status") not in (5, 1000):
            raise odata_error(400, "0x80040203", "CloseIncident needs IncidentResolution and a resolved Status (5 or 1000).")
        incident = self._bound(dict(resolution), "incidentid", "incidents")
        if incident is None:
            raise odata_error(400, "0x80040203", "The IncidentResolution must name its incident.")
        record = self.incidents[incident]
        if record["statecode"] != 0:
            raise odata_error(400, "0x80043e0e", "This case has already been resolved. Close and reopen the case, and then try again.")
        record.update(statecode=1, statuscode=body["Status"], modifiedon=now())
        self.webhooks.emit(webhook_payloads.dynamics("Update", record))  # CloseIncident updates the case's state
        return web.Response(status=204)

    async def patch(self, request: web.Request) -> web.StreamResponse:
        """Update an incident; `If-Match: *` refuses to create one that is missing (upsert is not emulated)."""
        self._version(request)
        keyed = KEYED.match(request.match_info["segment"])
        if not keyed or keyed["set"] != "incidents":
            raise odata_error(405, "0x80060888", "The sandbox updates incidents only.")
        record = self.incidents.get(keyed["id"].lower())
        if record is None:
            raise missing("incident", keyed["id"])
        body = await self._body(request)
        self._check_columns(body, INCIDENT_WRITABLE, "incident")
        reason = body.get("statuscode", record["statuscode"] if "statecode" not in body else None)
        state = body.get("statecode", STATE_OF_REASON.get(reason, record["statecode"]))
        if state == 1 or STATE_OF_REASON.get(reason) == 1:
            raise odata_error(400, "0x80040203", "This message can not be used to set the state of Case to Resolved. "
                              "In order to set state of Case to Resolved, use the CloseIncidentRequest message instead.")
        if record["statecode"] != 0 and state != 0:
            raise odata_error(400, "0x80043e0e", "This case has already been resolved. Close and reopen the case, and then try again.")
        if reason is not None and STATE_OF_REASON.get(reason) not in (None, state):
            raise odata_error(400, "0x80040203", f"{reason} is not a valid status code for state code {state}.")
        record.update(body, statecode=state, statuscode=reason or 1, modifiedon=now())
        self.webhooks.emit(webhook_payloads.dynamics("Update", record))
        return self._answer(request, "incidents", record, 200)
