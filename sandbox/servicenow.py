"""ServiceNow Table API emulator: sys_user / customer_contact, core_company / customer_account, incident, sys_dictionary, OAuth.

Answers as `https://{instance}.service-now.com` does for the Table API calls the connector and PySNC make:
`{"result": ...}` bodies, X-Total-Count, sysparm_query / _fields (dot-walked) / _display_value / _limit /
_offset / _exclude_reference_link, priority derived from impact x urgency, journal fields, and
`{"error":{"message","detail"},"status":"failure"}` errors.
"""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

import orjson
from aiohttp import web

from sandbox import webhook_payloads
from sandbox.core import Emulator, VendorError, basic_credentials, bearer_token, json_response
from sandbox.oauth import Wire
from sandbox.servicenow_dictionary import dictionary
from sandbox.servicenow_query import QueryError, compile_query

Record = dict[str, Any]
# Reference fields -> the table they point at (for dot-walking and display values).
REFERENCES: dict[str, str] = {
    "company": "core_company", "account": "customer_account", "caller_id": "sys_user", "opened_by": "sys_user",
    "assigned_to": "sys_user", "assignment_group": "sys_user_group",
}  # fmt: skip
# Tables whose records live in another's (customer_contact extends sys_user: a contact is also a user).
PARENT: dict[str, str] = {"customer_contact": "sys_user"}
JOURNAL_FIELDS = ("comments", "work_notes")  # write-only through the record; read back empty
# The base Priority Lookup Rules: (impact, urgency) -> priority.
PRIORITY_LOOKUP: dict[tuple[str, str], str] = {
    ("1", "1"): "1", ("1", "2"): "2", ("1", "3"): "3",
    ("2", "1"): "2", ("2", "2"): "3", ("2", "3"): "4",
    ("3", "1"): "3", ("3", "2"): "4", ("3", "3"): "5",
}  # fmt: skip
INCIDENT_DEFAULTS: Record = {
    "number": "", "short_description": "", "description": "", "caller_id": "", "state": "1", "impact": "3",
    "urgency": "3", "priority": "5", "category": "inquiry", "subcategory": "", "contact_type": "", "cmdb_ci": "",
    "assignment_group": "", "assigned_to": "", "opened_by": "", "resolved_at": "", "closed_at": "",
    "close_code": "", "close_notes": "", "correlation_id": "", "active": "true", "comments": "", "work_notes": "",
    "u_order_number": "",  # a custom column (sandbox/servicenow_dictionary.py), for field mapping
}  # fmt: skip
USER_DEFAULTS: Record = {
    "name": "", "first_name": "", "last_name": "", "email": "", "phone": "", "mobile_phone": "", "title": "",
    "user_name": "", "active": "true", "time_zone": "Asia/Dubai", "preferred_language": "en", "company": "",
    "account": "", "sys_class_name": "sys_user", "u_loyalty_number": "",
}  # fmt: skip
RATE_LIMIT = 100_000  # requests per hour on the rate-limit rule the sandbox pretends to have
RATE_RULE = "f2b2f7d1c0a8016400b5a1e2b3c4d5e6"  # that rule's sys_id (sys_rate_limit_rules), as X-RateLimit-Rule names it
TOKEN_SECONDS = 1799  # ServiceNow's default access-token lifespan (30 minutes, less a second)


def stamp() -> str:
    """ServiceNow's raw date-time form, in UTC."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def failure(status: int, message: str, detail: str | None = None) -> VendorError:
    """ServiceNow's error answer."""
    return VendorError(status, {"error": {"message": message, "detail": detail}, "status": "failure"})


