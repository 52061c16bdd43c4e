"""SOSL for the Salesforce emulator: the FIND subset the connector and simple-salesforce send.

`FIND {terms OR'd} [IN scope FIELDS] [RETURNING Type(fields [LIMIT n]), ...] [LIMIT n]`, after Salesforce's SOSL
reference (https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_sosl_syntax.htm);
anything else is MALFORMED_SEARCH.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from sandbox import soql_eval
from sandbox.core import digits
from sandbox.soql import SoqlError

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
SCOPE_FIELDS = {"EMAIL": ("Email",), "NAME": ("Name", "FirstName", "LastName")}  # ALL/SIDEBAR: every text field
MAX_RESULTS = 2000


class SearchCatalog(soql_eval.Catalog, Protocol):
    """An org that also says which of an object's fields hold phone numbers."""

    def phone_fields(self, sobject: str) -> tuple[str, ...]:
        """The fields IN PHONE FIELDS searches."""


def terms(text: str) -> list[str]:
    """The OR'ed terms of a FIND clause, unescaped; an unescaped reserved character is MALFORMED_SEARCH."""
    found = []
    for match in SOSL_TERM.finditer(text):
        term = match["phrase"] if match["phrase"] is not None else match["word"]
        if match["word"] is not None and term.upper() in ("OR", "AND"):
            continue
        if match["word"] is not None and SOSL_BARE_RESERVED.search(term):
            raise SoqlError("MALFORMED_SEARCH", f"mismatched character in search term: {term[:80]}")
        found.append(re.sub(r"\\(.)", r"\1", term, flags=re.DOTALL))
    if not found or any(len(t.strip("*?")) < 2 for t in found):
        raise SoqlError("INVALID_SEARCH", "search term must be longer than one character")
    return found


def found_by(catalog: SearchCatalog, sobject: str, record: dict[str, Any], scope: str, term: str) -> bool:
    """Phone scope compares digits (a stored number matches the digits it ends with); others compare text."""
    if scope == "PHONE":
        wanted = digits(term)
        return bool(wanted) and any(
            digits(record.get(f)).endswith(wanted) for f in catalog.phone_fields(sobject) if record.get(f)
        )
    fields = SCOPE_FIELDS.get(scope)
    text = term.lower().strip("*")
    values = [record.get(f) for f in fields] if fields else list(record.values())
    return any(isinstance(v, str) and text in v.lower() for v in values)


def returning(catalog: SearchCatalog, spec: str | None) -> list[tuple[str, list[soql_eval.Field], int | None]]:
    """`Contact(Id, Name LIMIT 5), Account` → [(sObject, fields, per-object limit)]; none: all searchable types."""
    if not spec:
        return [(name, [soql_eval.resolve(catalog, name, "Id")], None) for name in SEARCHABLE]
    out: list[tuple[str, list[soql_eval.Field], int | None]] = []
    for item in SOSL_OBJECT.finditer(spec):
        sobject = catalog.sobject_name(item["sobject"])
        if sobject is None:
            raise SoqlError("INVALID_TYPE", f"sObject type '{item['sobject']}' is not supported.")
        # The field list may end in its own LIMIT: Contact(Id, Name LIMIT 5).
        inner = re.match(r"(?is)^(?P<fields>.*?)(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$", item["fields"] or "Id")
        assert inner is not None  # the pattern matches any text
        paths = [p.strip() for p in inner["fields"].split(",") if p.strip()] or ["Id"]
        fields = [soql_eval.resolve(catalog, sobject, path) for path in paths]
        out.append((sobject, fields, int(inner["limit"]) if inner["limit"] else None))
    return out


def search(catalog: SearchCatalog, text: str) -> list[dict[str, Any]]:
    """The `searchRecords` of a FIND; without RETURNING every searchable type answers with its Ids."""
    parsed = SOSL.match(text)
    if not parsed:
        raise SoqlError("MALFORMED_SEARCH", f"unexpected token in search: {text[:200]}")
    wanted = terms(parsed["terms"])
    specs = returning(catalog, parsed["returning"])
    scope = (parsed["scope"] or "ALL").upper()
    found: list[dict[str, Any]] = []
    for sobject, fields, limit in specs:
        hits = [r for r in catalog.rows(sobject) if any(found_by(catalog, sobject, r, scope, t) for t in wanted)]
        found += [soql_eval.project(catalog, sobject, r, fields) for r in hits[: limit or MAX_RESULTS]]
    return found[: int(parsed["limit"] or MAX_RESULTS)]
