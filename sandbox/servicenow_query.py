"""ServiceNow's encoded query language (sysparm_query), the subset the connector and PySNC send.

Conditions joined by `^` (AND), `^OR` (OR with the previous condition), `^NQ` (a new OR'd query), then
`ORDERBY<field>` / `ORDERBYDESC<field>`. A literal caret in a value is written `^^`.
Docs: https://www.servicenow.com/docs/r/platform-user-interface/c_EncodedQueryStrings.html; ^NQ: .../r_OpAvailableFiltersQueries.html
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Record = dict[str, Any]
Lookup = Callable[[Record, str], Any]  # a field's raw value (dot-walked references resolved)

CONDITION = re.compile(
    r"([a-z0-9_.]+)(!=|>=|<=|=|>|<|NOT LIKE|LIKE|STARTSWITH|ENDSWITH|NOT IN|IN|ISNOTEMPTY|ISEMPTY)(.*)", re.DOTALL
)


class QueryError(ValueError):
    """A query ServiceNow would not run as written."""


def split_terms(query: str) -> list[str]:
    """The query's terms at each single `^`; `^^` stays a literal caret inside its term."""
    terms, current, i = [], [], 0
    while i < len(query):
        if query[i] == "^":
            if query[i + 1 : i + 2] == "^":
                current.append("^")
                i += 2
                continue
            terms.append("".join(current))
            current = []
        else:
            current.append(query[i])
        i += 1
    terms.append("".join(current))
    return terms


def _test(operator: str, actual: Any, expected: str) -> bool:
    """One condition on a raw string value (strings compare case-insensitively, as the database does)."""
    value = "" if actual is None else str(actual)
    low, want = value.lower(), expected.lower()
    tests: dict[str, Callable[[], bool]] = {
        "=": lambda: low == want,
        "!=": lambda: low != want,
        "LIKE": lambda: want in low,
        "NOT LIKE": lambda: want not in low,
        "STARTSWITH": lambda: low.startswith(want),
        "ENDSWITH": lambda: low.endswith(want),
        "IN": lambda: low in {v.lower() for v in expected.split(",")},
        "NOT IN": lambda: low not in {v.lower() for v in expected.split(",")},
        "ISEMPTY": lambda: value == "",
        "ISNOTEMPTY": lambda: value != "",
        ">": lambda: value > expected,
        "<": lambda: value < expected,
        ">=": lambda: value >= expected,
        "<=": lambda: value <= expected,
    }
    return tests[operator]()


def compile_query(query: str, lookup: Lookup) -> tuple[Callable[[Record], bool], list[tuple[str, bool]]]:
    """A record predicate and the ORDERBY list (field, descending) for an encoded query."""
    groups: list[list[list[tuple[str, str, str]]]] = [[]]  # NQ groups -> AND clauses -> OR'd conditions
    order: list[tuple[str, bool]] = []
    for term in split_terms(query) if query else []:
        if not term:
            continue
        if term.startswith("ORDERBYDESC"):
            order.append((term.removeprefix("ORDERBYDESC"), True))
            continue
        if term.startswith("ORDERBY"):
            order.append((term.removeprefix("ORDERBY"), False))
            continue
        new_query, term = term.startswith("NQ"), term.removeprefix("NQ")
        is_or = term.startswith("OR") and not CONDITION.fullmatch(term)
        term = term.removeprefix("OR") if is_or else term
        match = CONDITION.fullmatch(term)
        if not match:
            raise QueryError(f"cannot read the condition {term!r}")
        condition = (match.group(1), match.group(2), match.group(3))
        if new_query:
            groups.append([])
        clauses = groups[-1]
        if is_or and clauses:
            clauses[-1].append(condition)
        else:
            clauses.append([condition])

    def matches(record: Record) -> bool:
        return any(
            all(any(_test(op, lookup(record, field), value) for field, op, value in clause) for clause in group)
            for group in groups
        )

    return matches, order
