"""Salesforce REST API emulator: OAuth token endpoint, sObjects (Contact, Account, Case, CaseComment), SOQL and SOSL.

Only the subset of SOQL and SOSL the connector (and a simple-salesforce script) sends is understood; anything
else gets Salesforce's own MALFORMED_QUERY / MALFORMED_SEARCH answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
from aiohttp import web

from sandbox.core import Emulator, Handler, basic_credentials, bearer_token, digits, json_response

ORG_ID = "00D000000000001AAA"
USER_ID = "005000000000001AAA"
API_LIMIT = 15000
CASE_STATUSES = ("New", "Working", "Escalated", "On Hold", "Closed")  # this org's Status picklist
CLOSED_STATUSES = ("Closed",)
CASE_PRIORITIES = ("High", "Medium", "Low")
ID_SHAPE = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
VERSION = re.compile(r"^v\d{2,3}\.\d$")
CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<sobject>\w+)"
    r"(?:\s+WHERE\s+(?P<field>[\w.]+)\s*=\s*'(?P<value>(?:[^'\\]|\\.)*)')?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
SOSL = re.compile(
    r"^\s*FIND\s*\{(?P<terms>(?:[^{}\\]|\\.)*)\}"
    r"(?:\s*IN\s+(?P<scope>ALL|NAME|EMAIL|PHONE|SIDEBAR)\s+FIELDS)?"
    r"(?:\s*RETURNING\s+(?P<returning>\w+\s*(?:\([^)]*\))?(?:\s*,\s*\w+\s*(?:\([^)]*\))?)*))?"
    r"(?:\s*LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
SOSL_OBJECT = re.compile(r"\s*(?P<sobject>\w+)\s*(?:\((?P<fields>[^)]*)\))?\s*(?:,|$)", re.DOTALL)
SEARCHABLE = ("Account", "Contact", "Case")  # what a FIND without RETURNING searches (CaseComment is not searchable)
SOSL_TERM = re.compile(r'"(?P<phrase>(?:[^"\\]|\\.)*)"|(?P<word>(?:[^\s"\\]|\\.)+)', re.DOTALL)
SOSL_BARE_RESERVED = re.compile(r'(?<!\\)[&|!{}\[\]()^~:"\'+-]')
SOQL_UNESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


@dataclass(frozen=True)
class SObjectType:
    """What the emulated org knows about one sObject: id prefix, fields, what may be written, its parents."""

    prefix: str
    fields: tuple[str, ...]
    writable: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    parents: tuple[tuple[str, str, str], ...] = ()  # (relationship name, id field, parent sObject)
    phone_fields: tuple[str, ...] = ()
    max_lengths: tuple[tuple[str, int], ...] = ()


SCHEMA: dict[str, SObjectType] = {
    "Account": SObjectType(
        "001", ("Id", "Name", "Type", "Industry", "Rating", "Phone", "Tier__c", "CreatedDate", "LastModifiedDate"),
        phone_fields=("Phone",),
    ),
    "Contact": SObjectType(
        "003",
        ("Id", "FirstName", "LastName", "Name", "Email", "Phone", "MobilePhone", "Title", "AccountId",
         "CreatedDate", "LastModifiedDate"),
        parents=(("Account", "AccountId", "Account"),),
        phone_fields=("Phone", "MobilePhone"),
    ),
    "Case": SObjectType(
        "500",
        ("Id", "CaseNumber", "Subject", "Description", "Status", "Priority", "Origin", "Type", "Reason",
         "ContactId", "AccountId", "OwnerId", "IsClosed", "ClosedDate", "SuppliedName", "SuppliedEmail",
         "SuppliedPhone", "CreatedDate", "LastModifiedDate"),
        writable=("Subject", "Description", "Status", "Priority", "Origin", "Type", "Reason", "ContactId",
                  "AccountId", "OwnerId", "SuppliedName", "SuppliedEmail", "SuppliedPhone"),
        parents=(("Contact", "ContactId", "Contact"), ("Account", "AccountId", "Account")),
        phone_fields=("SuppliedPhone",),
        max_lengths=(("Subject", 255), ("Description", 32000), ("SuppliedName", 80), ("SuppliedEmail", 80),
                     ("SuppliedPhone", 40), ("Origin", 255), ("Type", 255), ("Reason", 255)),
    ),
    "CaseComment": SObjectType(
        "00a",
        ("Id", "ParentId", "CommentBody", "IsPublished", "CreatedById", "CreatedDate"),
        writable=("ParentId", "CommentBody", "IsPublished"),
        required=("ParentId",),
        parents=(("Parent", "ParentId", "Case"),),
        max_lengths=(("CommentBody", 4000),),
    ),
}
BY_PREFIX = {t.prefix: name for name, t in SCHEMA.items()}
LABELS = {"ContactId": "Contact ID", "AccountId": "Account ID", "ParentId": "Parent ID", "OwnerId": "Owner ID"}


def now() -> str:
    """Salesforce's timestamp format: milliseconds and a colon-less offset."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def id18(id15: str) -> str:
    """The 18-character id: three checksum characters, one per 5-character chunk, encoding its upper-case letters."""
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, char in enumerate(id15[start : start + 5]) if "A" <= char <= "Z")
        suffix += CHECKSUM_CHARS[bits]
    return id15 + suffix


