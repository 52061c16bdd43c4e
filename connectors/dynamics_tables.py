"""Dynamics 365's value tables and OData helpers: ids, hosts, columns, status/priority codes, error codes.

Sources: https://learn.microsoft.com/dynamics365/developer/reference/entities/incident (codes),
https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes (errors).
"""

from __future__ import annotations

import re

from errors import (
    AuthFailed,
    CRMError,
    NotFound,
    RateLimited,
    UpstreamUnavailable,
    ValidationFailed,
)
from models import TicketPriority, TicketStatus

DOCS = "https://learn.microsoft.com/power-apps/developer/data-platform"
# Dataverse primary keys are GUIDs (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/retrieve-entity-using-web-api).
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", re.ASCII)
GUID_FORM = "GUIDs, e.g. 6f1c1c0e-1a2b-4c3d-8e9f-000000000001"
API_VERSION = re.compile(r"^v?(9\.[0-9])$")
COLUMN = re.compile(r"^[a-z][a-z0-9_]{0,99}$")  # a column's logical name: the only shape one may take in $select
TENANT = re.compile(r"^(?:[0-9a-fA-F-]{36}|[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63}){1,8})$")
# Environment hosts: commercial ({org}.crm{N}.dynamics.com), GCC High / DoD, and the China cloud (21Vianet).
DYNAMICS_DOMAINS = (".dynamics.com", ".microsoftdynamics.us", ".appsplatform.us", ".dynamics.cn")
# Entra ID's token hosts: global, US Government, China (https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud).
AUTHORITY_HOSTS = frozenset({"login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn"})
AUTHORITY_URL = "https://login.microsoftonline.com"
TOKEN_PATH = "/{tenant}/oauth2/v2.0/token"
# Sent on every Web API call (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors).
ODATA_HEADERS = {"OData-MaxVersion": "4.0", "OData-Version": "4.0"}
RETURN_RECORD = {"Prefer": "return=representation"}  # a create or update answers with the record
LOOKUP_NAMES = {"Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'}

CONTACT_COLUMNS = (
    "contactid", "fullname", "firstname", "lastname", "emailaddress1", "telephone1", "mobilephone",
    "jobtitle", "createdon", "modifiedon",
)  # fmt: skip
INCIDENT_COLUMNS = (
    "incidentid", "ticketnumber", "title", "description", "statecode", "statuscode", "prioritycode",
    "caseorigincode", "_customerid_value", "_ownerid_value", "createdon", "modifiedon",
)  # fmt: skip
PHONE_COLUMNS = ("telephone1", "mobilephone")
ORIGIN_PHONE = 1  # caseorigincode 1 Phone: the voice platform's cases

# incident statecode/statuscode (https://learn.microsoft.com/dynamics365/developer/reference/entities/incident):
# state 0 Active: 1 In Progress, 2 On Hold, 3 Waiting for Details, 4 Researching; 1 Resolved: 5 Problem Solved,
# 1000 Information Provided; 2 Cancelled: 6 Cancelled, 2000 Merged. Orgs add their own reasons: tables, per tenant.
STATUS_FROM_DYNAMICS: dict[int, TicketStatus] = {
    1: TicketStatus.open,
    2: TicketStatus.pending,
    3: TicketStatus.pending,
    4: TicketStatus.open,
    5: TicketStatus.solved,
    1000: TicketStatus.solved,
    6: TicketStatus.closed,
    2000: TicketStatus.closed,
}
STATE_FALLBACK: dict[int, TicketStatus] = {0: TicketStatus.open, 1: TicketStatus.solved, 2: TicketStatus.closed}
# Unified status -> the statuscode written. Dynamics has no "new" (a new case is In Progress) and no closed apart
# from resolved; a resolved reason (state 1) is set through the CloseIncident action, never by PATCH.
STATUS_TO_DYNAMICS: dict[TicketStatus, int] = {
    TicketStatus.new: 1,
    TicketStatus.open: 1,
    TicketStatus.pending: 2,
    TicketStatus.solved: 5,
    TicketStatus.closed: 5,
}
STATE_OF_REASON: dict[int, int] = {1: 0, 2: 0, 3: 0, 4: 0, 5: 1, 1000: 1, 6: 2, 2000: 2}
# prioritycode: 1 High, 2 Normal, 3 Low; no urgent by default.
PRIORITY_FROM_DYNAMICS: dict[int, TicketPriority] = {1: TicketPriority.high, 2: TicketPriority.medium, 3: TicketPriority.low}
PRIORITY_TO_DYNAMICS: dict[TicketPriority, int] = {
    TicketPriority.low: 3,
    TicketPriority.medium: 2,
    TicketPriority.high: 1,
    TicketPriority.urgent: 1,
}

# Dataverse error codes (https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes)
# and the service protection limits' (https://learn.microsoft.com/power-apps/developer/data-platform/api-limits).
ERROR_CODES: dict[str, type[CRMError]] = {
    "0x80040217": NotFound,  # ObjectDoesNotExist
    "0x80072322": RateLimited,  # number of requests exceeded
    "0x80072321": RateLimited,  # combined execution time exceeded
    "0x80072326": RateLimited,  # concurrent requests exceeded
    "0x80040220": AuthFailed,  # PrivilegeDenied
    "0x8004d24b": AuthFailed,  # the application user is disabled or has no roles
    "0x80040203": ValidationFailed,  # InvalidArgument
    "0x80048d19": ValidationFailed,  # the payload's syntax or a property in it
    "0x80040265": ValidationFailed,  # a plug-in or business rule refused the change
    "0x80060891": NotFound,  # RecordNotFoundByEntityKey: no record has the alternate-key values given
    # SQL timeout (-2147204783) and the generic SQL error of a deadlock (-2147204784, Sql Number 1205): the
    # request's transaction was rolled back, so the call may be made again. Codes as Microsoft lists them at
    # https://learn.microsoft.com/troubleshoot/power-platform/power-apps/dataverse/bulk-operation-errors
    "0x80044151": UpstreamUnavailable,
    "0x80044150": UpstreamUnavailable,
    # Entra ID's `{"error", "error_description", "error_codes"}`: invalid_client, unauthorized_client, ...
    "oauth_error": AuthFailed,
}
OAUTH_ERROR = "oauth_error"


def odata_quote(value: str) -> str:
    """An OData string literal: a `'` doubled, so no value can end the literal (https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part2-url-conventions.html)."""
    return "'" + value.replace("'", "''") + "'"


def any_equal(columns: tuple[str, ...], values: list[str]) -> str:
    """`c eq 'v' or ...` over every column and value: literals only, so the filter's shape is fixed by us."""
    return " or ".join(f"{column} eq {odata_quote(value)}" for column in columns for value in values)
