"""The Salesforce emulator's org schema: sObject types, fields, relationships, picklists, ids, and the SOQL catalog.

Field and relationship names follow the standard objects
(https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/), and 18-character ids
their case-safe checksum (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm#i1435616).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox import soql_eval

if TYPE_CHECKING:  # the catalog reads the emulator's records
    from sandbox.salesforce import SalesforceEmulator

CASE_STATUSES = ("New", "Working", "Escalated", "On Hold", "Closed")  # this org's Status picklist
CLOSED_STATUSES = ("Closed",)
CASE_PRIORITIES = ("High", "Medium", "Low")
ID_SHAPE = soql_eval.ID_SHAPE
CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# A field's type by its name, for literal checks and ordering: the standard fields here follow these conventions.
FIELD_TYPES = ((re.compile(r"Id$"), "id"), (re.compile(r"^Is[A-Z]"), "boolean"), (re.compile(r"Date$"), "datetime"))


@dataclass(frozen=True)
class SObjectType:
    """What the emulated org knows about one sObject: id prefix, fields, what may be written, its parents."""

    prefix: str
    fields: tuple[str, ...]
    writable: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    parents: tuple[tuple[str, str, str], ...] = ()  # (relationship name, id field, parent sObject)
    phone_fields: tuple[str, ...] = ()
    max_lengths: tuple[tuple[str, int], ...] = ()


SCHEMA: dict[str, SObjectType] = {
    "Account": SObjectType(
        "001", ("Id", "Name", "Type", "Industry", "Rating", "Phone", "Tier__c", "CreatedDate", "LastModifiedDate"),
        phone_fields=("Phone",),
    ),
    "Contact": SObjectType(
        "003",
        ("Id", "FirstName", "LastName", "Name", "Email", "Phone", "MobilePhone", "Title", "AccountId",
         "CreatedDate", "LastModifiedDate"),
        parents=(("Account", "AccountId", "Account"),),
        phone_fields=("Phone", "MobilePhone"),
    ),
    "Case": SObjectType(
        "500",
        ("Id", "CaseNumber", "Subject", "Description", "Status", "Priority", "Origin", "Type", "Reason",
         "ContactId", "AccountId", "OwnerId", "IsClosed", "ClosedDate", "SuppliedName", "SuppliedEmail",
         "SuppliedPhone", "CreatedDate", "LastModifiedDate"),
        writable=("Subject", "Description", "Status", "Priority", "Origin", "Type", "Reason", "ContactId",
                  "AccountId", "OwnerId", "SuppliedName", "SuppliedEmail", "SuppliedPhone"),
        parents=(("Contact", "ContactId", "Contact"), ("Account", "AccountId", "Account"), ("Owner", "OwnerId", "User")),
        phone_fields=("SuppliedPhone",),
        max_lengths=(("Subject", 255), ("Description", 32000), ("SuppliedName", 80), ("SuppliedEmail", 80),
                     ("SuppliedPhone", 40), ("Origin", 255), ("Type", 255), ("Reason", 255)),
    ),
    "CaseComment": SObjectType(
        "00a",
        ("Id", "ParentId", "CommentBody", "IsPublished", "CreatedById", "CreatedDate"),
        writable=("ParentId", "CommentBody", "IsPublished"),
        required=("ParentId",),
        parents=(("Parent", "ParentId", "Case"), ("CreatedBy", "CreatedById", "User")),
        max_lengths=(("CommentBody", 4000),),
    ),
    "User": SObjectType(
        "005", ("Id", "Username", "FirstName", "LastName", "Name", "Email", "IsActive", "CreatedDate", "LastModifiedDate"),
    ),
}
# Child relationships (parent, relationship name) -> (child sObject, its id field), as in subqueries.
CHILDREN: dict[tuple[str, str], tuple[str, str]] = {
    ("Account", "Contacts"): ("Contact", "AccountId"),
    ("Account", "Cases"): ("Case", "AccountId"),
    ("Contact", "Cases"): ("Case", "ContactId"),
    ("Case", "CaseComments"): ("CaseComment", "ParentId"),
}
BY_PREFIX = {t.prefix: name for name, t in SCHEMA.items()}
LABELS = {"ContactId": "Contact ID", "AccountId": "Account ID", "ParentId": "Parent ID", "OwnerId": "Owner ID"}


def id18(id15: str) -> str:
    """The 18-character id: three checksum characters, one per 5-character chunk, encoding its upper-case letters."""
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, char in enumerate(id15[start : start + 5]) if "A" <= char <= "Z")
        suffix += CHECKSUM_CHARS[bits]
    return id15 + suffix



@dataclass(frozen=True)
class OrgCatalog:
    """The org as the SOQL engine sees it (soql_eval.Catalog), for one API version's record URLs."""

    org: SalesforceEmulator
    version: str

    @staticmethod
    def sobject_name(name: str) -> str | None:
        """The sObject's own spelling, or None."""
        return next((known for known in SCHEMA if known.lower() == name.lower()), None)

    @staticmethod
    def field_name(sobject: str, name: str) -> str | None:
        """The field's own spelling, or None."""
        return next((known for known in SCHEMA[sobject].fields if known.lower() == name.lower()), None)

    def field_type(self, sobject: str, name: str) -> str:
        """id, boolean, datetime or string, by the standard fields' naming."""
        return next((kind for pattern, kind in FIELD_TYPES if pattern.search(name)), "string")

    def phone_fields(self, sobject: str) -> tuple[str, ...]:
        """The fields SOSL's IN PHONE FIELDS searches."""
        return SCHEMA[sobject].phone_fields

    def parent(self, sobject: str, relationship: str) -> tuple[str, str, str] | None:
        """(relationship, id field, parent sObject) of a lookup, or None."""
        return next((p for p in SCHEMA[sobject].parents if p[0].lower() == relationship.lower()), None)

    def child(self, sobject: str, relationship: str) -> tuple[str, str, str] | None:
        """(relationship, child sObject, its id field) of a child relationship, or None."""
        return next(
            ((name, *target) for (owner, name), target in CHILDREN.items()
             if owner == sobject and name.lower() == relationship.lower()),
            None,
        )

    def rows(self, sobject: str) -> list[dict[str, Any]]:
        """Every record of a type, oldest first."""
        return list(self.org.records[sobject].values())

    def row(self, sobject: str, record_id: Any) -> dict[str, Any] | None:
        """A record by its 15- or 18-character id."""
        return self.org._find(sobject, record_id)

    def attributes(self, sobject: str, record: dict[str, Any]) -> dict[str, Any]:
        """The `attributes` every record in an answer starts with."""
        return {"attributes": {"type": sobject, "url": f"/services/data/{self.version}/sobjects/{sobject}/{record['Id']}"}}
