"""Operator-facing wording of config and transport errors: say what is wrong and what to do about it.

Names are derived, never listed by hand: a config field `api_token` of vendor `zendesk` is the environment
variable ZENDESK_API_TOKEN when settings.Settings has it, so a new field gets its hint for free.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

if TYPE_CHECKING:  # settings derives its vendor fields from the connectors (registry.py)
    from settings import ServiceSettings as Settings

SANDBOX_HINT = "or run the service with --sandbox (SANDBOX=true), which gives every vendor the emulators' defaults"
DEFAULT_PORTS = {"http": 80, "https": 443}


def env_var(vendor: str, field: str) -> str | None:
    """The environment variable that sets one vendor config field, or None where the environment has none."""
    from settings import Settings  # the derived settings: every registered vendor's {VENDOR}_{FIELD}

    name = f"{vendor}_{field}"
    return name.upper() if name in Settings.model_fields else None


def where_to_set(vendor: str, fields: Iterable[str], *, env_used: bool = True) -> str:
    """Where a missing field can come from: the request's `config`, the environment, or the sandbox's defaults."""
    fields = sorted(set(fields))
    where = f"give {', '.join(fields)} in the request's `config`"
    names = [name for name in (env_var(vendor, f) for f in fields) if name]
    if not env_used:  # merged_config drops the environment's secrets once a request names a host or secret
        return f"{where} (a request that names its own host or credentials gets none of the environment's secrets)"
    if names:
        where += f", or set {', '.join(names)} in the service's environment"
    return f"{where}, {SANDBOX_HINT}"


def credentials_hint(vendor: str, config: BaseModel) -> str:
    """Where refused credentials came from: the request's `config`, or the variables of the secrets in use."""
    names = sorted(filter(None, (env_var(vendor, name) for name, value in config if isinstance(value, SecretStr))))
    return f"check the credentials in the request's `config` or {', '.join(names) or 'the environment'}"


def did_you_mean(key: str, valid: Collection[str]) -> str:
    """`; did you mean 'api_token'?` for a near miss, else nothing."""
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def config_error(vendor: str, model: type[BaseModel], errors: list[Mapping[str, Any]], *, env_used: bool) -> str:
    """One line for a vendor config that failed validation: field names and reasons only (never the values).

    An unknown key lists the valid ones (with a near match); a missing field says where it can be given.
    """
    valid = sorted(model.model_fields)
    problems: list[str] = []
    needed: set[str] = set()
    for error in errors:
        loc = ".".join(map(str, error["loc"]))
        reason = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            key = str(error["loc"][0])
            problems.append(f"unknown key {key!r}{did_you_mean(key, valid)} (valid keys: {', '.join(valid)})")
            continue
        if error["type"] == "missing":
            needed.add(loc)
            reason = "is required"
        elif not error["loc"]:  # a model-level rule ("give email and api_token, or oauth_token") names its fields
            needed |= {name for name in valid if re.search(rf"\b{re.escape(name)}\b", reason)}
        problems.append(f"{loc or 'config'}: {reason}")
    message = f"invalid {vendor} config: {'; '.join(problems)}"
    return f"{message}; {where_to_set(vendor, needed, env_used=env_used)}" if needed else message


def host_label(url: str) -> str:
    """`host:port` of a URL, for an error message: no user info, path or query string (they may hold secrets)."""
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        port = None
    host = parts.hostname or "?"
    return f"{host}:{port}" if port else host


class _Deadline(Protocol):
    seconds: float

    def elapsed(self) -> float: ...


def timeout_message(vendor_name: str, url: str, waited: float, attempt: int, deadline: _Deadline, settings: Settings) -> str:
    """The time actually waited, on this attempt and in all, and the two settings that bound it."""
    return (
        f"{vendor_name} ({host_label(url)}) did not answer: waited {waited:.1f}s on attempt {attempt}, "
        f"{deadline.elapsed():.1f}s in all (HTTP_TOTAL_TIMEOUT_SECONDS={settings.http_total_timeout_seconds:g} "
        f"per attempt, REQUEST_DEADLINE_SECONDS={deadline.seconds:g} per request)"
    )
