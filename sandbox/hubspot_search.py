"""HubSpot CRM search semantics for the emulator: filter groups, operators, free-text query, sorts and paging.

Follows https://developers.hubspot.com/docs/api-reference/latest/crm/search-the-crm (groups OR, filters AND;
5 groups, 6 filters per group, 18 in all; up to 200 per page; 10,000 results per query at most).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

MAX_FILTER_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18
DEFAULT_LIMIT, MAX_LIMIT, MAX_RESULTS = 10, 200, 10_000
FILTER_CLASS = "com.hubspot.inbounddb.publicobject.core.v3.search.Filter"  # named in HubSpot's 400 messages


class SearchError(ValueError):
    """A search body HubSpot refuses with a 400; the message is HubSpot's."""


def _ordered(value: Any) -> tuple[int, float | str]:
    """A value for ordering: numbers and ISO dates (as epoch ms, as HubSpot filters take them), else folded text."""
    text = str(value)
    try:
        return 0, float(text)
    except ValueError:
        pass
    try:
        return 0, datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000
    except ValueError:
        return 1, text.casefold()


def _tokens(value: str) -> list[str]:
    """Words of a stored value, as HubSpot's token operators see them (email parts and words)."""
    return [t for t in re.split(r"[^\w]+", value.casefold()) if t]


def _has_token(value: str | None, wanted: Any) -> bool:
    """CONTAINS_TOKEN: a whole word of the value matches, `*` as a wildcard (`*@example.com` style)."""
    if value is None:
        return False
    pattern = str(wanted or "").casefold()
    if "*" in pattern:
        return fnmatch.fnmatchcase(value.casefold(), pattern) or any(fnmatch.fnmatchcase(t, pattern) for t in _tokens(value))
    return pattern in _tokens(value) or pattern == value.casefold()


def _one_of(value: str | None, values: Any) -> bool:
    """IN: HubSpot compares string values lowercased ("values must be lowercase")."""
    return value is not None and value.casefold() in {str(x).casefold() for x in values or []}


def _value(f: dict[str, Any]) -> tuple[int, float | str]:
    return _ordered(f.get("value", ""))


# Operator -> test of a stored value (None when unset) against the filter; text compares case-insensitively.
OPERATORS: dict[str, Callable[[str | None, dict[str, Any]], bool]] = {
    "EQ": lambda v, f: v is not None and str(v).casefold() == str(f.get("value", "")).casefold(),
    "NEQ": lambda v, f: v is None or str(v).casefold() != str(f.get("value", "")).casefold(),
    "LT": lambda v, f: v is not None and _ordered(v) < _value(f),
    "LTE": lambda v, f: v is not None and _ordered(v) <= _value(f),
    "GT": lambda v, f: v is not None and _ordered(v) > _value(f),
    "GTE": lambda v, f: v is not None and _ordered(v) >= _value(f),
    "BETWEEN": lambda v, f: v is not None and _value(f) <= _ordered(v) <= _ordered(f.get("highValue", "")),
    "IN": lambda v, f: _one_of(v, f.get("values")),
    "NOT_IN": lambda v, f: not _one_of(v, f.get("values")),
    "HAS_PROPERTY": lambda v, f: v not in (None, ""),
    "NOT_HAS_PROPERTY": lambda v, f: v in (None, ""),
    "CONTAINS_TOKEN": lambda v, f: _has_token(v, f.get("value")),
    "NOT_CONTAINS_TOKEN": lambda v, f: not _has_token(v, f.get("value")),
}
# What each operator needs besides propertyName; HubSpot refuses the filter without it.
NEEDS: dict[str, str] = {"BETWEEN": "highValue", "IN": "values", "NOT_IN": "values"}


def _check_filter(item: Any) -> dict[str, Any]:
    """One filter, or HubSpot's 'Cannot construct instance of Filter' 400."""
    if not isinstance(item, dict) or not isinstance(item.get("propertyName"), str):
        raise SearchError(f"Invalid input JSON: Cannot construct instance of `{FILTER_CLASS}`, problem: propertyName is required")
    operator = item.get("operator", "EQ")  # HubSpot's default operator
    if operator not in OPERATORS:
        raise SearchError(f"Invalid input JSON: Cannot deserialize value of type `FilterOperator` from String \"{operator}\"")
    needed = NEEDS.get(operator)
    if needed and item.get(needed) is None:
        raise SearchError(f"Invalid input JSON: Cannot construct instance of `{FILTER_CLASS}`, problem: operator {operator} requires a {needed}")
    return {**item, "operator": operator}


