"""Freshdesk's filter query language (`/search/contacts`, `/search/tickets`): tokenizer, parser, evaluation.

Follows https://developers.freshdesk.com/api/#filter_contacts and #filter_tickets: the whole query in
double quotes (at most 512 characters), conditions `field:value`, strings in single quotes, `AND`, `OR`
and parentheses, `:>` (at least) and `:<` (at most) for numbers and dates, `null` for an empty field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_QUERY = 512
PAGE_SIZE, MAX_PAGE = 30, 10

# field -> (kind, record key); kinds decide which values and operators a field takes.
CONTACT_FIELDS: dict[str, tuple[str, str]] = {
    "active": ("boolean", "active"),
    "company_id": ("number", "company_id"),
    "twitter_id": ("string", "twitter_id"),
    "email": ("email", "email"),
    "phone": ("string", "phone"),
    "mobile": ("string", "mobile"),
    "state": ("state", "active"),
    "language": ("string", "language"),
    "time_zone": ("string", "time_zone"),
    "tag": ("tags", "tags"),
    "created_at": ("date", "created_at"),
    "updated_at": ("date", "updated_at"),
}
TICKET_FIELDS: dict[str, tuple[str, str]] = {
    "agent_id": ("number", "responder_id"),
    "group_id": ("number", "group_id"),
    "priority": ("number", "priority"),
    "status": ("number", "status"),
    "type": ("string", "type"),
    "tag": ("tags", "tags"),
    "due_by": ("date", "due_by"),
    "fr_due_by": ("date", "fr_due_by"),
    "created_at": ("date", "created_at"),
    "updated_at": ("date", "updated_at"),
}
STATES = {"verified": True, "unverified": False}  # the sandbox has no blocked or deleted contacts in search
_TOKEN = re.compile(
    r"\s*(?:(?P<paren>[()])|(?P<word>(?-i:AND|OR))(?=[\s()]|$)"
    r"|(?P<field>[a-z_][a-z0-9_]*):(?P<op>[<>]?)(?P<value>'[^']*'|[^\s()]+))",
    re.IGNORECASE,
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}Z)?")

Record = dict[str, Any]
Predicate = Callable[[Record], bool]


class QueryError(ValueError):
    """A query Freshdesk refuses with its 400 `{"description": "Validation failed", "errors": [...]}`."""

    def __init__(self, message: str, field: str = "query") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Condition:
    """`field:value`, `field:>value` or `field:<value`; `raw` keeps the quotes to tell strings from numbers."""

    field: str
    op: str
    raw: str


def tokenize(text: str) -> list[str | Condition]:
    """`(`, `)`, `AND`, `OR` and conditions, in order; anything else is an invalid query."""
    tokens: list[str | Condition] = []
    pos = 0
    while text[pos:].strip():
        match = _TOKEN.match(text, pos)
        if not match:
            raise QueryError(f"Given query is invalid near '{text[pos:].strip()[:20]}'")
        if match.group("paren") or match.group("word"):
            tokens.append((match.group("paren") or match.group("word")).upper())
        else:
            tokens.append(Condition(match.group("field").lower(), match.group("op"), match.group("value")))
        pos = match.end()
    return tokens


def unquote(query: str) -> str:
    """The text inside the query's double quotes; Freshdesk wants the whole query in them."""
    if len(query) > MAX_QUERY + 2:
        raise QueryError(f"It should not be more than {MAX_QUERY} characters")
    if len(query) < 2 or not (query.startswith('"') and query.endswith('"')):
        raise QueryError("Given query is invalid: it must be enclosed in double quotes")
    inner = query[1:-1]
    if not inner.strip():
        raise QueryError("Given query is invalid: it is empty")
    return inner


