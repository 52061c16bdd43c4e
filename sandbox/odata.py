"""The slice of OData 4.0 query options the Dataverse emulator reads: $filter, $select, $expand, $orderby, $top.

$filter takes `column eq|ne literal` (string, number or bare GUID), `contains(column,'text')`, `and`, `or`, `not` and parentheses, with string
literals whose `'` is doubled (OData 4.01 URL conventions, section 5.1.1.6.1). Anything else is a syntax error,
as the Web API answers it. https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-data-web-api
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})|(?P<num>-?[0-9]+(?:\.[0-9]+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<sym>[(),]))"
)
_LITERALS = {"null": None, "true": True, "false": False}
EXPAND = re.compile(r"^(?P<name>[a-z_][a-z0-9_]*)(?:\(\$select=(?P<select>[a-z0-9_,]+)\))?$")


class ODataError(ValueError):
    """A query option the Web API would refuse (a 400 with its error code)."""


def tokens(text: str) -> list[tuple[str, Any]]:
    """The filter's tokens: ("str", value), ("num", value), ("word", name) or ("sym", char)."""
    out: list[tuple[str, Any]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ODataError(f"Syntax error at position {position} in '{text}'.")
        position = match.end()
        kind = match.lastgroup
        assert kind is not None
        value: Any = match.group(kind)
        if kind == "str":
            value = value[1:-1].replace("''", "'")
        elif kind == "guid":  # an OData 4 Edm.Guid literal is unquoted; Dataverse compares it case-insensitively
            kind, value = "str", value.lower()
        elif kind == "num":
            value = float(value) if "." in value else int(value)
        out.append((kind, value))
    return out


class _Parser:
    """Recursive descent over the tokens: or < and < not < comparison."""

    def __init__(self, text: str, columns: frozenset[str]) -> None:
        self.items, self.at, self.columns = tokens(text), 0, columns

    def peek(self) -> tuple[str, Any] | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def take(self, kind: str, value: Any = None) -> Any:
        item = self.peek()
        if item is None or item[0] != kind or (value is not None and str(item[1]).lower() != value):
            raise ODataError(f"Syntax error: expected {value or kind} at token {self.at}.")
        self.at += 1
        return item[1]

    def at_word(self, word: str) -> bool:
        item = self.peek()
        return item is not None and item[0] == "word" and item[1].lower() == word

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise ODataError(f"Syntax error at token {self.at}: the filter has more after its end.")
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.at_word("or"):
            self.at += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self.at_word("and"):
            self.at += 1
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def negation(self) -> Predicate:
        if self.at_word("not"):
            self.at += 1
            inner = self.negation()
            return lambda r: not inner(r)
        return self.primary()

    def column(self) -> str:
        name = self.take("word")
        if name not in self.columns:
            raise ODataError(f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM'.")
        return name

    def literal(self) -> Any:
        item = self.peek()
        if item and item[0] in ("str", "num"):
            self.at += 1
            return item[1]
        if item and item[0] == "word" and item[1] in _LITERALS:
            self.at += 1
            return _LITERALS[item[1]]
        raise ODataError(f"Syntax error: expected a literal at token {self.at}.")

    def primary(self) -> Predicate:
        item = self.peek()
        if item == ("sym", "("):
            self.at += 1
            inner = self.disjunction()
            self.take("sym", ")")
            return inner
        if self.at_word("contains"):
            self.at += 1
            self.take("sym", "(")
            name = self.column()
            self.take("sym", ",")
            text = str(self.literal()).lower()
            self.take("sym", ")")
            return lambda r: text in str(r.get(name) or "").lower()
        name = self.column()
        operator = self.take("word").lower()
        value = self.literal()
        if operator not in ("eq", "ne"):
            raise ODataError(f"Syntax error: the operator '{operator}' is not supported here.")
        wanted = value.lower() if isinstance(value, str) else value  # Dataverse's collation ignores case

        def equal(record: Record) -> bool:
            stored = record.get(name)
            return (stored.lower() if isinstance(stored, str) else stored) == wanted

        return equal if operator == "eq" else (lambda r: not equal(r))


def parse_filter(text: str | None, columns: Iterable[str]) -> Predicate:
    """The `$filter` as a predicate over records (everything, without one)."""
    if not text:
        return lambda record: True
    return _Parser(text, frozenset(columns)).parse()


def selected(text: str | None, columns: Iterable[str], key: str) -> list[str] | None:
    """`$select`'s columns (the key always comes back), or None for all; an unknown column is an error."""
    if not text:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = frozenset(columns)
    for name in names:
        if name not in known:
            raise ODataError(f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM'.")
    return [key, *(n for n in names if n != key)]


def project(record: Record, select: list[str] | None) -> dict[str, Any]:
    """A record cut down to the selected columns (every column, where none are selected)."""
    if select is None:
        return dict(record)
    return {name: record.get(name) for name in select}


def ordered(records: list[dict[str, Any]], orderby: str | None, columns: Iterable[str]) -> list[dict[str, Any]]:
    """`$orderby=column [asc|desc]` (one column)."""
    if not orderby:
        return records
    name, _, direction = orderby.strip().partition(" ")
    if name not in frozenset(columns) or direction.strip().lower() not in ("", "asc", "desc"):
        raise ODataError(f"The $orderby '{orderby}' is not valid.")
    return sorted(records, key=lambda r: str(r.get(name) or ""), reverse=direction.strip().lower() == "desc")


def top(value: str | None) -> int | None:
    """`$top=N`, a positive integer."""
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ODataError(f"Invalid value '{value}' for $top query option found.")
    return int(value)


MAX_PAGE_SIZE = re.compile(r"odata\.maxpagesize=(\d+)")
SKIPTOKEN = re.compile(r'<cookie pagenumber="(\d+)" />')


def page_size(prefer: str) -> int:
    """`Prefer: odata.maxpagesize=N` (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/page-results), else 5000."""
    match = MAX_PAGE_SIZE.search(prefer)
    return min(int(match.group(1)), 5000) if match and int(match.group(1)) > 0 else 5000


def skipped_pages(skiptoken: str | None) -> int:
    """The pages a `$skiptoken` paging cookie has passed (0 without one); a cookie this emulator did not issue is an error."""
    if skiptoken is None:
        return 0
    match = SKIPTOKEN.fullmatch(skiptoken)
    if not match:
        raise ODataError("The $skiptoken is not valid.")
    return int(match.group(1)) - 1


def skiptoken(page_number: int) -> str:
    """The paging cookie for page `page_number` (1-based), shaped like Dataverse's own."""
    return f'<cookie pagenumber="{page_number}" />'
