"""Salesforce REST API emulator: OAuth token endpoint, sObjects (Contact, Account, Case, CaseComment, User), SOQL
(sandbox/soql.py, with paging and queryAll) and SOSL (sandbox/sosl.py).

SOQL follows Salesforce's grammar (https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/);
paging follows the REST API's Query and Query More Results resources
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm,
.../dome_query.htm#retrieve-the-remaining-results, .../resources_queryall.htm) and the Sforce-Query-Options header
(.../headers_queryoptions.htm). SOSL is the subset in sandbox/sosl.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
import secrets
import time
from functools import partial
from datetime import datetime, timezone
from typing import Any

import orjson
from aiohttp import web

from sandbox import salesforce_collections as collections
from sandbox import soql_eval, sosl
from sandbox.core import Emulator, Handler, VendorError, basic_credentials, bearer_token, json_response
from sandbox.oauth import Wire, salesforce_extra
from sandbox.salesforce_schema import (
    CASE_PRIORITIES,
    CASE_STATUSES,
    CLOSED_STATUSES,
    ID_SHAPE,
    LABELS,
    SCHEMA,
    OrgCatalog,
    id18,
)
from sandbox.soql import SoqlError, parse

ORG_ID = "00D000000000001AAA"
USER_ID = "005000000000001AAA"
API_LIMIT = 15000
VERSION = re.compile(r"^v\d{2,3}\.\d$")
BATCH_SIZE = 2000  # records per query answer, unless Sforce-Query-Options asks for fewer
BATCH_OPTION = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)
LOCATOR = re.compile(r"^(?P<locator>01g[A-Za-z0-9]{15})-(?P<offset>\d+)$")
MAX_CURSORS = 200  # open query locators kept; the oldest goes first, as Salesforce expires idle cursors


def now() -> str:
    """Salesforce's timestamp format: milliseconds and a colon-less offset."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def errors(status: int, code: str, message: str, fields: list[str] | None = None) -> web.Response:
    """Salesforce's error body: always a JSON array."""
    error: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        error["fields"] = fields
    return json_response([error], status=status)


def oauth_error(error: str, description: str) -> web.Response:
    """The token endpoint's error body (a single object, unlike the REST API's)."""
    return json_response({"error": error, "error_description": description}, status=400)


