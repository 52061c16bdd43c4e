"""Each CRM's facts for the shared contract tests, one module per vendor slug (tests/vendor_facts/<slug>.py, `FACTS`).

The shared tests find a vendor's module by its registered slug, so adding a vendor adds a file here and edits none.
"""

from __future__ import annotations

import importlib
from typing import Any

# Two base URLs every vendor that takes a base_url must refuse: the cloud metadata address and an internal name.
SSRF_BASE_URLS = ({"base_url": "http://169.254.169.254/latest/meta-data"}, {"base_url": "http://internal.corp"})


def facts(slug: str) -> dict[str, Any] | None:
    """The vendor's FACTS (the `Vendor` fields beside crm_type), or None when it has no module yet."""
    try:
        module = importlib.import_module(f"{__name__}.{slug}")
    except ModuleNotFoundError as missing:
        if missing.name != f"{__name__}.{slug}":
            raise
        return None
    return dict(module.FACTS)
