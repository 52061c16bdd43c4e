"""The wire audit's matcher: documented calls pass, and the v3.5-only create_customer is caught under v3.6."""

from __future__ import annotations

import pytest

from tests.wire_audit import VENDOR_OF_EMULATOR, WIRE, documented, is_documented, undocumented


@pytest.mark.parametrize(
    ("emulator", "method", "path"),
    [
        ("zendesk", "GET", "/api/v2/users/1001.json"),
        ("zendesk", "GET", "/api/v2/users/search.json"),
        ("zendesk", "POST", "/api/v2/tickets.json"),
        ("salesforce", "GET", "/services/data/v62.0/query/"),
        ("salesforce", "POST", "/services/oauth2/token"),
        ("hubspot", "POST", "/crm/v3/objects/contacts/search"),
        ("freshdesk", "POST", "/api/v2/tickets/7/notes"),
        ("livechat", "POST", "/v3.6/agent/action/start_chat"),
        ("livechat", "POST", "/v3.5/agent/action/create_customer"),
    ],
)
def test_documented_calls_pass(emulator, method, path):
    assert is_documented(emulator, method, path)


@pytest.mark.parametrize(
    ("emulator", "method", "path"),
    [
        ("livechat", "POST", "/v3.6/agent/action/create_customer"),  # v3.5 only: the bug this audit exists for
        ("zendesk", "GET", "/api/v2/users/1001/secrets.json"),
        ("zendesk", "PATCH", "/api/v2/tickets/1.json"),  # a documented path with an undocumented method
        ("hubspot", "GET", "/crm/v3/objects/contacts/1/extra"),
        ("nobody", "GET", "/"),
    ],
)
def test_undocumented_calls_are_named(emulator, method, path):
    assert undocumented({(emulator, method, path)}) == [f"{emulator}: {method} {path}"]


def test_every_vendor_list_is_present_and_says_where_it_came_from():
    for vendor in set(VENDOR_OF_EMULATOR.values()):
        text = (WIRE / f"{vendor}.txt").read_text()
        assert "http" in text.split("\n\n")[0]  # the header cites the vendor's docs
        assert documented(vendor)
