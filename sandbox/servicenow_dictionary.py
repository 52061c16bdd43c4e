"""The sandbox instance's Dictionary Entries (`sys_dictionary`): one row per table and one per column it defines.

As ServiceNow documents it (https://www.servicenow.com/docs/bundle/yokohama-platform-administration/page/administer/managing-data/concept/c_DataDictionaryTables.html):
each row is a table (`internal_type` collection, no element) or a column (`name` the table, `element` the column);
a column a table inherits stays under the table that defines it (incident's short_description is task's). Read
through the Table API like any table. Custom columns (`u_` prefix) show the field-mapping feature.
"""

from __future__ import annotations

import hashlib
from typing import Any

# table -> (column, internal_type, reference table or "") of the columns the emulator's records carry.
COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "task": (
        ("sys_id", "GUID", ""), ("number", "string", ""), ("short_description", "string", ""),
        ("description", "string", ""), ("state", "integer", ""), ("impact", "integer", ""), ("urgency", "integer", ""),
        ("priority", "integer", ""), ("contact_type", "string", ""), ("cmdb_ci", "reference", "cmdb_ci"),
        ("assignment_group", "reference", "sys_user_group"), ("assigned_to", "reference", "sys_user"),
        ("opened_by", "reference", "sys_user"), ("opened_at", "glide_date_time", ""),
        ("closed_at", "glide_date_time", ""), ("correlation_id", "string", ""), ("active", "boolean", ""),
        ("comments", "journal_input", ""), ("work_notes", "journal_input", ""),
        ("sys_created_on", "glide_date_time", ""), ("sys_updated_on", "glide_date_time", ""),
    ),
    "incident": (
        ("caller_id", "reference", "sys_user"), ("category", "string", ""), ("subcategory", "string", ""),
        ("resolved_at", "glide_date_time", ""), ("close_code", "string", ""), ("close_notes", "string", ""),
        ("u_order_number", "string", ""),
    ),
    "sys_user": (
        ("sys_id", "GUID", ""), ("name", "string", ""), ("first_name", "string", ""), ("last_name", "string", ""),
        ("email", "email", ""), ("phone", "ph_number", ""), ("mobile_phone", "ph_number", ""), ("title", "string", ""),
        ("user_name", "string", ""), ("active", "boolean", ""), ("time_zone", "string", ""),
        ("preferred_language", "string", ""), ("company", "reference", "core_company"),
        ("sys_class_name", "sys_class_name", ""), ("sys_created_on", "glide_date_time", ""),
        ("sys_updated_on", "glide_date_time", ""), ("u_loyalty_number", "string", ""),
    ),
    "customer_contact": (("account", "reference", "customer_account"),),
    "core_company": (
        ("sys_id", "GUID", ""), ("name", "string", ""), ("city", "string", ""), ("u_tier", "string", ""),
        ("sys_created_on", "glide_date_time", ""), ("sys_updated_on", "glide_date_time", ""),
    ),
    "customer_account": (("number", "string", ""),),
}
CREATED = "2023-01-15 09:00:00"


def _row(table: str, element: str, internal_type: str, reference: str) -> dict[str, Any]:
    """One dictionary entry (a stable sys_id, so the sandbox answers the same after every reset)."""
    sys_id = hashlib.md5(f"{table}.{element}".encode()).hexdigest()  # noqa: S324 - an id, not a secret
    label = element.removeprefix("u_").replace("_", " ").title() if element else table.replace("_", " ").title()
    return {
        "sys_id": sys_id, "name": table, "element": element, "column_label": label, "internal_type": internal_type,
        "reference": reference, "max_length": "40" if internal_type == "string" else "", "active": "true",
        "mandatory": "false", "sys_created_on": CREATED, "sys_updated_on": CREATED,
    }  # fmt: skip


def dictionary() -> dict[str, dict[str, Any]]:
    """The sys_dictionary table, keyed by sys_id: each table's collection row, then its columns."""
    rows = []
    for table, columns in COLUMNS.items():
        rows.append(_row(table, "", "collection", ""))
        rows.extend(_row(table, *column) for column in columns)
    return {row["sys_id"]: row for row in rows}
