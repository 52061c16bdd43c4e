"""Answering a parsed SOQL query (sandbox/soql.py) over an org's records, with Salesforce's semantics.

Field and object names are case-insensitive and answered in their own spelling; ids compare on their first 15
characters; text compares case-insensitively; `!=` and `NOT IN` include nulls; ascending order puts nulls first.
Sources: the SOQL reference pages on comparison operators, ORDER BY and relationship queries
(https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_comparisonoperators.htm,
.../sforce_api_calls_soql_select_orderby.htm, .../sforce_api_calls_soql_relationships_query_using.htm).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sandbox.soql import (
    Compare, DayRange, Like, Literal, Logical, Member, Negation, Path, Query, SoqlError, parse_datetime,
)

Record = dict[str, Any]
Predicate = Callable[[Record], bool]
ID_SHAPE = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge,
}
# The same comparisons against a relative date literal's range: `= TODAY` is any time today, `> TODAY` after it.
RANGE_OPERATORS: dict[str, Callable[[Any, DayRange], bool]] = {
    "=": lambda v, r: r.holds(v), "!=": lambda v, r: not r.holds(v), "<": lambda v, r: v < r.start,
    ">": lambda v, r: v >= r.end, "<=": lambda v, r: v < r.end, ">=": lambda v, r: v >= r.start,
}
# Which literal kind each field type takes, and Salesforce's words when another kind is given.
LITERAL_KINDS = {
    "id": ("string", "must be of type string and should be enclosed in quotes"),
    "string": ("string", "must be of type string and should be enclosed in quotes"),
    "boolean": ("boolean", "must be of type boolean and should not be enclosed in quotes"),
    "datetime": ("datetime", "must be of type dateTime and should not be enclosed in quotes"),
}
NO_COLUMN = ("No such column '{name}' on entity '{sobject}'. If you are attempting to use a custom field, be sure to "
             "append the '__c' after the custom field name. Please reference your WSDL or the describe call for the "
             "appropriate names.")
NO_RELATIONSHIP = ("Didn't understand relationship '{name}' in {where}. If you are attempting to use a custom "
                   "relationship, be sure to append the '__r' after the custom relationship name. Please reference "
                   "your WSDL or the describe call for the appropriate names.")
NO_TYPE = ("sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to append "
           "the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.")


class Catalog(Protocol):
    """What an org tells the engine: its objects, fields, relationships and records."""

    def sobject_name(self, name: str) -> str | None:
        """The object's own spelling, or None."""

    def field_name(self, sobject: str, name: str) -> str | None:
        """The field's own spelling on the object, or None."""

    def field_type(self, sobject: str, name: str) -> str:
        """id, string, boolean or datetime."""

    def parent(self, sobject: str, relationship: str) -> tuple[str, str, str] | None:
        """(relationship, id field, parent object) of a lookup, or None."""

    def child(self, sobject: str, relationship: str) -> tuple[str, str, str] | None:
        """(relationship, child object, the child's id field pointing here), or None."""

    def rows(self, sobject: str) -> list[Record]:
        """Every record of an object, in creation order."""

    def row(self, sobject: str, record_id: Any) -> Record | None:
        """One record by id, or None."""

    def attributes(self, sobject: str, record: Record) -> Record:
        """The `attributes` an answer's record starts with."""


@dataclass(frozen=True)
class Field:
    """A resolved field path: the lookups walked ((relationship, id field, object) each) and the field at the end."""

    lookups: tuple[tuple[str, str, str], ...]
    name: str
    kind: str
    pos: int | None

    def read(self, catalog: Catalog, record: Record | None) -> Any:
        """The value at this path (None when a lookup on the way is empty)."""
        for _, id_field, parent_type in self.lookups:
            if record is None:
                return None
            record = catalog.row(parent_type, record.get(id_field))
        return None if record is None else record.get(self.name)


