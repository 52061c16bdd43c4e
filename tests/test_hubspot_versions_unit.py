"""HubSpotConnector over faked HTTP: API version path selection, both validation-error shapes, 429 wait estimates."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from connectors.hubspot import HubSpotConnector
from connectors.hubspot_tables import api_path
from errors import InvalidConfig, RateLimited, ValidationFailed
from models import TicketCreateRequest, TicketUpdateRequest
from tests.conftest import make_settings, sent
from tests.test_hubspot_unit import RATE_BODY, contact_json, ticket_json

HOST = "https://api.hubapi.com"


@pytest.fixture
def hubspot(make_context):
    def build(config=None, **settings):
        return HubSpotConnector.from_request({"api_key": "pat-na1-secret", **(config or {})}, make_context(**settings))

    return build


# --- path selection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "api", "resource", "path"),
    [
        ("2026-09", "objects", "contacts/12345", "/crm/objects/2026-09/contacts/12345"),
        ("2026-09", "objects", "contacts/search", "/crm/objects/2026-09/contacts/search"),
        ("2026-09", "objects", "deals/batch/read", "/crm/objects/2026-09/deals/batch/read"),
        ("2026-09", "associations", "contacts/tickets/batch/read", "/crm/associations/2026-09/contacts/tickets/batch/read"),
        ("2026-09", "pipelines", "tickets", "/crm/pipelines/2026-09/tickets"),
        ("2026-03", "objects", "tickets", "/crm/objects/2026-03/tickets"),
        ("v3", "objects", "contacts/search", "/crm/v3/objects/contacts/search"),
        ("v3", "objects", "deals/batch/read", "/crm/v3/objects/deals/batch/read"),
        ("v3", "associations", "contacts/tickets/batch/read", "/crm/v4/associations/contacts/tickets/batch/read"),
        ("v3", "pipelines", "tickets", "/crm/v3/pipelines/tickets"),
    ],
)
def test_one_table_builds_every_path(version, api, resource, path):
    assert api_path(version, api, resource) == path


@pytest.mark.parametrize(("version", "prefix"), [("2026-09", "/crm/objects/2026-09"), ("v3", "/crm/v3/objects")])
async def test_every_call_uses_the_configured_version(hubspot, mock_http, version, prefix):
    base = f"{HOST}{prefix}"
    mock_http.get(re.compile(rf"^{re.escape(base)}/contacts/12345\?.*$"), payload=contact_json(deals=("2001",)))
    mock_http.post(f"{base}/deals/batch/read", payload={"status": "COMPLETE", "results": []})
    mock_http.post(f"{base}/contacts/search", payload={"total": 0, "results": []})
    mock_http.post(f"{base}/tickets", status=201, payload=ticket_json(oid="3002", contacts=()))
    mock_http.get(re.compile(rf"^{re.escape(base)}/tickets/3001\?.*$"), payload=ticket_json())
    mock_http.post(f"{base}/notes", status=201, payload={"id": "5001", "properties": {}})
    connector = hubspot({"api_version": version})
    await connector.get_customer("12345")
    await connector.create_ticket(
        TicketCreateRequest(crm_type="hubspot", subject="s", description="d", customer_email="x@y.z"), idempotency_key="k")
    await connector.update_ticket(TicketUpdateRequest(crm_type="hubspot", ticket_id="3001", comment={"body": "hi"}))
    assert all(str(url).startswith(base) for (_, url) in mock_http.requests)
    assert len(mock_http.requests) == 6


def test_the_default_is_the_latest_date_version(hubspot):
    assert hubspot().config.api_version == "2026-09"
    assert hubspot(hubspot_api_version="v3").config.api_version == "v3"  # HUBSPOT_API_VERSION


@pytest.mark.parametrize("version", ["v4", "2026-9", "2026-13", "2026-09-beta", "latest", ""])
def test_a_bad_version_is_refused_in_settings_and_per_request(hubspot, version):
    with pytest.raises(ValidationError):
        make_settings(hubspot_api_version=version)
    with pytest.raises(InvalidConfig) as caught:
        hubspot({"api_version": version})
    assert "api_version" in caught.value.message and "pat-na1-secret" not in caught.value.message


# --- validation errors, both shapes HubSpot sends ---------------------------------------------------------

EMBEDDED = {  # v3: the list only inside `message`
    "status": "error",
    "message": 'Property values were not valid: [{"isValid":false,"message":"URGENT2 was not one of the allowed options: '
               '[LOW, MEDIUM, HIGH, URGENT]","error":"INVALID_OPTION","name":"hs_ticket_priority",'
               '"localizedErrorMessage":"URGENT2 was not one of the allowed options","portalId":123},'
               '{"isValid":false,"message":"Property \\"nosuch\\" does not exist","error":"PROPERTY_DOESNT_EXIST",'
               '"name":"nosuch","localizedErrorMessage":"Property \\"nosuch\\" does not exist","portalId":123}]',
    "correlationId": "3c1a2f0e-0000-4000-8000-000000000001",
    "category": "VALIDATION_ERROR",
}
LISTED = {  # the structured `errors[]` form
    "status": "error",
    "message": "Property values were not valid",
    "correlationId": "3c1a2f0e-0000-4000-8000-000000000002",
    "category": "VALIDATION_ERROR",
    "errors": [{"message": "hs_resolution is required when hs_pipeline_stage is 4", "code": "MISSING_REQUIRED_PROPERTY",
                "context": {"propertyName": ["hs_resolution"]}}],
}


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (EMBEDDED, {
            "hs_ticket_priority": [{"message": "URGENT2 was not one of the allowed options: [LOW, MEDIUM, HIGH, URGENT]",
                                    "code": "INVALID_OPTION"}],
            "nosuch": [{"message": 'Property "nosuch" does not exist', "code": "PROPERTY_DOESNT_EXIST"}],
        }),
        (LISTED, {"hs_resolution": [{"message": "hs_resolution is required when hs_pipeline_stage is 4",
                                     "code": "MISSING_REQUIRED_PROPERTY"}]}),
    ],
)
async def test_validation_errors_are_keyed_by_property_from_either_shape(hubspot, mock_http, body, details):
    mock_http.post(f"{HOST}/crm/objects/2026-09/tickets", status=400, payload=body)
    with pytest.raises(ValidationFailed) as caught:
        await hubspot().create_ticket(TicketCreateRequest(crm_type="hubspot", subject="s", description="d"),
                                      idempotency_key="k")
    assert caught.value.details == details and caught.value.upstream_status == 400
    assert "VALIDATION_ERROR" in caught.value.message and body["correlationId"] in caught.value.message
    assert "isValid" not in caught.value.message  # the escaped JSON is replaced by a readable list


async def test_a_message_without_a_list_gives_no_details(hubspot, mock_http):
    mock_http.post(f"{HOST}/crm/objects/2026-09/tickets", status=400,
                   payload={"status": "error", "message": "Invalid input JSON on line 1, column 2: [oops",
                            "correlationId": "c", "category": "VALIDATION_ERROR"})
    with pytest.raises(ValidationFailed) as caught:
        await hubspot().create_ticket(TicketCreateRequest(crm_type="hubspot", subject="s", description="d"),
                                      idempotency_key="k")
    assert caught.value.details is None and caught.value.message.startswith("Invalid input JSON")


# --- 429: a wait on every one --------------------------------------------------------------------------

TICKET = re.compile(rf"^{re.escape(HOST)}/crm/objects/2026-09/tickets/3001\?.*$")


@pytest.mark.parametrize(
    ("policy", "headers", "wait"),
    [
        ("TEN_SECONDLY_ROLLING", {"X-HubSpot-RateLimit-Interval-Milliseconds": "2000", "X-HubSpot-RateLimit-Remaining": "0"}, 2.0),
        ("TEN_SECONDLY_ROLLING", {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000", "X-HubSpot-RateLimit-Remaining": "5"}, 1.0),
        ("SECONDLY", {}, 1.0),
        (None, {"X-HubSpot-RateLimit-Interval-Milliseconds": "1500"}, 1.5),  # no policy: the window header
        (None, {}, 1.0),  # nothing at all: search's per-second limit
    ],
)
async def test_short_waits_are_retried_after_the_estimate(hubspot, mock_http, sleeps, policy, headers, wait):
    body = {**RATE_BODY, "policyName": policy} if policy else {"status": "error", "message": "Too many requests"}
    mock_http.get(TICKET, status=429, payload=body, headers=headers)
    mock_http.get(TICKET, payload=ticket_json())
    assert (await hubspot(request_deadline_seconds=10).get_ticket("3001")).id == "3001"
    assert sleeps.calls == [wait]


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({**RATE_BODY, "policyName": "DAILY", "message": "You have reached your daily limit."}, {}),
        ({"status": "error", "message": "Too many requests"}, {"X-HubSpot-RateLimit-Daily-Remaining": "0"}),
    ],
)
async def test_the_daily_limit_goes_back_with_the_wait_until_the_reset(hubspot, mock_http, sleeps, body, headers):
    mock_http.get(TICKET, status=429, payload=body, headers=headers)
    with pytest.raises(RateLimited) as caught:
        await hubspot().get_ticket("3001")
    assert 0 < caught.value.retry_after <= 86_400 and sleeps.calls == []
    assert len(sent(mock_http, "GET", HOST)) == 1


async def test_the_ten_second_window_without_headers_goes_back_with_ten_seconds(hubspot, mock_http, sleeps):
    mock_http.get(TICKET, status=429, payload=RATE_BODY)
    with pytest.raises(RateLimited) as caught:
        await hubspot().get_ticket("3001")
    assert caught.value.retry_after == 10 and "TEN_SECONDLY_ROLLING" in caught.value.message