def filter_groups(body: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The body's filterGroups, checked against HubSpot's limits and operators."""
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or not all(isinstance(g, dict) and isinstance(g.get("filters"), list) for g in groups):
        raise SearchError("Invalid input JSON: filterGroups must be a list of {filters: [...]}")
    parsed = [[_check_filter(f) for f in g["filters"]] for g in groups]
    if len(parsed) > MAX_FILTER_GROUPS:
        raise SearchError(f"Too many filter groups ({len(parsed)}). The maximum number of filter groups is {MAX_FILTER_GROUPS}.")
    widest = max((len(g) for g in parsed), default=0)
    if widest > MAX_FILTERS_PER_GROUP:
        raise SearchError(f"Too many filters in a filter group ({widest}). The maximum is {MAX_FILTERS_PER_GROUP} per group.")
    total = sum(len(g) for g in parsed)
    if total > MAX_FILTERS:
        raise SearchError(f"Too many filters ({total}). The maximum number of filters across all groups is {MAX_FILTERS}.")
    return parsed


def matches(props: dict[str, Any], groups: list[list[dict[str, Any]]], query: str, searchable: tuple[str, ...]) -> bool:
    """Any group whose filters all hold (no groups: everything), and the free-text query over the default properties."""
    if groups and not any(all(OPERATORS[f["operator"]](props.get(f["propertyName"]), f) for f in g) for g in groups):
        return False
    words = _tokens(query)
    # Every word of the query must start a word of some default searchable property (HubSpot's prefix match).
    return all(any(t.startswith(w) for p in searchable for t in _tokens(str(props.get(p) or ""))) for w in words)


def sort_keys(body: dict[str, Any]) -> list[tuple[str, bool]]:
    """(property, descending) pairs from `sorts`: `{"propertyName","direction"}` objects or bare names (`-name` descends)."""
    keys = []
    for item in body.get("sorts") or []:
        if isinstance(item, dict) and isinstance(item.get("propertyName"), str):
            keys.append((item["propertyName"], str(item.get("direction", "ASCENDING")).upper() == "DESCENDING"))
        elif isinstance(item, str) and item.strip("-"):
            keys.append((item.lstrip("-"), item.startswith("-")))
        else:
            raise SearchError("Invalid input JSON: each sort needs a propertyName")
    return keys


def page(body: dict[str, Any]) -> tuple[int, int]:
    """(offset, limit) from `after` and `limit`: limit up to 200, and no paging past 10,000 results."""
    after, limit = str(body.get("after") or "0"), body.get("limit", DEFAULT_LIMIT)
    if not after.isdigit() or isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise SearchError("Invalid input JSON: after must be a number as a string and limit a non-negative integer")
    offset, limit = int(after), min(limit, MAX_LIMIT)
    if offset + limit > MAX_RESULTS:
        raise SearchError(f"Search results are limited to {MAX_RESULTS} results; narrow the query")
    return offset, limit


def run(records: list[dict[str, Any]], body: dict[str, Any], searchable: tuple[str, ...]) -> tuple[int, list[dict[str, Any]], str | None]:
    """(total, this page's records, next `after` or None) for a search body over stored records."""
    groups, keys, (offset, limit) = filter_groups(body), sort_keys(body), page(body)
    query = str(body.get("query") or "")
    hits = sorted((r for r in records if matches(r["properties"], groups, query, searchable)), key=lambda r: int(r["id"]))
    for name, descending in reversed(keys):  # stable sorts, last key first; unset values sort last either way
        present = [r for r in hits if r["properties"].get(name) not in (None, "")]
        absent = [r for r in hits if r["properties"].get(name) in (None, "")]
        hits = sorted(present, key=lambda r: _ordered(r["properties"][name]), reverse=descending) + absent
    after = str(offset + limit) if limit and offset + limit < len(hits) else None
    return len(hits), hits[offset : offset + limit], after