class ApiError(VendorError):
    """A Salesforce error answer raised from deep inside a handler (core's VendorError renders it)."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__(response.status)
        self.prebuilt = response


class SalesforceEmulator(Emulator):
    """Answers as `https://{mydomain}.my.salesforce.com` does for the calls the connector makes."""

    name = "salesforce"
    oauth_wire = Wire("/services/oauth2/authorize", "/services/oauth2/token", rotates=False, expires_in=None,
                      extra=salesforce_extra)
    auth_exempt = ("/services/oauth2/token",)

    def __init__(self) -> None:
        """Issued tokens live outside `reset`, as sessions outlive data changes in a real org."""
        # Sessions outlive a data reset, as in a real org; `expire_tokens` ends them.
        self.tokens: dict[str, bool] = {}  # issued token -> still valid
        self._signing_key = secrets.token_bytes(32)
        super().__init__()

    def ticket_ids(self) -> list[str]:
        """The tickets held now."""
        return [id18(i) for i in self.records["Case"]]

    def reset(self) -> None:
        """Seed: the integration User, Ahmed in Al-Mansoori Trading (Tier__c Enterprise), Layla; Ahmed's open Case 'Product not working' and closed 'Invoice copy requested'."""
        self.api_usage = 0
        self._ids = {name: itertools.count(100) for name in SCHEMA}
        self._case_numbers = itertools.count(1001)
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SCHEMA}
        self.cursors: dict[str, tuple[list[dict[str, Any]], int, int]] = {}  # locator -> (records, total, batch)
        self._locators = itertools.count(1)
        created = "2023-01-15T09:00:00.000+0000"
        self._store("User", USER_ID[:15], Username="integration@sandbox.example", FirstName="Integration",
                    LastName="User", Email="integration@sandbox.example", IsActive=True, CreatedDate=created)
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
        self._store(
            "Case", "500000000000002", CaseNumber="00000999", Subject="Invoice copy requested",
            Description="Caller asked for a copy of the September invoice.", Status="Closed",
            Priority="Low", Origin="Phone", ContactId="003000000000001AAA", AccountId="001000000000001AAA",
            OwnerId=USER_ID, IsClosed=True, CreatedDate="2025-10-02T08:00:00.000+0000",
            LastModifiedDate="2025-10-02T09:10:00.000+0000", ClosedDate="2025-10-02T09:10:00.000+0000",
        )

    def _store(self, sobject: str, id15: str, **values: Any) -> dict[str, Any]:
        """Keep a record with every field of its type (unset ones null), under its 15-character id."""
        record = {f: None for f in SCHEMA[sobject].fields}
        record.update(values, Id=id18(id15))
        record["LastModifiedDate"] = record.get("LastModifiedDate") or record.get("CreatedDate")
        if "FirstName" in record:  # a Contact's or User's Name is a read-only compound of the name fields
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
            app.router.add_get(f"{api}/queryAll{suffix}", self._api(self.query_all))
            app.router.add_get(f"{api}/search{suffix}", self._api(self.search))
            app.router.add_post(f"{api}/sobjects/{{sobject}}{suffix}", self._api(self.create_record))
        app.router.add_post(f"{api}/composite/sobjects", self._api(partial(collections.create, self)))
        app.router.add_get(f"{api}/composite/sobjects/{{sobject}}", self._api(partial(collections.retrieve, self)))
        app.router.add_get(f"{api}/query/{{cursor}}", self._api(self.query_more))
        app.router.add_get(f"{api}/queryAll/{{cursor}}", self._api(self.query_more))
        app.router.add_get(f"{api}/limits", self._api(self.limits))
        app.router.add_get(f"{api}/sobjects/{{sobject}}/describe", self._api(self.describe))  # before {id}
        app.router.add_get(f"{api}/sobjects/{{sobject}}/{{id}}", self._api(self.get_record))
        app.router.add_patch(f"{api}/sobjects/{{sobject}}/{{id}}", self._api(self.update_record))

    def _api(self, handler: Handler) -> Handler:
        """A REST handler behind the version check; a refused SOQL query is Salesforce's 400."""

        async def run(request: web.Request) -> web.StreamResponse:
            """Check the version, run the handler, answer a SoqlError (a VendorError is the middleware's)."""
            if not VERSION.match(request.match_info["version"]):
                return self.not_found()
            try:
                return await handler(request)
            except SoqlError as exc:  # a refused SOQL query or SOSL search, or a bad field in ?fields=
                return errors(400, exc.code, exc.message(request.query.get("q", "")))

        return run

    # --- OAuth 2.0 ---------------------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.StreamResponse:
        """`POST /services/oauth2/token`, form-encoded: client_credentials and refresh_token grants."""
        form = await request.post()
        grant = form.get("grant_type")
        if self.oauth is not None and (grant == "authorization_code" or form.get("refresh_token") in self.oauth.refresh_tokens):
            return await self.oauth.token(request, dict(form))  # the web server flow's grants (sandbox/oauth.py)
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

    def _project(self, version: str, sobject: str, record: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        """A record as the API returns it: `attributes`, then each selected field, parents nested (or null)."""
        catalog = OrgCatalog(self, version)
        fields = [soql_eval.resolve(catalog, sobject, path) for path in paths]
        return soql_eval.project(catalog, sobject, record, fields)

    def _sobject(self, request: web.Request) -> str:
        """The sObject type in the path; an unknown one is NOT_FOUND."""
        sobject = request.match_info["sobject"]
        match = OrgCatalog.sobject_name(sobject)
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

    async def describe(self, request: web.Request) -> web.StreamResponse:
        """`GET /sobjects/{type}/describe`: the type's fields, each lookup with its relationship and target."""
        sobject = self._sobject(request)
        schema = SCHEMA[sobject]
        lookups = {id_field: (name, target) for name, id_field, target in schema.parents}
        fields = [
            {"name": field, "type": "reference" if field in lookups else OrgCatalog(self, "").field_type(sobject, field),
             "createable": field in schema.writable, "updateable": field in schema.writable,
             "custom": field.endswith("__c"), "relationshipName": lookups.get(field, (None,))[0],
             "referenceTo": [lookups[field][1]] if field in lookups else []}
            for field in schema.fields
        ]  # fmt: skip
        return json_response({"name": sobject, "custom": False, "fields": fields,
                              "urls": {"describe": f"/services/data/{request.match_info['version']}/sobjects/{sobject}/describe"}})  # fmt: skip

    async def get_record(self, request: web.Request) -> web.StreamResponse:
        """`GET /sobjects/{type}/{id}[?fields=a,b]` (the type's own fields only, no parent paths)."""
        sobject = self._sobject(request)
        record = self._record_in_path(request, sobject)
        wanted = request.query.get("fields")
        paths = [f.strip() for f in wanted.split(",") if f.strip()] if wanted else list(SCHEMA[sobject].fields)
        for path in paths:
            if "." in path:  # resolve() would follow the lookup; this resource does not
                raise SoqlError("INVALID_FIELD", soql_eval.NO_COLUMN.format(name=path, sobject=sobject))
        return json_response(self._project(request.match_info["version"], sobject, record, paths))

    async def query(self, request: web.Request) -> web.StreamResponse:
        """`GET /query?q=SELECT ...`: the first batch, and a locator for the rest (the Query resource)."""
        return self._run_query(request, "query")

    async def query_all(self, request: web.Request) -> web.StreamResponse:
        """`GET /queryAll?q=SELECT ...`: as /query (this org deletes nothing, so there is nothing more to include)."""
        return self._run_query(request, "queryAll")

    def _run_query(self, request: web.Request, resource: str) -> web.StreamResponse:
        """Parse, answer, and page by the batch size of `Sforce-Query-Options: batchSize=N`."""
        soql = request.query.get("q", "")
        if not soql.strip():
            return errors(400, "MALFORMED_QUERY", "A query string has to be specified")
        total, records = soql_eval.run(OrgCatalog(self, request.match_info["version"]), parse(soql))
        option = BATCH_OPTION.search(request.headers.get("Sforce-Query-Options", ""))
        # Salesforce's smallest batch is 200 and it may send more than asked; smaller ones are allowed here so
        # that paging can be exercised with a small seed.
        batch = min(max(int(option[1]), 1), BATCH_SIZE) if option else BATCH_SIZE
        if len(records) <= batch:
            return json_response({"totalSize": total, "done": True, "records": records})
        locator = id18(f"01g{next(self._locators):012d}")
        self.cursors[locator] = (records, total, batch)
        while len(self.cursors) > MAX_CURSORS:
            del self.cursors[next(iter(self.cursors))]
        return self._batch(request.match_info["version"], resource, locator, 0)

    def _batch(self, version: str, resource: str, locator: str, start: int) -> web.StreamResponse:
        """One batch of an open cursor: `done:false` and `nextRecordsUrl` until its last batch."""
        records, total, batch = self.cursors[locator]
        end = start + batch
        body: dict[str, Any] = {"totalSize": total, "done": end >= len(records)}
        if end < len(records):
            body["nextRecordsUrl"] = f"/services/data/{version}/{resource}/{locator}-{end}"
        body["records"] = records[start:end]
        return json_response(body)

    async def query_more(self, request: web.Request) -> web.StreamResponse:
        """`GET /query/{locator}-{offset}` (or under /queryAll): the batch that starts at offset."""
        cursor = LOCATOR.match(request.match_info["cursor"])
        if cursor is None or cursor["locator"] not in self.cursors:
            return errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        if int(cursor["offset"]) >= len(self.cursors[cursor["locator"]][0]):
            return errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        resource = "queryAll" if "/queryAll/" in request.path else "query"
        return self._batch(request.match_info["version"], resource, cursor["locator"], int(cursor["offset"]))

    async def search(self, request: web.Request) -> web.StreamResponse:
        """`GET /search/?q=FIND {a OR "b"} IN PHONE FIELDS [RETURNING Type(fields)[, ...]] [LIMIT n]` (sandbox/sosl.py)."""
        found = sosl.search(OrgCatalog(self, request.match_info["version"]), request.query.get("q", ""))
        return json_response({"searchRecords": found})

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
            name = OrgCatalog.field_name(sobject, str(raw_name))
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
        record = self.create(self._sobject(request), await self._fields(request))
        return json_response({"id": record["Id"], "success": True, "errors": []}, status=201)

    def create(self, sobject: str, body: dict[str, Any]) -> dict[str, Any]:
        """One new record of a writable type (an ApiError otherwise): the sObject and Collections creates share it."""
        if not SCHEMA[sobject].writable:  # this sandbox org only writes Cases and their comments
            raise ApiError(errors(403, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id"))
        fields = self._validate(sobject, body)
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
        return record

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