def errors(status: int, code: str, message: str, fields: list[str] | None = None) -> web.Response:
    """Salesforce's error body: always a JSON array."""
    error: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        error["fields"] = fields
    return json_response([error], status=status)


def oauth_error(error: str, description: str) -> web.Response:
    """The token endpoint's error body (a single object, unlike the REST API's)."""
    return json_response({"error": error, "error_description": description}, status=400)


class ApiError(Exception):
    """An error answer raised from deep inside a handler."""

    def __init__(self, response: web.StreamResponse) -> None:
        """Carry the answer to the route wrapper."""
        super().__init__(response.status)
        self.response = response


def unescape_soql(text: str) -> str:
    """A SOQL literal's value; an unknown escape is MALFORMED_QUERY, as in Salesforce."""

    def one(match: re.Match[str]) -> str:
        """One escape sequence's character."""
        seq = match.group(1)
        if len(seq) == 5:  # \uXXXX
            return chr(int(seq[1:], 16))
        if seq.lower() in SOQL_UNESCAPES:  # \n and \N alike
            return SOQL_UNESCAPES[seq.lower()]
        raise ApiError(errors(400, "MALFORMED_QUERY", f"Invalid string literal: illegal escape sequence \\{seq}"))

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", one, text, flags=re.DOTALL)


