"""Intercom's search query language for the emulator: nested AND/OR groups of `{field, operator, value}` filters.

https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/contacts/searchcontacts
(operators =, !=, IN, NIN, <, >, ~, !~, ^, $; at most 15 filters a group, two levels of nesting).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

MAX_FILTERS = 15


class SearchError(ValueError):
    """A query Intercom would refuse (400 parameter_invalid)."""


def _text(value: Any) -> str:
    return "" if value is None else str(value).lower()


OPERATORS: Mapping[str, Callable[[Any, Any], bool]] = {
    # A list field (a ticket's contact_ids) equals a value it holds.
    "=": lambda have, want: _text(want) in {_text(h) for h in have} if isinstance(have, list)
    else (have is None and want is None) or _text(have) == _text(want) and have is not None,
    "!=": lambda have, want: _text(have) != _text(want),
    "IN": lambda have, want: isinstance(want, list) and _text(have) in {_text(w) for w in want},
    "NIN": lambda have, want: isinstance(want, list) and _text(have) not in {_text(w) for w in want},
    "<": lambda have, want: isinstance(have, (int, float)) and isinstance(want, (int, float)) and have < want,
    ">": lambda have, want: isinstance(have, (int, float)) and isinstance(want, (int, float)) and have > want,
    "~": lambda have, want: have is not None and _text(want) in _text(have),
    "!~": lambda have, want: _text(want) not in _text(have),
    "^": lambda have, want: have is not None and _text(have).startswith(_text(want)),
    "$": lambda have, want: have is not None and _text(have).endswith(_text(want)),
}


def _field(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def matches(query: Any, record: Mapping[str, Any], depth: int = 0) -> bool:
    """Whether a record satisfies the query; a malformed query raises SearchError."""
    if not isinstance(query, dict):
        raise SearchError("query must be an object")
    operator = query.get("operator")
    if operator in ("AND", "OR"):
        parts = query.get("value")
        if not isinstance(parts, list) or not parts or len(parts) > MAX_FILTERS or depth > 2:
            raise SearchError(f"a group holds 1 to {MAX_FILTERS} filters, nested at most twice")
        results = [matches(part, record, depth + 1) for part in parts]
        return all(results) if operator == "AND" else any(results)
    test = OPERATORS.get(str(operator))
    if test is None or not isinstance(query.get("field"), str):
        raise SearchError(f"unsupported operator {operator!r} or missing field")
    return test(_field(record, query["field"]), query.get("value"))


def starting_after(offset: int) -> str:
    """The opaque `pages.next.starting_after` cursor for the record at `offset`."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def skipped(pagination: Mapping[str, Any]) -> int:
    """How many records `pagination.starting_after` has passed (0 without one); a cursor not issued here is an error."""
    cursor = pagination.get("starting_after")
    if cursor is None:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(str(cursor)).decode().partition(":")
        if kind == "offset" and number.isdigit():
            return int(number)
    except (ValueError, UnicodeDecodeError):
        pass
    raise SearchError("starting_after is not a cursor this search issued")
