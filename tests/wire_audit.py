"""The wire audit: every call the service made to an emulator must be one its vendor documents (wire/*.txt)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from registry import all_connectors
from sandbox import emulator_class

WIRE = Path(__file__).resolve().parent.parent / "wire"
# Emulator name -> the vendor whose list (wire/<vendor>.txt) its traffic is checked against, from the registry:
# each connector class names its emulator, and the list is named by the connector's slug.
VENDOR_OF_EMULATOR: dict[str, str] = {
    emulator_class(cls.emulator).name: cls.vendor for cls in all_connectors() if cls.emulator
}
# Path spellings a vendor accepts for the same documented resource.
SPELLINGS: dict[str, re.Pattern[str]] = {"zendesk": re.compile(r"\.json$")}


def _pattern(template: str) -> re.Pattern[str]:
    """`GET /api/v2/users/{user_id}` -> a regex where each `{name}` is one non-empty path segment."""
    method, _, path = template.partition(" ")
    parts = re.split(r"(\{[^}]+\})", path)
    body = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(rf"^{method} {body}$")


@lru_cache
def documented(vendor: str) -> tuple[re.Pattern[str], ...]:
    """The vendor's documented calls, compiled."""
    lines = (line.split("#", 1)[0].strip() for line in (WIRE / f"{vendor}.txt").read_text().splitlines())
    return tuple(_pattern(line) for line in lines if line)


def is_documented(emulator: str, method: str, path: str) -> bool:
    """Whether one call (`path` below the emulator's root) is in its vendor's documented list."""
    vendor = VENDOR_OF_EMULATOR.get(emulator)
    if vendor is None:
        return False
    path = path.rstrip("/") or "/"
    if vendor in SPELLINGS:
        path = SPELLINGS[vendor].sub("", path)
    call = f"{method.upper()} {path}"
    return any(p.match(call) for p in documented(vendor))


def undocumented(calls: set[tuple[str, str, str]]) -> list[str]:
    """The calls no vendor list documents, as `emulator: METHOD /path`, sorted."""
    return sorted(f"{e}: {m} {p}" for e, m, p in calls if not is_documented(e, m, p))
