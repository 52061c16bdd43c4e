"""Zendesk's search query language over the emulator's records: tokenizer, parser, evaluation.

Follows the Zendesk Support search reference (https://support.zendesk.com/hc/en-us/articles/4408886879258)
as the Search API uses it (https://developer.zendesk.com/api-reference/ticketing/ticket-management/search/):
terms separated by spaces are ANDed, the same keyword given twice ORs its values, `-` negates a term,
`"..."` quotes a phrase or a value, `*` is a wildcard, `<`, `>`, `<=`, `>=` compare statuses,
priorities and dates, and `none` matches an empty property.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sandbox.core import digits

STATUS_RANK = {s: i for i, s in enumerate(("new", "open", "pending", "hold", "solved", "closed"))}
PRIORITY_RANK = {p: i for i, p in enumerate(("low", "normal", "high", "urgent"))}
RESULT_TYPES = ("ticket", "user", "organization")
SORTABLE = {  # sort_by -> the ticket property it orders by
    "created_at": "created_at",
    "updated_at": "updated_at",
    "priority": "priority",
    "status": "status",
    "ticket_type": "type",
}
ALIASES = {"tag": "tags"}  # keywords Zendesk takes under two names
_TERM = re.compile(r"(-)?(?:([A-Za-z_]+)(<=|>=|:|<|>))?")


class SearchError(ValueError):
    """A query Zendesk would refuse (its 400 `{"error": "invalid", ...}`)."""


@dataclass(frozen=True)
class Term:
    """One search term: `[-]keyword<op>value`, or free text when keyword is empty."""

    keyword: str
    op: str
    value: str
    negated: bool = False


def tokenize(query: str) -> list[Term]:
    """Split a query into terms; a quoted value may hold spaces (an unclosed quote runs to the end)."""
    terms: list[Term] = []
    pos = 0
    while pos < len(query):
        if query[pos].isspace():
            pos += 1
            continue
        head = _TERM.match(query, pos)
        assert head  # the pattern can match the empty string
        negated, keyword, op = bool(head.group(1)), (head.group(2) or "").lower(), head.group(3) or ""
        keyword = ALIASES.get(keyword, keyword)
        pos = head.end()
        if pos < len(query) and query[pos] == '"':
            end = query.find('"', pos + 1)
            end = len(query) if end < 0 else end
            value, pos = query[pos + 1 : end], end + 1
        else:
            end = pos
            while end < len(query) and not query[end].isspace():
                end += 1
            value, pos = query[pos:end], end
        if keyword and not value:
            raise SearchError(f"Invalid search: {keyword}{op} needs a value")
        if value or keyword:
            terms.append(Term(keyword, op, value, negated))
    return terms


def _like(pattern: str, value: Any) -> bool:
    """Case-insensitive equality, with `*` as a wildcard."""
    return value is not None and fnmatch.fnmatchcase(str(value).lower(), pattern.lower())


def _words(text: Any) -> list[str]:
    """The words Zendesk indexes a value under: an email splits at `@`, a name at hyphens."""
    return [w.strip(".") for w in re.findall(r"[\w.+']+", str(text or "").lower())]


def _text_match(pattern: str, *values: Any) -> bool:
    """A word (or, for a phrase, a run of text) in any of the values."""
    if " " in pattern.strip():
        return any(pattern.lower() in str(v or "").lower() for v in values)
    return any(_like(pattern, value) or any(_like(pattern, w) for w in _words(value)) for value in values)


def _ranked(rank: dict[str, int]) -> Callable[[Any, str, str], bool]:
    """Matcher for an ordered enum (status, priority): equality or comparison by rank."""

    def match(stored: Any, op: str, value: str) -> bool:
        if value.lower() == "none":
            return stored is None and op == ":"
        if stored not in rank or value.lower() not in rank:
            return False
        return _compare(rank[stored], op, rank[value.lower()])

    return match


def _compare(left: Any, op: str, right: Any) -> bool:
    return {":": left == right, "<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]


def _date(stored: Any, op: str, value: str) -> bool:
    """`created>2024-01-01`: compares on the given precision (a day, or a full timestamp)."""
    if not stored or not re.fullmatch(r"\d{4}-\d{2}-\d{2}(T[\d:]+Z?)?", value):
        return False
    return _compare(str(stored)[: len(value)], op, value)


def _phone(stored: Any, op: str, value: str) -> bool:
    """Digits only on both sides; `*` stands for any digits (Zendesk's caller-id search)."""
    pattern = "".join(c for c in value if c.isdigit() or c == "*")
    return bool(digits(stored)) and fnmatch.fnmatchcase(digits(stored), pattern)


def _plain(stored: Any, op: str, value: str) -> bool:
    if value.lower() == "none":
        return stored in (None, "", [])
    if isinstance(stored, list):
        return any(_like(value, item) for item in stored)
    return op == ":" and _like(value, stored)


def _words_of(stored: Any, op: str, value: str) -> bool:
    return _plain(stored, op, value) if value.lower() == "none" else _text_match(value, stored)


@dataclass
class Index:
    """The records a search runs over, and how a keyword reads each kind of record."""

    users: dict[int, dict[str, Any]]
    tickets: dict[int, dict[str, Any]]
    organizations: dict[int, dict[str, Any]]

    def _user_ref(self, uid: Any, value: str) -> bool:
        """`requester:`/`assignee:` take an id, an email, a name, or `none`."""
        if value.lower() == "none":
            return uid is None
        user = self.users.get(uid) if isinstance(uid, int) else None
        if not user:
            return False
        return str(uid) == value or _like(value, user.get("email")) or _text_match(value, user.get("name"))

    def _org_ref(self, oid: Any, value: str) -> bool:
        """`organization:` takes an id, a name, or `none`."""
        if value.lower() == "none":
            return oid is None
        org = self.organizations.get(oid) if isinstance(oid, int) else None
        return bool(org) and (str(oid) == value or _text_match(value, org and org.get("name")))

    def keywords(self, kind: str) -> dict[str, Callable[[dict[str, Any], str, str], bool]]:
        """keyword -> matcher(record, op, value), for one result type."""
        common: dict[str, Callable[[dict[str, Any], str, str], bool]] = {
            "tags": lambda r, op, v: _plain(r.get("tags"), op, v),
            "created": lambda r, op, v: _date(r.get("created_at"), op, v),
            "updated": lambda r, op, v: _date(r.get("updated_at"), op, v),
            "external_id": lambda r, op, v: _plain(r.get("external_id"), op, v),
        }
        if kind == "user":
            return {
                **common,
                "email": lambda r, op, v: _plain(r.get("email"), op, v),
                "phone": lambda r, op, v: _phone(r.get("phone"), op, v),
                "name": lambda r, op, v: _words_of(r.get("name"), op, v),
                "role": lambda r, op, v: _plain(r.get("role"), op, v),
                "organization": lambda r, op, v: self._org_ref(r.get("organization_id"), v),
            }
        if kind == "ticket":
            return {
                **common,
                "status": lambda r, op, v: _ranked(STATUS_RANK)(r.get("status"), op, v),
                "priority": lambda r, op, v: _ranked(PRIORITY_RANK)(r.get("priority"), op, v),
                "ticket_type": lambda r, op, v: _plain(r.get("type"), op, v),
                "subject": lambda r, op, v: _words_of(r.get("subject"), op, v),
                "description": lambda r, op, v: _words_of(r.get("description"), op, v),
                "requester": lambda r, op, v: self._user_ref(r.get("requester_id"), v),
                "assignee": lambda r, op, v: self._user_ref(r.get("assignee_id"), v),
                "organization": lambda r, op, v: self._org_ref(r.get("organization_id"), v),
            }
        return {**common, "name": lambda r, op, v: _words_of(r.get("name"), op, v)}

    def free_text(self, kind: str, record: dict[str, Any]) -> tuple[Any, ...]:
        """The properties a term without a keyword looks in."""
        if kind == "user":
            return record.get("name"), record.get("email"), record.get("phone"), " ".join(record.get("tags") or [])
        if kind == "ticket":
            return record.get("subject"), record.get("description"), " ".join(record.get("tags") or [])
        return record.get("name"), " ".join(record.get("domain_names") or []), " ".join(record.get("tags") or [])

    def records(self, kind: str) -> Iterable[dict[str, Any]]:
        return {"user": self.users, "ticket": self.tickets, "organization": self.organizations}[kind].values()

    def _matches(self, kind: str, record: dict[str, Any], terms: list[Term]) -> bool:
        """Different keywords AND; the same keyword repeated ORs; negated terms must all fail."""
        matchers = self.keywords(kind)
        groups: dict[tuple[str, str], list[bool]] = {}
        for term in terms:
            if term.keyword:
                matcher = matchers.get(term.keyword)
                hit = bool(matcher and matcher(record, term.op, term.value))
            else:
                hit = _text_match(term.value, *self.free_text(kind, record))
            if term.negated:
                if hit:
                    return False
            elif term.keyword and term.op == ":":
                groups.setdefault((term.keyword, term.op), []).append(hit)
            elif not hit:
                return False
        return all(any(hits) for hits in groups.values())

    def search(self, query: str, only: str | None = None) -> list[dict[str, Any]]:
        """Every matching record, each with its `result_type`, tickets first, then users, then organizations."""
        terms = tokenize(query)
        wanted = {t.value.lower() for t in terms if t.keyword == "type" and not t.negated}
        unwanted = {t.value.lower() for t in terms if t.keyword == "type" and t.negated}
        if only:
            if wanted or unwanted:
                raise SearchError("Invalid search: give the type in filter[type], not in the query")
            wanted = {only}
        kinds = [k for k in RESULT_TYPES if (not wanted or k in wanted) and k not in unwanted]
        rest = [t for t in terms if t.keyword != "type"]
        return [
            {**record, "result_type": kind}
            for kind in kinds
            for record in self.records(kind)
            if self._matches(kind, record, rest)
        ]


def sort_results(results: list[dict[str, Any]], sort_by: str | None, sort_order: str | None) -> list[dict[str, Any]]:
    """`sort_by` one of SORTABLE (else relevance, here the index order); `sort_order` desc by default."""
    field = SORTABLE.get(sort_by or "")
    if not field:
        return results
    ranks = {"status": STATUS_RANK, "priority": PRIORITY_RANK}.get(field)

    def value(record: dict[str, Any]) -> Any:
        raw = record.get(field)
        return ranks.get(raw) if ranks is not None and raw is not None else raw

    present = [r for r in results if value(r) is not None]
    missing = [r for r in results if value(r) is None]  # records without the property come last either way
    ordered = sorted(present, key=lambda r: (value(r), r["id"]), reverse=(sort_order or "desc").lower() != "asc")
    return ordered + missing
