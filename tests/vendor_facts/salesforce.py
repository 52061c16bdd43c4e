"""Salesforce's row in the shared contract tests (tests/test_api_contract.py `Vendor`): what its emulator
refuses and how its errors read. Found by the vendor slug; seed ids come from the connector's `sandbox_seed`."""

from __future__ import annotations

from typing import Any


FACTS: dict[str, Any] = dict(
    # The Contact is read by a SOQL query: an empty result, not an HTTP 404.
    unknown_ids={"ticket": ("500000000000999AAA", 404), "customer": ("003000000000999AAA", None)},
    bad_ids=("12345", "003000000000001AA", "003' OR Id != '", "500000000000001AAA/../x", "500000000000001AAA?"),
    invalid_credentials=({"access_token": "invalid", "client_secret": "invalid"},),  # a 401, then a refused refresh
    auth_upstream_status=400,
    auth_message="invalid client credentials",
    ssrf_configs=(
        {"instance_url": "http://169.254.169.254/latest/meta-data"},
        {"instance_url": "https://evil.example.com"},
        {"instance_url": "https://acme.my.salesforce.com.evil.com"},
        {"instance_url": "http://acme.my.salesforce.com"},
        {"instance_url": "http://127.0.0.1:22"},
        {"instance_url": "gopher://internal:70"},
    ),
    sandbox_url_key="instance_url",
    first_new_ticket_id="500000000000100AAA",
    create_path="/sobjects/Case",
    read_path="/sobjects/Case",  # not the token endpoint, whose calls depend on what earlier tests cached
    # Salesforce's API limit is a 403 REQUEST_LIMIT_EXCEEDED with no Retry-After.
    sends_retry_after=False,
    rate_limit_upstream_status=403,
    rate_limit_message="REQUEST_LIMIT_EXCEEDED",
)
