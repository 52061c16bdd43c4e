"""SSRF guard: a connector only ever talks to its vendor, the sandbox, or a host the operator allowed."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from errors import InvalidConfig

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def check_dns_label(value: str, what: str, crm_type: str) -> str:
    """A subdomain must be one plain DNS label, so it cannot smuggle in dots, ports or paths."""
    label = value.strip().lower()
    if not _DNS_LABEL.match(label):
        raise InvalidConfig(f"{what} must be a single DNS label (letters, digits, hyphens)", crm_type=crm_type)
    return label


def host_of(url: str) -> str:
    """`host` or `host:port` of a URL, lower-cased, as operators list them."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def check_base_url(url: str, *, crm_type: str, allowed_hosts: frozenset[str]) -> str:
    """Accept an override URL only for an allowed host; reject other schemes, credentials and odd forms."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise InvalidConfig("base_url is not a valid URL", crm_type=crm_type) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidConfig("base_url must be an http(s) URL", crm_type=crm_type)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidConfig("base_url may not carry credentials, a query or a fragment", crm_type=crm_type)
    host = host_of(url)
    if host not in allowed_hosts and (parts.hostname or "").lower() not in allowed_hosts:
        raise InvalidConfig(
            f"base_url host {host!r} is not allowed; an operator must list it in CONNECTORS_ALLOWED_HOSTS",
            crm_type=crm_type,
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def check_vendor_url(url: str, *, crm_type: str, suffixes: tuple[str, ...], allowed_hosts: frozenset[str]) -> str:
    """An https URL on one of the vendor's own domains, or else an allowed host."""
    parts = urlsplit(url.strip())
    hostname = (parts.hostname or "").lower()
    on_vendor = parts.scheme == "https" and any(hostname.endswith(s) for s in suffixes) and not parts.port
    if on_vendor and not (parts.username or parts.password or parts.query or parts.fragment):
        return f"https://{hostname}{parts.path.rstrip('/')}"
    return check_base_url(url, crm_type=crm_type, allowed_hosts=allowed_hosts)