class ServiceNowEmulator(Emulator):
    """The Table API of one instance, with its OAuth token endpoint."""

    name = "servicenow"
    auth_exempt = ("/oauth_token.do",)
    # The authorization-code grant (oauth_auth.do, then oauth_token.do); refresh tokens are not replaced on use.
    oauth_wire = Wire("/oauth_auth.do", "/oauth_token.do", rotates=False, expires_in=TOKEN_SECONDS)

    def ticket_ids(self) -> list[str]:
        """The incidents held now."""
        return list(self.tables["incident"])

    def reset(self) -> None:
        """Seed: Ahmed (a customer_contact, so also a sys_user) of Al-Mansoori Trading, Layla, Omar; two incidents;
        the dictionary of these tables, custom columns u_loyalty_number (sys_user) and u_order_number (incident)."""
        self.tokens: dict[str, float] = {}  # access token -> expiry (time.time())
        self.refresh_tokens: set[str] = set()
        self.journal: list[Record] = []
        self.mod_counts: dict[str, int] = {}  # sys_id -> updates since the sandbox started (the webhooks' sys_mod_count)
        self._numbers = itertools.count(10003)
        self._ids = itertools.count(0x1000)  # new sys_ids, deterministic so tests can name them
        self.calls = 0
        created = "2023-01-15 09:00:00"
        company = {"sys_id": "31bea3d53790200044e0bfc8bcbe5dec", "name": "Al-Mansoori Trading", "u_tier": "Enterprise",
                   "city": "Dubai", "sys_created_on": created, "sys_updated_on": created}  # fmt: skip
        account = {**company, "sys_id": "b6e7fe6e1b1c2010a8d8a8b2cd4bcb2a", "number": "ACC0000001"}
        self.tables: dict[str, dict[str, Record]] = {
            "core_company": {company["sys_id"]: company},
            "customer_account": {account["sys_id"]: account},
            "sys_user_group": {},
            "sys_user": {},
            "incident": {},
            "sys_dictionary": dictionary(),
        }
        self._user("a8f98bb0eb32010045e1a5115206fe3a", "Ahmed", "Al-Mansoori", "ahmed@example.ae",
                   phone="+971501234567", company=company["sys_id"], account=account["sys_id"],
                   sys_class_name="customer_contact", u_loyalty_number="LOY-7781")  # fmt: skip
        self._user("62826bf03710200044e0bfc8bcbe5df1", "Layla", "Hassan", "layla@example.com",
                   mobile_phone="(415) 555-2671")  # fmt: skip
        self._user("46d44a23a9fe19810012d100cca80666", "Omar", "Khalid", "", phone="+44 20 7946 0958")
        self._incident("9d385017c611228701d22104cc95c371", "INC0010001", "2025-11-18 10:30:00", {
            "short_description": "Product not working", "caller_id": "a8f98bb0eb32010045e1a5115206fe3a",
            "description": "Customer reports the device stopped working after the latest update.",
            "state": "2", "impact": "1", "urgency": "2", "contact_type": "phone", "category": "hardware",
        }, updated="2025-11-18 11:45:00")  # fmt: skip
        self._incident("e8caedcbc0a80164017df472f39eaed1", "INC0010002", "2025-10-02 08:00:00", {
            "short_description": "Invoice copy requested", "caller_id": "a8f98bb0eb32010045e1a5115206fe3a",
            "description": "Caller asked for a copy of the September invoice.", "state": "6", "impact": "2",
            "urgency": "3", "contact_type": "phone", "close_code": "Solution provided",
            "resolved_at": "2025-10-02 09:10:00",
        }, updated="2025-10-02 09:10:00")  # fmt: skip

    def _user(self, sys_id: str, first: str, last: str, email: str, **fields: str) -> None:
        created = "2023-01-15 09:00:00"
        user_name = f"{first}.{last}".lower()
        self.tables["sys_user"][sys_id] = {
            **USER_DEFAULTS, "sys_id": sys_id, "first_name": first, "last_name": last, "name": f"{first} {last}",
            "email": email, "user_name": user_name, "sys_created_on": created, "sys_updated_on": created, **fields,
        }  # fmt: skip

    def _incident(self, sys_id: str, number: str, created: str, fields: Record, updated: str | None = None) -> Record:
        record = {**INCIDENT_DEFAULTS, **{k: str(v) for k, v in fields.items()}, "sys_id": sys_id, "number": number,
                  "opened_at": created, "sys_created_on": created, "sys_updated_on": updated or created}  # fmt: skip
        self._derive(record)
        self.tables["incident"][sys_id] = record
        return record

    @staticmethod
    def _derive(record: Record) -> None:
        """What the instance computes on save: priority from impact x urgency; active from the state."""
        record["priority"] = PRIORITY_LOOKUP.get((record["impact"], record["urgency"]), record["priority"])
        record["active"] = "false" if record["state"] in ("6", "7", "8") else "true"

    # --- wire ------------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """The Table API and the token endpoint."""
        app.router.add_post("/oauth_token.do", self.token)
        app.router.add_get("/api/now/table/{table}", self.list_records)
        app.router.add_post("/api/now/table/{table}", self.create)
        app.router.add_get("/api/now/table/{table}/{sys_id}", self.get_record)
        app.router.add_patch("/api/now/table/{table}/{sys_id}", self.update)
        app.router.add_put("/api/now/table/{table}/{sys_id}", self.update)

    def authenticate(self, request: web.Request) -> bool:
        """Basic with any password but `invalid`, or a Bearer token this instance issued and that is unexpired."""
        token = bearer_token(request)
        if token is not None:  # the authorization-code flow's tokens: sandbox/oauth.py checks their expiry
            return self.tokens.get(token, 0) > time.time() or (self.oauth is not None and token in self.oauth.access_tokens)
        creds = basic_credentials(request)
        return creds is not None and bool(creds[0]) and "invalid" not in creds[1]

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        """ServiceNow's 401."""
        return failure(401, "User Not Authenticated", "Required to provide Auth information").response()

    def not_found(self) -> web.StreamResponse:
        """ServiceNow's 400 for a path the REST API does not serve."""
        return failure(400, "Requested URI does not represent any resource").response()

    def rate_limited(self, retry_after: int) -> web.StreamResponse:
        """A rate-limit rule's 429: Retry-After and the X-RateLimit-* of the rule."""
        headers = {"Retry-After": str(retry_after), **self.rate_limit_headers()}
        body = {"error": {"message": "Rate limit exceeded", "detail": "Rate limit of 100000 per hour exceeded"},
                "status": "failure"}  # fmt: skip
        return json_response(body, status=429, headers=headers)

    def server_error(self, status: int) -> web.StreamResponse:
        """A 5xx in ServiceNow's error shape."""
        return failure(status, "Service Unavailable", "The instance is not available").response()

    def rate_limit_headers(self) -> dict[str, str]:
        """The documented three: the rule's limit, when its hour resets (epoch seconds) and the rule's sys_id.

        https://www.servicenow.com/docs/r/api-reference/rest-api-explorer/inbound-REST-API-rate-limiting.html
        (ServiceNow sends no remaining count.)
        """
        self.calls += 1
        reset = (int(time.time()) // 3600 + 1) * 3600
        return {"X-RateLimit-Limit": str(RATE_LIMIT), "X-RateLimit-Reset": str(reset), "X-RateLimit-Rule": RATE_RULE}

    def control(self, action: str, payload: dict[str, Any]) -> Any:
        """`expire_tokens`: every issued access token stops working (the next call gets a 401)."""
        if action != "expire_tokens":
            return super().control(action, payload)
        self.tokens.clear()
        return {"ok": True}

    # --- OAuth ------------------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        """`POST /oauth_token.do`, form-encoded: password, client_credentials or refresh_token grants."""
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        client = basic_credentials(request)  # RFC 6749 2.3.1: the client may authenticate by Basic instead
        if client and ("client_id" not in form or "client_secret" not in form):
            form.update(client_id=client[0], client_secret=client[1])
        grant = form.get("grant_type")
        if self.oauth is not None and (grant == "authorization_code" or form.get("refresh_token") in self.oauth.refresh_tokens):
            return await self.oauth.token(request, dict(form))  # the authorization-code flow (sandbox/oauth.py)
        client_ok = bool(form.get("client_id")) and "invalid" not in form.get("client_secret", "invalid")
        grant_ok = {
            "password": lambda: bool(form.get("username")) and "invalid" not in form.get("password", "invalid"),
            "client_credentials": lambda: True,
            "refresh_token": lambda: form.get("refresh_token") in self.refresh_tokens,
        }.get(grant or "", lambda: False)
        if not (client_ok and grant_ok()):
            return json_response({"error_description": "access_denied", "error": "server_error"}, status=401)
        access, refresh = uuid.uuid4().hex, uuid.uuid4().hex
        self.tokens[access] = time.time() + TOKEN_SECONDS
        self.refresh_tokens.add(refresh)
        body = {"access_token": access, "refresh_token": refresh, "scope": "useraccount", "token_type": "Bearer",
                "expires_in": TOKEN_SECONDS}  # fmt: skip
        return json_response(body)

    # --- Table API ----------------------------------------------------------------------------------

    def _table(self, name: str) -> dict[str, Record]:
        """The records of a table (a child table's are its parent's of that class)."""
        parent = PARENT.get(name)
        if parent:
            return {k: r for k, r in self.tables[parent].items() if r.get("sys_class_name") == name}
        if name not in self.tables:
            raise failure(400, f"Invalid table {name}")
        return self.tables[name]

    def _find(self, table: str, sys_id: str) -> Record:
        record = self._table(table).get(sys_id)
        if record is None:
            raise failure(404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
        return record

    def _lookup(self, record: Record, path: str) -> Any:
        """A field's raw value, following dot-walked references (company.name)."""
        value: Any = record
        for i, part in enumerate(path.split(".")):
            if not isinstance(value, dict) or part not in value:
                return None
            if i < path.count(".") and part in REFERENCES:
                value = self.tables.get(REFERENCES[part], {}).get(value[part])
            else:
                value = value[part]
        return value

    def _display(self, field: str, value: Any) -> Any:
        """A reference's display value: the referenced record's name (or number)."""
        if field.split(".")[-1] in REFERENCES and value:
            target = self.tables.get(REFERENCES[field.split(".")[-1]], {}).get(value, {})
            return target.get("name") or target.get("number") or ""
        return value

    def _render(self, request: web.Request, table: str, record: Record) -> Record:
        """One record as the query's sysparm_fields / _display_value / _exclude_reference_link ask."""
        query = request.query
        fields = [f for f in query.get("sysparm_fields", "").split(",") if f] or [
            f for f in record if f != "sys_class_name" or table == "sys_user"
        ]
        mode = query.get("sysparm_display_value", "false").lower()
        bare_refs = query.get("sysparm_exclude_reference_link", "false").lower() == "true"
        out: Record = {}
        for field in fields:
            value = self._lookup(record, field)
            if value is None and field not in record and "." not in field:
                continue  # a field the table does not have is left out
            value = "" if value is None else value
            target = REFERENCES.get(field.split(".")[-1])
            is_ref = bool(target and value)
            link = f"{request.url.origin()}/{self.name}/api/now/table/{target}/{value}"
            if mode == "true":
                out[field] = self._display(field, value)
            elif mode == "all":
                out[field] = {"display_value": self._display(field, value), "value": value,
                              **({"link": link} if is_ref and not bare_refs else {})}  # fmt: skip
            else:
                out[field] = {"link": link, "value": value} if is_ref and not bare_refs else value
        return out

    async def list_records(self, request: web.Request) -> web.Response:
        """`GET /api/now/table/{table}`: the records matching sysparm_query, paged by sysparm_limit/_offset."""
        table = request.match_info["table"]
        records = list(self._table(table).values())
        try:
            matches, order = compile_query(request.query.get("sysparm_query", ""), self._lookup)
        except QueryError:
            records, matches, order = [], (lambda r: False), []  # ServiceNow answers an unreadable query with nothing
        found = [r for r in records if matches(r)]
        for field, descending in reversed(order):
            found.sort(key=lambda r, f=field: str(self._lookup(r, f) or ""), reverse=descending)
        try:
            limit = int(request.query.get("sysparm_limit", "10000"))
            offset = int(request.query.get("sysparm_offset", "0"))
        except ValueError:
            raise failure(400, "Invalid sysparm_limit or sysparm_offset") from None
        page = found[offset : offset + max(limit, 0)]
        body = {"result": [self._render(request, table, r) for r in page]}
        return json_response(body, headers={"X-Total-Count": str(len(found))})

    async def get_record(self, request: web.Request) -> web.Response:
        """`GET /api/now/table/{table}/{sys_id}`."""
        table = request.match_info["table"]
        record = self._find(table, request.match_info["sys_id"])
        return json_response({"result": self._render(request, table, record)})

    async def _body(self, request: web.Request) -> Record:
        try:
            body = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError:
            raise failure(400, "Exception while reading request", "The payload is not valid JSON.") from None
        if not isinstance(body, dict):
            raise failure(400, "Exception while reading request", "The payload is not valid JSON.")
        return body

    def _apply(self, record: Record, body: Record, author: str) -> None:
        """Set fields (unknown ones are ignored, as ServiceNow does); journal entries are kept aside."""
        for key, value in body.items():
            if key in JOURNAL_FIELDS:
                if value:
                    self.journal.append({"element_id": record["sys_id"], "element": key, "value": str(value),
                                         "sys_created_by": author, "sys_created_on": stamp()})  # fmt: skip
            elif key in record and key != "sys_id":
                record[key] = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    async def create(self, request: web.Request) -> web.Response:
        """`POST /api/now/table/{table}` → 201 `{"result": {...}}` (incidents get a number and a priority)."""
        table = request.match_info["table"]
        if table != "incident":
            self._table(table)
            raise failure(403, "Operation Failed", "ACL restricts the record creation")
        body = await self._body(request)
        now = stamp()
        record = self._incident(f"{next(self._ids):032x}", f"INC{next(self._numbers):07d}", now, {})
        self._apply(record, body, "integration")
        self._derive(record)
        self._notify("insert", record)
        return json_response({"result": self._render(request, table, record)}, status=201)

    def _notify(self, operation: str, record: Record) -> None:
        """The after insert/update Business Rule's REST message (docs/events.md), with the record's update count."""
        count = self.mod_counts[record["sys_id"]] = self.mod_counts.get(record["sys_id"], -1) + 1
        self.webhooks.emit(webhook_payloads.servicenow(operation, record, count))

    async def update(self, request: web.Request) -> web.Response:
        """`PATCH` (or `PUT`) `/api/now/table/{table}/{sys_id}` → 200 `{"result": {...}}`."""
        table = request.match_info["table"]
        record = self._find(table, request.match_info["sys_id"])
        self._apply(record, await self._body(request), "integration")
        if table == "incident":
            self._derive(record)
            if record["state"] == "6" and not record["resolved_at"]:
                record["resolved_at"] = stamp()
        record["sys_updated_on"] = stamp()
        if table == "incident":
            self._notify("update", record)
        return json_response({"result": self._render(request, table, record)})