class Parser:
    """Recursive descent over the tokens: `or := and (OR and)*`, `and := atom (AND atom)*`."""

    def __init__(self, tokens: list[str | Condition], fields: dict[str, tuple[str, str]]) -> None:
        self.tokens, self.fields, self.pos = tokens, fields, 0

    def parse(self) -> Predicate:
        predicate = self._or()
        if self.pos != len(self.tokens):
            raise QueryError(f"Given query is invalid near {self.tokens[self.pos]!r}")
        return predicate

    def _peek(self) -> str | Condition | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek() == "OR":
            self.pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else lambda r: any(p(r) for p in parts)

    def _and(self) -> Predicate:
        parts = [self._atom()]
        while self._peek() == "AND":
            self.pos += 1
            parts.append(self._atom())
        return parts[0] if len(parts) == 1 else lambda r: all(p(r) for p in parts)

    def _atom(self) -> Predicate:
        token = self._peek()
        self.pos += 1
        if token == "(":
            inner = self._or()
            if self._peek() != ")":
                raise QueryError("Given query is invalid: a parenthesis is not closed")
            self.pos += 1
            return inner
        if isinstance(token, Condition):
            return condition(token, self.fields)
        raise QueryError(f"Given query is invalid near {token!r}" if token else "Given query is invalid: it ends early")


def _literal(cond: Condition, kind: str) -> Any:
    """The condition's value as the field's kind takes it, or the query's 400."""
    raw, quoted = cond.raw, cond.raw.startswith("'")
    text = raw[1:-1] if quoted else raw
    if not quoted and raw == "null":
        if cond.op:
            raise QueryError(f"{cond.field}: null cannot be compared")
        return None
    if kind == "number" and not quoted and re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if kind == "boolean" and not quoted and raw in ("true", "false"):
        return raw == "true"
    if kind == "date" and quoted and _DATE.fullmatch(text):
        return text
    if kind in ("string", "email", "tags", "state") and quoted:
        return text
    raise QueryError(f"Given query is invalid: {cond.field} does not take {raw}")


def condition(cond: Condition, fields: dict[str, tuple[str, str]]) -> Predicate:
    """The predicate of one condition, checked against the field table first."""
    if cond.field not in fields:
        raise QueryError(f"Given query is invalid: {cond.field} is not a field that can be searched")
    kind, key = fields[cond.field]
    if cond.op and kind not in ("number", "date"):
        raise QueryError(f"Given query is invalid: {cond.field} cannot be compared with :{cond.op}")
    value = _literal(cond, kind)
    if value is None:
        return lambda r: r.get(key) in (None, "", [])
    if kind == "state":
        if value not in STATES:
            raise QueryError(f"Given query is invalid: state must be one of {', '.join(STATES)}")
        return lambda r: r.get(key) is STATES[value]
    if kind == "tags":
        return lambda r: value.lower() in (t.lower() for t in r.get(key) or [])
    if kind == "email":
        return lambda r: (r.get(key) or "").lower() == value.lower()
    if kind == "date":
        return lambda r: _compare(str(r.get(key) or "")[: len(value)], cond.op, value, bool(r.get(key)))
    return lambda r: _compare(r.get(key), cond.op, value, r.get(key) is not None)


def _compare(stored: Any, op: str, value: Any, present: bool) -> bool:
    """`:` equal, `:>` at least, `:<` at most (Freshdesk's comparisons include the bound)."""
    if not present:
        return False
    return {"": stored == value, ">": stored >= value, "<": stored <= value}[op]


def search(records: list[Record], query: str | None, fields: dict[str, tuple[str, str]], page_raw: str) -> dict:
    """`{"results": [...30 of them], "total": N}` for one page (1..10), newest first."""
    if query is None:
        raise QueryError("It should be a/an String", field="query")
    if not page_raw.isdigit() or not 1 <= int(page_raw) <= MAX_PAGE:
        raise QueryError(f"It should be a Positive Integer less than or equal to {MAX_PAGE}", field="page")
    predicate = Parser(tokenize(unquote(query)), fields).parse()
    found = sorted((r for r in records if predicate(r)), key=lambda r: (r["created_at"], r["id"]), reverse=True)
    page = int(page_raw)
    return {"results": found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE], "total": len(found)}