def normal(kind: str, value: Any) -> Any:
    """A value as Salesforce compares and sorts it for a field type."""
    if value is None:
        return None
    if kind == "id":
        return str(value)[:15]
    if kind == "string":
        return str(value).casefold()
    if kind == "datetime" and isinstance(value, str):
        return parse_datetime(value)
    return value


def resolve(catalog: Catalog, sobject: str, path: Path | str) -> Field:
    """A field path on an object, or INVALID_FIELD naming the first part the org does not know."""
    parts, pos = (path.parts, path.pos) if isinstance(path, Path) else (tuple(path.strip().split(".")), None)
    lookups = []
    for relationship in parts[:-1]:
        lookup = catalog.parent(sobject, relationship)
        if lookup is None:
            message = NO_RELATIONSHIP.format(name=relationship, where="field path")
            raise SoqlError("INVALID_FIELD", message, pos)
        lookups.append(lookup)
        sobject = lookup[2]
    name = catalog.field_name(sobject, parts[-1])
    if name is None:
        raise SoqlError("INVALID_FIELD", NO_COLUMN.format(name=parts[-1], sobject=sobject), pos)
    return Field(tuple(lookups), name, catalog.field_type(sobject, name), pos)


def value(field: Field, literal: Literal) -> Any:
    """A literal checked against the field's type and normalised for comparison with it."""
    if literal.kind == "null":
        return None
    wanted, complaint = LITERAL_KINDS[field.kind]
    if literal.kind != wanted:
        raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{field.name}' {complaint}", literal.pos)
    if field.kind == "id" and not ID_SHAPE.match(literal.value):
        raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {literal.value}", literal.pos)
    return normal(field.kind, literal.value)


def compile_condition(catalog: Catalog, sobject: str, node: Any) -> Predicate:
    """A WHERE tree as a predicate on records; every path and literal is checked now, before any record."""
    if isinstance(node, Logical):
        items = [compile_condition(catalog, sobject, item) for item in node.items]
        combine = all if node.op == "AND" else any
        return lambda record: combine(item(record) for item in items)
    if isinstance(node, Negation):
        inner = compile_condition(catalog, sobject, node.item)
        return lambda record: not inner(record)
    field = resolve(catalog, sobject, node.path)

    def stored(record: Record) -> Any:
        """The record's value for this field, normalised."""
        return normal(field.kind, field.read(catalog, record))

    if isinstance(node, Like):
        pattern = re.compile(node.literal.like or "", re.IGNORECASE | re.DOTALL)
        return lambda record: (v := field.read(catalog, record)) is not None and bool(pattern.fullmatch(str(v)))
    if isinstance(node, Member):
        wanted = [value(field, literal) for literal in node.literals]

        def member(record: Record) -> bool:
            """Equal to one of the values (within one, for a date range); NOT IN, like !=, keeps nulls."""
            have = stored(record)
            found = any(w.holds(have) if isinstance(w, DayRange) and have is not None else have == w for w in wanted)
            return found != node.negated

        return member
    assert isinstance(node, Compare)
    wanted_one = value(field, node.literal)
    test = RANGE_OPERATORS[node.op] if isinstance(wanted_one, DayRange) else OPERATORS[node.op]

    def compare(record: Record) -> bool:
        """Null only equals null; != is true for a null field; an order comparison with null is false."""
        have = stored(record)
        if have is None or wanted_one is None:
            return (have is wanted_one) == (node.op == "=") if node.op in ("=", "!=") else False
        return test(have, wanted_one)

    return compare


@dataclass
class Compiled:
    """A checked query over one object: what to select, how to filter, sort and cut."""

    sobject: str
    fields: list[Field | tuple[str, Compiled, str]]  # a subquery is (relationship, query, the child's id field)
    query: Query
    where: Predicate | None
    order: list[tuple[Field, bool, bool]]


