"""SOQL and SOSL text: literals and search phrases escaped so no caller value changes a query's shape; record paths.

Docs: https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_quotedstringescapes.htm,
https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_sosl_find.htm
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SOQL_ESCAPES = str.maketrans(
    {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
)
# A query locator as Salesforce hands it back (nextRecordsUrl): the only URL a ticket-search cursor may hold.
LOCATOR_PATH = re.compile(r"/services/data/v[0-9]{2,3}\.[0-9]/query/[A-Za-z0-9]{15,18}-[0-9]{1,9}")
SOQL_LIKE_ESCAPES = str.maketrans({"%": "\\%", "_": "\\_"})  # LIKE's wildcards, taken literally
SOSL_RESERVED = "?&|!{}[]()^~*:\\\"'+-"
SOSL_ESCAPES = str.maketrans({c: "\\" + c for c in SOSL_RESERVED})


def soql_quote(value: str) -> str:
    """A SOQL string literal: backslashes, quotes and control characters escaped, so no value can end it."""
    return "'" + value.translate(SOQL_ESCAPES) + "'"


def sosl_phrase(value: str) -> str:
    """A SOSL search phrase: every reserved character escaped and the whole quoted, so it stays one term."""
    return '"' + value.translate(SOSL_ESCAPES) + '"'


def field_value(record: Mapping[str, Any] | None, path: str | None) -> Any:
    """The value at a field path (Account.Tier__c) of a query record; Salesforce names are case-insensitive."""
    if not path:
        return None
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = next((v for k, v in value.items() if k.lower() == part.lower()), None)
    return value
