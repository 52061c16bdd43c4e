"""Salesforce field-mapping check: each mapped field path looked up in the org's sObject describe.

A path the org lacks is refused in Salesforce's own INVALID_FIELD words, before any query would fail on it.
Docs: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm
"""

from __future__ import annotations

from typing import Any

from connectors.field_mapping import FieldMapping
from connectors.salesforce_tables import FIELD_PATH

# Salesforce's INVALID_FIELD words (SOQL and ?fields= answers), used when a saved field mapping names a field
# the org's describe lacks.
NO_SUCH_COLUMN = ("No such column '{name}' on entity '{sobject}'. If you are attempting to use a custom field, be sure "
                  "to append the '__c' after the custom field name. Please reference your WSDL or the describe call "
                  "for the appropriate names.")
NO_SUCH_RELATIONSHIP = ("Didn't understand relationship '{name}' in field path. If you are attempting to use a custom "
                        "relationship, be sure to append the '__r' after the custom relationship name. Please "
                        "reference your WSDL or the describe call for the appropriate names.")


class FieldDescribe:
    """The field-mapping check of the Salesforce connector (a mixin over its `_json` and `_data`)."""

    async def _describe(self: Any, sobject: str, cache: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """`GET /sobjects/{sObject}/describe`, once per object per check
        (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm)."""
        if sobject not in cache:
            cache[sobject] = await self._json("GET", self._data(f"/sobjects/{sobject}/describe"), operation="describe")
        return cache[sobject]

    async def _unknown(self: Any, sobject: str, path: str, cache: dict[str, dict[str, Any]], parents: bool) -> str | None:
        """Salesforce's own INVALID_FIELD words for a path the org's describe does not know, else None."""
        *relationships, name = path.split(".")
        if relationships and not parents:  # ?fields= on a Case takes its own fields only
            return NO_SUCH_COLUMN.format(name=path, sobject=sobject)
        for relationship in relationships:
            fields = (await self._describe(sobject, cache)).get("fields") or []
            parent = next((f for f in fields if str(f.get("relationshipName") or "").lower() == relationship.lower()), None)
            if parent is None or not parent.get("referenceTo"):
                return NO_SUCH_RELATIONSHIP.format(name=relationship)
            sobject = str(parent["referenceTo"][0])
        fields = (await self._describe(sobject, cache)).get("fields") or []
        if not any(str(f.get("name")).lower() == name.lower() for f in fields):
            return NO_SUCH_COLUMN.format(name=name, sobject=sobject)
        return None

    async def check_field_mapping(self: Any, mapping: FieldMapping) -> list[dict[str, Any]]:
        """Each mapped path the org lacks: customers are Contact paths (parents allowed), tickets Case fields."""
        problems: list[dict[str, Any]] = []
        cache: dict[str, dict[str, Any]] = {}
        for kind, sobject in (("customer", "Contact"), ("ticket", "Case")):
            for key, path in getattr(mapping, kind).items():
                message = "INVALID_FIELD: " + NO_SUCH_COLUMN.format(name=path, sobject=sobject)
                if FIELD_PATH.match(path):
                    found = await self._unknown(sobject, path, cache, parents=kind == "customer")
                    message = f"INVALID_FIELD: {found}" if found else ""
                if message:
                    problems.append({"loc": ["field_mapping", kind, key], "msg": f"{path}: {message}", "type": "unknown_field"})
        return problems
