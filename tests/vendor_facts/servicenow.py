"""ServiceNow's row in the shared contract tests (tests/test_api_contract.py `Vendor`): what its emulator
refuses and how its errors read. Found by the vendor slug; seed ids come from the connector's `sandbox_seed`."""

from __future__ import annotations

from typing import Any

from tests.vendor_facts import SSRF_BASE_URLS

FACTS: dict[str, Any] = dict(
    # ServiceNow answers an unknown sys_id with 404 "No Record found".
    unknown_ids={"ticket": ("0" * 32, 404), "customer": ("f" * 32, 404)},
    bad_ids=("abc", "12345", "9D385017C611228701D22104CC95C371", "9d385017c611228701d22104cc95c371/../x"),
    invalid_credentials=({"password": "invalid"},),
    auth_upstream_status=401,
    auth_message="User Not Authenticated",
    ssrf_configs=(
        {"instance": "169.254.169.254"},
        {"instance": "evil.com#"},
        {"instance": "acme.service-now.com.evil.com"},
        {"instance": "acme/../x"},
        {"instance": "https://acme.service-now.com"},
        *SSRF_BASE_URLS,
    ),
    sandbox_url_key="base_url",
    first_new_ticket_id=f"{0x1000:032x}",
    create_path="/api/now/table/incident",
    read_path="/api/now/table/incident/",  # the record, not the marker query on the list
    rate_limit_message="Rate limit exceeded",
)