class SalesforceEmulator(Emulator):
    """Answers as `https://{mydomain}.my.salesforce.com` does for the calls the connector makes."""

    name = "salesforce"
    auth_exempt = ("/services/oauth2/token",)

    def __init__(self) -> None:
        """Issued tokens live outside `reset`, as sessions outlive data changes in a real org."""
        # Sessions outlive a data reset, as in a real org; `expire_tokens` ends them.
        self.tokens: dict[str, bool] = {}  # issued token -> still valid
        self._signing_key = secrets.token_bytes(32)
        super().__init__()

    def reset(self) -> None:
        """Seed: Ahmed in Al-Mansoori Trading (Tier__c Enterprise), Layla, and Case 'Product not working'."""
        self.api_usage = 0
        self._ids = {name: itertools.count(100) for name in SCHEMA}
        self._case_numbers = itertools.count(1001)
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SCHEMA}
        created = "2023-01-15T09:00:00.000+0000"
        self._store("Account", "001000000000001", Name="Al-Mansoori Trading", Type="Customer - Direct",
                    Industry="Retail", Rating="Hot", Tier__c="Enterprise", CreatedDate=created)
        self._store("Contact", "003000000000001", FirstName="Ahmed", LastName="Al-Mansoori",
                    Email="ahmed@example.ae", Phone="+971501234567", AccountId="001000000000001AAA",
                    CreatedDate=created)
        self._store("Contact", "003000000000002", FirstName="Layla", LastName="Hassan",
                    Email="layla@example.com", Phone="(415) 555-2671", CreatedDate=created)
        self._store(
            "Case", "500000000000001", CaseNumber="00001000", Subject="Product not working",
            Description="Customer reports the device stopped working after the latest update.", Status="New",
            Priority="High", Origin="Phone", ContactId="003000000000001AAA", AccountId="001000000000001AAA",
            OwnerId=USER_ID, IsClosed=False, CreatedDate="2025-11-18T10:30:00.000+0000",
            LastModifiedDate="2025-11-18T11:45:00.000+0000",
        )

    def _store(self, sobject: str, id15: str, **values: Any) -> dict[str, Any]:
        """Keep a record with every field of its type (unset ones null), under its 15-character id."""
        record = {f: None for f in SCHEMA[sobject].fields}
        record.update(values, Id=id18(id15))
        record["LastModifiedDate"] = record.get("LastModifiedDate") or record.get("CreatedDate")
        if sobject == "Contact":  # Name is a read-only compound of the name fields
            record["Name"] = " ".join(filter(None, (record["FirstName"], record["LastName"])))
        self.records[sobject][id15] = record
        return record

    def _find(self, sobject: str, raw: Any) -> dict[str, Any] | None:
        """A record by its 15- or 18-character id (the first 15 characters identify it)."""
        if not isinstance(raw, str) or not ID_SHAPE.match(raw):
            return None
        return self.records[sobject].get(raw[:15])

    # --- wire behaviour -----------------------------------------------------------------------------

    def authenticate(self, request: web.Request) -> bool:
        """Bearer only: `invalid` and tokens this emulator issued and then expired are refused, others accepted."""
        token = bearer_token(request)
        return token is not None and token != "invalid" and self.tokens.get(token, True)

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        """401 INVALID_SESSION_ID, Salesforce's answer to a missing, bad or expired token."""
        return errors(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def not_found(self) -> web.StreamResponse:
        """404 NOT_FOUND in the error-array shape."""
        return errors(404, "NOT_FOUND", "The requested resource does not exist")

    def rate_limited(self, retry_after: int) -> web.StreamResponse:
        """403 REQUEST_LIMIT_EXCEEDED: Salesforce's API limit, with no Retry-After."""
        return errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")

    def server_error(self, status: int) -> web.StreamResponse:
        """5xx with an error array: SERVER_UNAVAILABLE for 503, UNKNOWN_EXCEPTION otherwise."""
        if status == 503:
            return errors(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable. Please try again.")
        return errors(status, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId.")

    def rate_limit_headers(self) -> dict[str, str]:
        """`Sforce-Limit-Info: api-usage=N/15000`, counting every answer."""
        self.api_usage += 1
        return {"Sforce-Limit-Info": f"api-usage={self.api_usage}/{API_LIMIT}"}

    def control(self, action: str, payload: dict[str, Any]) -> Any:
        """`expire_tokens`: every token issued so far now answers 401 INVALID_SESSION_ID."""
        if action == "expire_tokens":
            live = [token for token, valid in self.tokens.items() if valid]
            self.tokens.update(dict.fromkeys(live, False))
            return {"expired": len(live)}
        return super().control(action, payload)

    def add_routes(self, app: web.Application) -> None:
        """The token endpoint and the REST resources, under any `vXX.X` version."""
        api = "/services/data/{version}"
        app.router.add_post("/services/oauth2/token", self.token)
        for suffix in ("", "/"):
            app.router.add_get(f"{api}/query{suffix}", self._api(self.query))
            app.router.add_get(f"{api}/search{suffix}", self._api(self.search))
            app.router.add_post(f"{api}/sobjects/{{sobject}}{suffix}", self._api(self.create_record))
        app.router.add_get(f"{api}/limits", self._api(self.limits))
        app.router.add_get(f"{api}/sobjects/{{sobject}}/{{id}}", self._api(self.get_record))
        app.router.add_patch(f"{api}/sobjects/{{sobject}}/{{id}}", self._api(self.update_record))

    def _api(self, handler: Handler) -> Handler:
        """A REST handler behind the version check, with ApiError answered as its response."""

        async def run(request: web.Request) -> web.StreamResponse:
            """Check the version, run the handler, answer an ApiError."""
            if not VERSION.match(request.match_info["version"]):
                return self.not_found()
            try:
                return await handler(request)
            except ApiError as exc:
                return exc.response

        return run

    # --- OAuth 2.0 ---------------------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.StreamResponse:
        """`POST /services/oauth2/token`, form-encoded: client_credentials and refresh_token grants."""
        form = await request.post()
        grant = form.get("grant_type")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = basic_credentials(request)  # client authentication by HTTP Basic (RFC 6749 2.3.1), as SDKs send it
        if basic and not client_id:
            client_id, client_secret = basic[0], basic[1] or client_secret
        if grant not in ("client_credentials", "refresh_token"):
            return oauth_error("unsupported_grant_type", "grant type not supported")
        if not client_id or client_id == "invalid":
            return oauth_error("invalid_client_id", "client identifier invalid")
        if client_secret == "invalid" or (grant == "client_credentials" and not client_secret):
            return oauth_error("invalid_client", "invalid client credentials")
        if grant == "refresh_token" and form.get("refresh_token") in (None, "", "invalid"):
            return oauth_error("invalid_grant", "expired access/refresh token")
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
        self.tokens[token] = True
        identity = f"https://login.salesforce.com/id/{ORG_ID}/{USER_ID}"
        issued_at = str(int(time.time() * 1000))
        signature = hmac.new(self._signing_key, f"{identity}{issued_at}".encode(), hashlib.sha256).digest()
        return json_response(
            {
                "access_token": token,
                "signature": base64.b64encode(signature).decode(),
                "scope": "api",
                "instance_url": f"{request.scheme}://{request.host}/{self.name}",
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
            }
        )

    # --- reading --------------------------------------------------------------------------------------------

    def _field(self, sobject: str, name: str) -> str:
        """The field's own spelling (names are case-insensitive), or INVALID_FIELD."""
        for known in SCHEMA[sobject].fields:
            if known.lower() == name.lower():
                return known
        raise ApiError(
            errors(
                400,
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{sobject}'. If you are attempting to use a custom field, be "
                "sure to append the '__c' after the custom field name. Please reference your WSDL or the describe "
                "call for the appropriate names.",
            )
        )

    def _parent(self, sobject: str, relationship: str) -> tuple[str, str, str]:
        """(relationship, id field, parent type) of a relationship name, or INVALID_FIELD."""
        for parent in SCHEMA[sobject].parents:
            if parent[0].lower() == relationship.lower():
                return parent
        raise ApiError(
            errors(400, "INVALID_FIELD", f"Didn't understand relationship '{relationship}' in field path. If you are "
                   "attempting to use a custom relationship, be sure to append the '__r' after the custom relationship "
                   "name. Please reference your WSDL or the describe call for the appropriate names.")
        )

    def _check_path(self, sobject: str, path: str) -> None:
        """Validate a field path such as Account.Tier__c before any record is read."""
        *relationships, last = path.strip().split(".")
        for relationship in relationships:
            sobject = self._parent(sobject, relationship)[2]
        self._field(sobject, last)

    def _attributes(self, version: str, sobject: str, record: dict[str, Any]) -> dict[str, Any]:
        """The `attributes` every record in an answer starts with."""
        return {"attributes": {"type": sobject, "url": f"/services/data/{version}/sobjects/{sobject}/{record['Id']}"}}

    def _project(self, version: str, sobject: str, record: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        """A record as the API returns it: `attributes`, then each selected field, parents nested (or null)."""
        out = self._attributes(version, sobject, record)
        for path in paths:
            self._put(version, sobject, record, path.strip().split("."), out)
        return out

    def _put(self, version: str, sobject: str, record: dict[str, Any], parts: list[str], out: dict[str, Any]) -> None:
        """Set one field path on `out`, descending into (and creating) the nested parent records."""
        if len(parts) == 1:
            name = self._field(sobject, parts[0])
            out[name] = record.get(name)
            return
        relationship, id_field, parent_type = self._parent(sobject, parts[0])
        parent = self._find(parent_type, record.get(id_field))
        if parent is None:
            out[relationship] = None
            return
        nested = out.get(relationship) or self._attributes(version, parent_type, parent)
        out[relationship] = nested
        self._put(version, parent_type, parent, parts[1:], nested)

    def _sobject(self, request: web.Request) -> str:
        """The sObject type in the path; an unknown one is NOT_FOUND."""
        sobject = request.match_info["sobject"]
        match = next((name for name in SCHEMA if name.lower() == sobject.lower()), None)
        if match is None:
            raise ApiError(self.not_found())
        return match

    def _record_in_path(self, request: web.Request, sobject: str) -> dict[str, Any]:
        """The record addressed by the path's id: an id of another shape or type is not found."""
        raw = request.match_info["id"]
        if not ID_SHAPE.match(raw) or not raw.startswith(SCHEMA[sobject].prefix):
            raise ApiError(
                errors(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {raw}")
            )
        record = self._find(sobject, raw)
        if record is None:
            raise ApiError(self.not_found())
        return record

    async def limits(self, request: web.Request) -> web.StreamResponse:
        """`GET /limits`: the org's API allowances (readiness's credential check)."""
        return json_response({"DailyApiRequests": {"Max": 15000, "Remaining": 14999}})

    async def get_record(self, request: web.Request) -> web.StreamResponse:
        """`GET /sobjects/{type}/{id}[?fields=a,b]`."""
        sobject = self._sobject(request)
        record = self._record_in_path(request, sobject)
        wanted = request.query.get("fields")
        paths = [f for f in wanted.split(",") if f.strip()] if wanted else list(SCHEMA[sobject].fields)
        for path in paths:
            self._field(sobject, path.strip())
        return json_response(self._project(request.match_info["version"], sobject, record, paths))

    def _matches(self, sobject: str, record: dict[str, Any], field: str, value: str) -> bool:
        """SOQL `=`: ids by their first 15 characters, text case-insensitively."""
        stored = record.get(field)
        if field.endswith("Id"):
            if not ID_SHAPE.match(value):
                raise ApiError(errors(400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}"))
            return isinstance(stored, str) and stored[:15] == value[:15]
        if isinstance(stored, bool):
            return str(stored).lower() == value.lower()
        return stored is not None and str(stored).lower() == value.lower()

    async def query(self, request: web.Request) -> web.StreamResponse:
        """`GET /query?q=SELECT a, B.c FROM Type [WHERE Field = 'literal'] [LIMIT n]`."""
        soql = request.query.get("q", "")
        parsed = SOQL.match(soql)
        if not parsed:
            return errors(400, "MALFORMED_QUERY", f"unexpected token in query: {soql[:200]}")
        sobject = next((name for name in SCHEMA if name.lower() == parsed["sobject"].lower()), None)
        if sobject is None:
            return errors(
                400, "INVALID_TYPE", f"sObject type '{parsed['sobject']}' is not supported. If you are attempting "
                "to use a custom object, be sure to append the '__c' after the entity name."
            )
        paths = [p.strip() for p in parsed["fields"].split(",")]
        for path in paths:
            self._check_path(sobject, path)
        records = list(self.records[sobject].values())
        if parsed["field"]:
            field = self._field(sobject, parsed["field"])
            value = unescape_soql(parsed["value"])
            records = [r for r in records if self._matches(sobject, r, field, value)]
        limit = int(parsed["limit"]) if parsed["limit"] else 2000
        version = request.match_info["version"]
        found = [self._project(version, sobject, r, paths) for r in records[:limit]]
        return json_response({"totalSize": len(found), "done": True, "records": found})

    def _terms(self, text: str) -> list[str]:
        """The OR'ed terms of a FIND clause, unescaped; an unescaped reserved character is MALFORMED_SEARCH."""
        terms = []
        for match in SOSL_TERM.finditer(text):
            term = match["phrase"] if match["phrase"] is not None else match["word"]
            if match["word"] is not None and term.upper() in ("OR", "AND"):
                continue
            if match["word"] is not None and SOSL_BARE_RESERVED.search(term):
                raise ApiError(errors(400, "MALFORMED_SEARCH", f"mismatched character in search term: {term[:80]}"))
            terms.append(re.sub(r"\\(.)", r"\1", term, flags=re.DOTALL))
        if not terms or any(len(t.strip("*?")) < 2 for t in terms):
            raise ApiError(errors(400, "INVALID_SEARCH", "search term must be longer than one character"))
        return terms

    def _found_by(self, sobject: str, record: dict[str, Any], scope: str, term: str) -> bool:
        """Phone scope compares digits (a stored number matches the digits it ends with); others compare text."""
        if scope == "PHONE":
            wanted = digits(term)
            return bool(wanted) and any(
                digits(record.get(f)).endswith(wanted) for f in SCHEMA[sobject].phone_fields if record.get(f)
            )
        fields = ("Email",) if scope == "EMAIL" else ("Name", "FirstName", "LastName") if scope == "NAME" else None
        text = term.lower().strip("*")
        values = [record.get(f) for f in fields] if fields else list(record.values())
        return any(isinstance(v, str) and text in v.lower() for v in values)

    def _returning(self, spec: str | None) -> list[tuple[str, list[str], int | None]]:
        """`Contact(Id, Name LIMIT 5), Account` → [(sObject, paths, per-object limit)]; none: all searchable types."""
        if not spec:
            return [(name, ["Id"], None) for name in SEARCHABLE]
        out: list[tuple[str, list[str], int | None]] = []
        for item in SOSL_OBJECT.finditer(spec):
            sobject = next((name for name in SCHEMA if name.lower() == item["sobject"].lower()), None)
            if sobject is None:
                raise ApiError(errors(400, "INVALID_TYPE", f"sObject type '{item['sobject']}' is not supported."))
            # The field list may end in its own LIMIT: Contact(Id, Name LIMIT 5).
            inner = re.match(r"(?is)^(?P<fields>.*?)(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$", item["fields"] or "Id")
            assert inner is not None  # the pattern matches any text
            paths = [p.strip() for p in inner["fields"].split(",") if p.strip()] or ["Id"]
            for path in paths:
                self._check_path(sobject, path)
            out.append((sobject, paths, int(inner["limit"]) if inner["limit"] else None))
        return out

    async def search(self, request: web.Request) -> web.StreamResponse:
        """`GET /search/?q=FIND {a OR "b"} IN PHONE FIELDS [RETURNING Type(fields)[, Type2...]] [LIMIT n]`.

        → `{"searchRecords"}`; without RETURNING every searchable type answers with its Ids.
        """
        sosl = request.query.get("q", "")
        parsed = SOSL.match(sosl)
        if not parsed:
            return errors(400, "MALFORMED_SEARCH", f"unexpected token in search: {sosl[:200]}")
        terms = self._terms(parsed["terms"])
        specs = self._returning(parsed["returning"])
        scope = (parsed["scope"] or "ALL").upper()
        version = request.match_info["version"]
        found: list[dict[str, Any]] = []
        for sobject, paths, limit in specs:
            records = self.records[sobject].values()
            hits = [r for r in records if any(self._found_by(sobject, r, scope, t) for t in terms)]
            found += [self._project(version, sobject, r, paths) for r in hits[: limit or 2000]]
        return json_response({"searchRecords": found[: int(parsed["limit"] or 2000)]})

    # --- writing ----------------------------------------------------------------------------------------------

    async def _fields(self, request: web.Request) -> dict[str, Any]:
        """The JSON object body, or JSON_PARSER_ERROR."""
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise ApiError(errors(400, "JSON_PARSER_ERROR", "Unexpected character: was expecting a JSON object"))
        return body

    def _validate(self, sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Field names, write access, picklists, lengths and references, with Salesforce's codes and wording."""
        kind = SCHEMA[sobject]
        clean: dict[str, Any] = {}
        for raw_name, value in fields.items():
            name = next((f for f in kind.fields if f.lower() == str(raw_name).lower()), None)
            if name is None:
                message = f"No such column '{raw_name}' on sobject of type {sobject}"
                raise ApiError(errors(400, "INVALID_FIELD", message))
            if name not in kind.writable:
                raise ApiError(
                    errors(
                        400,
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        f"Unable to create/update fields: {name}. Please check the security settings of this field "
                        "and verify that it is read/write for your profile or permission set.",
                        [name],
                    )
                )
            clean[name] = value
        picklists = {"Status": CASE_STATUSES, "Priority": CASE_PRIORITIES} if sobject == "Case" else {}
        for name, allowed in picklists.items():
            if name in clean and clean[name] not in allowed:
                raise ApiError(
                    errors(
                        400,
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{name}: bad value for restricted picklist field: {str(clean[name])[:40]}",
                        [name],
                    )
                )
        for name, limit in kind.max_lengths:
            value = clean.get(name)
            if isinstance(value, str) and len(value) > limit:
                message = f"{name}: data value too large: {value[:20]}... (max length={limit})"
                raise ApiError(errors(400, "STRING_TOO_LONG", message, [name]))
        for _, id_field, parent_type in kind.parents:
            value = clean.get(id_field)
            if value is None:
                continue
            label = LABELS.get(id_field, id_field)
            of_type = isinstance(value, str) and ID_SHAPE.match(value) and value.startswith(SCHEMA[parent_type].prefix)
            if not of_type:
                raise ApiError(
                    errors(400, "MALFORMED_ID", f"{label}: id value of incorrect type: {str(value)[:18]}", [id_field])
                )
            if self._find(parent_type, value) is None:
                raise ApiError(errors(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [id_field]))
            clean[id_field] = id18(value[:15])
        missing = [name for name in kind.required if clean.get(name) in (None, "")]
        if missing:
            raise ApiError(
                errors(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
            )
        return clean

    def _case_defaults(self, case: dict[str, Any]) -> None:
        """What Salesforce derives on save: the Contact's Account, IsClosed and ClosedDate."""
        if case.get("ContactId") and not case.get("AccountId"):
            contact = self._find("Contact", case["ContactId"]) or {}
            case["AccountId"] = contact.get("AccountId")
        closed = case.get("Status") in CLOSED_STATUSES
        if closed and not case.get("IsClosed"):
            case["ClosedDate"] = case["LastModifiedDate"]
        case["IsClosed"] = closed
        if not closed:
            case["ClosedDate"] = None

    async def create_record(self, request: web.Request) -> web.StreamResponse:
        """`POST /sobjects/Case` or `/sobjects/CaseComment` → 201 `{"id","success":true,"errors":[]}`."""
        sobject = self._sobject(request)
        if not SCHEMA[sobject].writable:
            return errors(
                403, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id"
            )  # this sandbox org only writes Cases and their comments
        fields = self._validate(sobject, await self._fields(request))
        stamp = now()
        id15 = f"{SCHEMA[sobject].prefix}{next(self._ids[sobject]):012d}"
        extra: dict[str, Any] = {"CreatedDate": stamp, "LastModifiedDate": stamp}
        if sobject == "Case":
            extra.update(CaseNumber=f"{next(self._case_numbers):08d}", OwnerId=USER_ID, Status="New", Priority="Medium")
        if sobject == "CaseComment":
            extra.update(IsPublished=False, CreatedById=USER_ID)
        record = self._store(sobject, id15, **{**extra, **fields})
        if sobject == "Case":
            self._case_defaults(record)
        return json_response({"id": record["Id"], "success": True, "errors": []}, status=201)

    async def update_record(self, request: web.Request) -> web.StreamResponse:
        """`PATCH /sobjects/Case/{id}` → 204 with no body."""
        sobject = self._sobject(request)
        record = self._record_in_path(request, sobject)
        if sobject != "Case":
            return errors(403, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")
        fields = self._validate(sobject, await self._fields(request))
        record.update(fields, LastModifiedDate=now())
        self._case_defaults(record)
        return web.Response(status=204)
