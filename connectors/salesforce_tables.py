"""Salesforce's value tables and config: id and field-path forms, Case picklists, errorCodes, the fields read.

Sources: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm (errorCode),
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_case.htm
(Case fields and picklists), https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_contact.htm
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.field_mapping import FieldMapping
from connectors.vendor_config import VendorConfig
from errors import (
    AuthFailed,
    CRMError,
    NotFound,
    RateLimited,
    SessionExpired,
    UpstreamUnavailable,
    ValidationFailed,
)
from models import TicketPriority, TicketStatus

# 15-character ids are case-sensitive; the 18-character form adds a 3-character case checksum.
SALESFORCE_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
# The ID field type: 15 case-sensitive or 18 case-insensitive characters
# (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm#i1435616).
SALESFORCE_ID_FORM = "15 or 18 letters and digits, e.g. 003000000000001AAA"
# A field or relationship path (Tier__c, Account.Tier__c): the only shape a configured name may take in SOQL.
FIELD_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}(?:\.[A-Za-z][A-Za-z0-9_]{0,79}){0,4}$")
API_VERSION = re.compile(r"^v?([0-9]{2,3}\.[0-9])$")
# My Domain (acme.my.salesforce.com, sandboxes, scratch orgs), legacy instances (na1.salesforce.com),
# Lightning/Visualforce hosts, Government Cloud and the China (Alibaba) realm.
SALESFORCE_DOMAINS = (".salesforce.com", ".force.com", ".cloudforce.com", ".salesforce.mil", ".sfcrmproducts.cn")
TOKEN_PATH = "/services/oauth2/token"

CONTACT_FIELDS = (
    "Id", "Name", "FirstName", "LastName", "Email", "Phone", "MobilePhone", "AccountId",
    "CreatedDate", "LastModifiedDate", "Account.Name", "Account.Type", "Account.Industry",
)  # fmt: skip
CASE_FIELDS = (
    "Id", "CaseNumber", "Subject", "Description", "Status", "Priority", "Origin", "Type", "Reason",
    "ContactId", "AccountId", "OwnerId", "IsClosed", "CreatedDate", "LastModifiedDate",
)  # fmt: skip
CASE_METADATA_FIELDS = ("Origin", "Type", "Reason")  # create-request metadata passed through as Case fields

# Default Case picklists (New, Working, Escalated, Closed; On Hold in many orgs). Orgs change them,
# so settings merge their own tables over these (SALESFORCE_STATUS_MAP and friends).
STATUS_FROM_SALESFORCE: dict[str, TicketStatus] = {
    "New": TicketStatus.new,
    "Working": TicketStatus.open,
    "Escalated": TicketStatus.open,
    "On Hold": TicketStatus.pending,
    "Closed": TicketStatus.closed,
}
STATUS_TO_SALESFORCE: dict[TicketStatus, str] = {
    TicketStatus.new: "New",
    TicketStatus.open: "Working",
    TicketStatus.pending: "On Hold",
    TicketStatus.solved: "Closed",  # no separate solved state by default
    TicketStatus.closed: "Closed",
}
PRIORITY_FROM_SALESFORCE: dict[str, TicketPriority] = {
    "Low": TicketPriority.low,
    "Medium": TicketPriority.medium,
    "High": TicketPriority.high,
    "Critical": TicketPriority.urgent,  # a common org addition
    "Urgent": TicketPriority.urgent,
}
PRIORITY_TO_SALESFORCE: dict[TicketPriority, str] = {
    TicketPriority.low: "Low",
    TicketPriority.medium: "Medium",
    TicketPriority.high: "High",
    TicketPriority.urgent: "High",  # the default picklist has no Urgent
}

# Salesforce's errorCode -> contract error; it decides before the HTTP status (403 can be the rate limit).
ERROR_CODES: dict[str, type[CRMError]] = {
    "INVALID_SESSION_ID": SessionExpired,
    "REQUEST_LIMIT_EXCEEDED": RateLimited,
    "NOT_FOUND": NotFound,
    "ENTITY_IS_DELETED": NotFound,
    "MALFORMED_ID": ValidationFailed,
    "INVALID_ID_FIELD": ValidationFailed,
    "INVALID_FIELD": ValidationFailed,
    "INVALID_TYPE": ValidationFailed,
    "MALFORMED_QUERY": ValidationFailed,
    "MALFORMED_SEARCH": ValidationFailed,
    "INVALID_SEARCH": ValidationFailed,
    "INVALID_QUERY_FILTER_OPERATOR": ValidationFailed,
    "REQUIRED_FIELD_MISSING": ValidationFailed,
    "STRING_TOO_LONG": ValidationFailed,
    "JSON_PARSER_ERROR": ValidationFailed,
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": ValidationFailed,
    "INVALID_FIELD_FOR_INSERT_UPDATE": ValidationFailed,
    "INVALID_CROSS_REFERENCE_KEY": ValidationFailed,
    "FIELD_INTEGRITY_EXCEPTION": ValidationFailed,
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": ValidationFailed,
    "INSUFFICIENT_ACCESS_OR_READONLY": AuthFailed,
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": AuthFailed,
    "API_DISABLED_FOR_ORG": AuthFailed,
    "API_CURRENTLY_DISABLED": AuthFailed,
    "SERVER_UNAVAILABLE": UpstreamUnavailable,
    "UNABLE_TO_LOCK_ROW": UpstreamUnavailable,  # a competing write held the row; nothing was saved
    # The token endpoint's `{"error", "error_description"}` (invalid_grant, invalid_client, ...): bad credentials.
    "oauth_error": AuthFailed,
}
OAUTH_ERROR = "oauth_error"


def error_text(error: Mapping[str, Any]) -> str:
    """`CODE: message` of one REST error, or `error: description` of an OAuth one."""
    code = error.get("errorCode") or error.get("error")
    message = error.get("message") or error.get("error_description")
    return ": ".join(str(part) for part in (code, message) if part)


def _https_instance_url(value: str) -> str:
    """A start-up check: the instance URL an operator set must be an https URL."""
    if not value.strip().startswith("https://"):
        raise ValueError("give the org's https URL, e.g. https://acme.my.salesforce.com")
    return value


class SalesforceConfig(VendorConfig):
    """`instance_url` plus an `access_token`, or `client_id` + `client_secret`, or `refresh_token` + `client_id`."""

    # The org's https URL, e.g. https://acme.my.salesforce.com (the connector checks the domain when it is built).
    env_checks = {"instance_url": lambda value: _https_instance_url(value)}

    instance_url: str | None = None
    access_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    api_version: str = "v62.0"
    # e.g. Account.Tier__c; none by default, since a field the org lacks would fail every Contact query
    tier_field: str | None = None
    # Picklists are per org: tables merged over the connector's defaults, read and write direction.
    status_map: dict[str, TicketStatus] = Field(default_factory=dict)  # {"In Progress": "open"}
    status_write_map: dict[TicketStatus, str] = Field(default_factory=dict)  # {"pending": "Waiting"}
    priority_map: dict[str, TicketPriority] = Field(default_factory=dict)  # {"Critical": "urgent"}
    priority_write_map: dict[TicketPriority, str] = Field(default_factory=dict)  # {"urgent": "Critical"}
    # Contact field paths (Account.Tier__c) for customers, Case fields for tickets (connectors/field_mapping.py)
    field_mapping: FieldMapping | None = None

    @field_validator("api_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        """`v62.0` or `62.0`, as it appears in the path."""
        match = API_VERSION.match(value)
        if not match:
            raise ValueError("must look like v62.0")
        return f"v{match.group(1)}"

    @field_validator("tier_field")
    @classmethod
    def _check_tier_field(cls, value: str | None) -> str | None:
        """The name goes into SOQL, so it must be a plain field path."""
        if value and not FIELD_PATH.match(value):
            raise ValueError("must be a field path such as Account.Tier__c")
        return value or None

    @model_validator(mode="after")
    def _needs_credentials(self) -> SalesforceConfig:
        """A token, or what it takes to get one."""
        if self.refresh_token and not self.client_id:
            raise ValueError("refresh_token needs the client_id of the connected app that issued it")
        if not (self.access_token or self.refresh_token or (self.client_id and self.client_secret)):
            raise ValueError("give access_token, or client_id and client_secret, or refresh_token and client_id")
        return self
