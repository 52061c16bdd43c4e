"""SSRF guard: a connector only ever talks to its vendor, the sandbox, or a host the operator allowed.

Every check here runs while the connector is built, so a refused URL is a 400 `invalid_config` before any
connection. Hosts are checked label by label on the raw ASCII text: the resolver must never see a name
that differs from what was checked (a NUL cuts it short, IDNA maps full-width and homoglyph forms).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import SplitResult, urlsplit

from errors import InvalidConfig

_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# A top-level label is letters (or an IDNA xn-- form): a numeric or hex last label means the resolver
# would read the name as an IPv4 address (2130706433, 0x7f.1, 127.1).


def only_label(value: str | None, suffix: str, example: str, *, suffix_allowed: bool) -> str | None:
    """A vendor tenant name that must be one DNS label: say which part to give when a whole host was pasted."""
    if value is None:
        return None
    label = value.strip().lower()
    label = label.removesuffix(suffix) if suffix_allowed else label
    if _DNS_LABEL.fullmatch(label):
        return label
    first = label.split("://", 1)[-1].split(".", 1)[0]
    hint = f" ({first!r} for {first}{suffix})" if _DNS_LABEL.fullmatch(first) else f" (e.g. {example!r})"
    raise ValueError(f"give only the subdomain, one DNS label of letters, digits and hyphens{hint}")


_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_PATH = re.compile(r"(?:/[A-Za-z0-9._~-]*)*")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]*")


def check_dns_label(value: str, what: str, crm_type: str) -> str:
    """A subdomain must be one plain DNS label, so it cannot smuggle in dots, ports or paths."""
    label = value.strip().lower()
    if not _DNS_LABEL.fullmatch(label):
        raise InvalidConfig(f"{what} must be a single DNS label (letters, digits, hyphens)", crm_type=crm_type)
    return label


def host_of(url: str) -> str:
    """`host` or `host:port` of a URL, lower-cased, as operators list them."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def _refuse(what: str, reason: str, crm_type: str) -> InvalidConfig:
    return InvalidConfig(f"{what} {reason}", crm_type=crm_type)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_hostname(host: str, what: str, crm_type: str, allowed: bool) -> None:
    """Letters, digits and hyphens per label, a letter TLD; an IP literal only when the operator listed it."""
    if allowed and (_is_ip_literal(host) or host == "localhost"):
        return  # e.g. the sandbox's 127.0.0.1:port
    if _is_ip_literal(host):
        raise _refuse(what, "may not name an IP address unless it is in CONNECTORS_ALLOWED_HOSTS", crm_type)
    labels = host.split(".")
    if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise _refuse(what, "host must be DNS labels of letters, digits and hyphens", crm_type)
    if not _TLD.fullmatch(labels[-1]):
        raise _refuse(what, "host must end in a named top-level domain", crm_type)


def parse_url(url: str, crm_type: str, what: str = "base_url") -> SplitResult:
    """Split a URL, refusing every form a parser or resolver could read differently from us."""
    if not isinstance(url, str) or not _PRINTABLE_ASCII.fullmatch(url.strip()):
        raise _refuse(what, "may only hold printable ASCII (no spaces, control or non-ASCII characters)", crm_type)
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError on a malformed or out-of-range port
    except ValueError:
        raise _refuse(what, "is not a valid URL", crm_type) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse(what, "must be an http(s) URL", crm_type)
    if "@" in parts.netloc or parts.query or parts.fragment or "?" in url or "#" in url:
        raise _refuse(what, "may not carry credentials, a query or a fragment", crm_type)
    if port == 0 or "\\" in url:
        raise _refuse(what, "is not a valid URL", crm_type)
    if not _PATH.fullmatch(parts.path) or any(seg in (".", "..") for seg in parts.path.split("/")):
        raise _refuse(what, "path may only hold letters, digits and . _ ~ - segments", crm_type)
    return parts


def _canonical(parts: SplitResult, host: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{shown}{port}{parts.path.rstrip('/')}"


@lru_cache(maxsize=4096)  # pure, and asked on every request for the tenant's URL; refusals are not cached
def check_base_url(url: str, *, crm_type: str, allowed_hosts: frozenset[str], what: str = "base_url") -> str:
    """Accept an override URL only for an allowed host; reject other schemes, credentials and odd forms."""
    parts = parse_url(url, crm_type, what)
    hostname = (parts.hostname or "").lower()
    netloc_host = f"{hostname}:{parts.port}" if parts.port else hostname
    allowed = netloc_host in allowed_hosts or hostname in allowed_hosts
    _check_hostname(hostname, what, crm_type, allowed)
    if not allowed:
        raise _refuse(
            what,
            f"host {netloc_host!r} is not allowed; an operator must list it in CONNECTORS_ALLOWED_HOSTS", crm_type
        )
    return _canonical(parts, hostname)


@lru_cache(maxsize=4096)
def check_vendor_url(
    url: str, *, crm_type: str, suffixes: tuple[str, ...], allowed_hosts: frozenset[str], what: str = "base_url"
) -> str:
    """An https URL on one of the vendor's own domains (no port), or else an allowed host."""
    parts = parse_url(url, crm_type, what)
    hostname = (parts.hostname or "").lower()
    if parts.scheme == "https" and not parts.port and any(hostname.endswith(s) for s in suffixes):
        _check_hostname(hostname, what, crm_type, allowed=False)
        return _canonical(parts, hostname)
    return check_base_url(url, crm_type=crm_type, allowed_hosts=allowed_hosts, what=what)
