"""Per-tenant field mapping: which vendor field holds a unified field (`tier`) or an extra metadata key.

A connection's `settings.field_mapping` (docs/connections.md, "Field mapping"):
`{"customer": {"tier": "user_fields.plan", "metadata.loyalty_id": "user_fields.loyalty_number"},
  "ticket": {"metadata.order_id": "custom_fields.360001234"}}`. Paths are the vendor's own: dotted into the
record as the vendor returns it; a segment that names an entry of a list of `{"id", "value"}` objects (Zendesk's
ticket custom_fields) picks that entry's value. Reads take mapped fields from the same answer; creates and
updates write the metadata keys the request carries. Vendors check the names when the mapping is saved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

UnifiedKey = Annotated[str, StringConstraints(pattern=r"^(tier|metadata\.[A-Za-z0-9_]{1,64})$")]
VendorPath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,80}(\.[A-Za-z0-9_]{1,80}){0,4}$")]


class FieldMapping(BaseModel):
    """The mapping of one connection: unified key -> vendor field path, per record kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer: dict[UnifiedKey, VendorPath] = Field(default_factory=dict, max_length=50)
    ticket: dict[UnifiedKey, VendorPath] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _ticket_has_no_tier(self) -> FieldMapping:
        """A tier is the customer's; a ticket maps metadata keys only."""
        if "tier" in self.ticket:
            raise ValueError("ticket mappings name metadata keys (metadata.<key>); tier is a customer field")
        return self

    def __bool__(self) -> bool:
        return bool(self.customer or self.ticket)


NO_MAPPING = FieldMapping()


def _step(value: Any, segment: str) -> Any:
    """One segment into a record: a key (case-insensitive, as Salesforce names are), or a list entry by id."""
    if isinstance(value, Mapping):
        if segment in value:
            return value[segment]
        return next((v for k, v in value.items() if str(k).lower() == segment.lower()), None)
    if isinstance(value, list):  # [{"id": 360001234, "value": ...}]
        return next((e.get("value") for e in value if isinstance(e, Mapping) and str(e.get("id")) == segment), None)
    return None


def read_path(record: Mapping[str, Any] | None, path: str) -> Any:
    """The value at a vendor path of a record, or None."""
    value: Any = record
    for segment in path.split("."):
        value = _step(value, segment)
        if value is None:
            return None
    return value


Reader = Callable[[Mapping[str, Any] | None, str], Any]


def read_flat(record: Mapping[str, Any] | None, path: str) -> Any:
    """The value a record keys by the whole path (ServiceNow answers dot-walked fields as `company.u_tier`); "" is unset."""
    return (record or {}).get(path) or None


def mapped(
    mapping: Mapping[str, str], record: Mapping[str, Any] | None, read: Reader = read_path, fallback_tier: Any = None
) -> tuple[Any, dict[str, Any]]:
    """(tier, metadata) that a record holds under the mapping (unset fields are left out); the tier is
    `fallback_tier` (the connector's own reading) where the mapping names none or the record holds none there."""
    tier = read(record, mapping["tier"]) if "tier" in mapping else None
    tier = fallback_tier if tier is None else tier
    metadata = {}
    for key, path in mapping.items():
        if key.startswith("metadata."):
            value = read(record, path)
            if value is not None:
                metadata[key.removeprefix("metadata.")] = value
    return tier, metadata


def to_write(mapping: Mapping[str, str], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Vendor path -> value for each mapped metadata key a create or update carries."""
    return {
        path: metadata[key.removeprefix("metadata.")]
        for key, path in mapping.items()
        if key.startswith("metadata.") and key.removeprefix("metadata.") in metadata
    }


def nest(values: Mapping[str, Any], id_lists: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Paths -> a body: `a.b` becomes {"a": {"b": v}}; under an `id_lists` root, [{"id", "value"}] entries."""
    body: dict[str, Any] = {}
    for path, value in values.items():
        root, _, rest = path.partition(".")
        if not rest:
            body[root] = value
        elif root in id_lists:
            entry_id: Any = int(rest) if rest.isdigit() else rest
            body.setdefault(root, []).append({"id": entry_id, "value": value})
        else:
            node = body.setdefault(root, {})
            *parents, leaf = rest.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
    return body


def unified_names(mapping: FieldMapping) -> list[tuple[str, str, str]]:
    """(kind, unified key, vendor path) for each entry, for the save-time check."""
    return [(kind, key, path) for kind in ("customer", "ticket") for key, path in getattr(mapping, kind).items()]


def unknown_fields(kind: str, entries: Mapping[str, str], known: set[str], root: str | None, words: str) -> list[dict[str, Any]]:
    """The save-time problems of one kind: each path whose field (under `root`, if any) the vendor's list lacks.

    `words` is the vendor's own refusal, formatted with `{name}` (the field name the path asks for).
    """
    problems = []
    for key, path in entries.items():
        head, _, rest = path.partition(".")
        name = rest.split(".")[0] if root else head
        if (root and head != root) or not name or name not in known or (not root and rest):
            message = f"{path}: {words.format(name=name or path)}"
            problems.append({"loc": ["field_mapping", kind, key], "msg": message, "type": "unknown_field"})
    return problems