def compile_query(catalog: Catalog, query: Query, sobject: str | None = None) -> Compiled:
    """Resolve names and check literals; `sobject` is given for a subquery, whose FROM is a relationship."""
    if sobject is None:
        found = catalog.sobject_name(query.sobject)
        if found is None:
            raise SoqlError("INVALID_TYPE", NO_TYPE.format(name=query.sobject), query.sobject_pos)
        sobject = found
    fields: list[Field | tuple[str, Compiled, str]] = []
    seen: set[str] = set()
    for item in query.fields:
        if isinstance(item, Query):
            child = catalog.child(sobject, item.sobject)
            if child is None:
                message = NO_RELATIONSHIP.format(name=item.sobject, where="FROM part of query call")
                raise SoqlError("INVALID_TYPE", message, item.sobject_pos)
            relationship, child_type, id_field = child
            fields.append((relationship, compile_query(catalog, item, child_type), id_field))
            key = relationship.lower()
        else:
            field = resolve(catalog, sobject, item)
            fields.append(field)
            key = ".".join([lookup[0] for lookup in field.lookups] + [field.name]).lower()
        if key in seen:
            raise SoqlError("INVALID_FIELD", f"duplicate field selected: {item.text if isinstance(item, Path) else key}",
                            item.pos)
        seen.add(key)
    where = compile_condition(catalog, sobject, query.where) if query.where is not None else None
    order = [(resolve(catalog, sobject, key.path), key.descending, key.nulls_first) for key in query.order]
    return Compiled(sobject, fields, query, where, order)


def sort(catalog: Catalog, records: list[Record], order: list[tuple[Field, bool, bool]]) -> list[Record]:
    """ORDER BY: one stable sort per key, last key first; nulls go first or last whatever the direction."""
    for field, descending, nulls_first in reversed(order):
        null_rank = 0 if nulls_first != descending else 2  # reversed by a descending sort, so flip it first

        def key(record: Record, field: Field = field, null_rank: int = null_rank) -> tuple[int, Any]:
            """(null rank, value) so that nulls sort apart from values."""
            have = normal(field.kind, field.read(catalog, record))
            return (null_rank, 0) if have is None else (1, have)

        records = sorted(records, key=key, reverse=descending)
    return records


def select(catalog: Catalog, compiled: Compiled, records: list[Record]) -> list[Record]:
    """Filter, sort, OFFSET and LIMIT."""
    if compiled.where is not None:
        records = [r for r in records if compiled.where(r)]
    records = sort(catalog, records, compiled.order)
    start = compiled.query.offset or 0
    end = None if compiled.query.limit is None else start + compiled.query.limit
    return records[start:end]


def put(catalog: Catalog, record: Record, field: Field, out: Record) -> None:
    """Set one field on an answer's record, nesting each parent (with its attributes) or null when empty."""
    for relationship, id_field, parent_type in field.lookups:
        parent = catalog.row(parent_type, record.get(id_field))
        if parent is None:
            out[relationship] = None
            return
        out[relationship] = out.get(relationship) or catalog.attributes(parent_type, parent)
        out, record = out[relationship], parent
    out[field.name] = record.get(field.name)


def project(catalog: Catalog, sobject: str, record: Record, fields: list[Any]) -> Record:
    """A record as the API answers it: attributes, then the selected fields in order, subqueries as result sets."""
    out = catalog.attributes(sobject, record)
    for item in fields:
        if isinstance(item, Field):
            put(catalog, record, item, out)
            continue
        relationship, child, id_field = item
        mine = normal("id", record["Id"])
        children = [r for r in catalog.rows(child.sobject) if normal("id", r.get(id_field)) == mine]
        rows = [project(catalog, child.sobject, r, child.fields) for r in select(catalog, child, children)]
        out[relationship] = {"totalSize": len(rows), "done": True, "records": rows} if rows else None
    return out


def run(catalog: Catalog, query: Query) -> tuple[int, list[Record]]:
    """(totalSize, records) of a top-level query; COUNT() answers its count and no records."""
    compiled = compile_query(catalog, query)
    found = select(catalog, compiled, catalog.rows(compiled.sobject))
    if query.count:
        return len(found), []
    return len(found), [project(catalog, compiled.sobject, r, compiled.fields) for r in found]
