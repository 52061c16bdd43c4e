"""What a connector runs with: the service's shared session, settings, deadline and state, and the transport
that sends one attempt (the seam below `UpstreamConnector._send_once` in connectors/http.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from connectors.deadline import Deadline
from connectors.upstream_answers import UpstreamResponse

if TYPE_CHECKING:  # settings derives its vendor fields from the connectors' config models (registry.py)
    from settings import Settings


@dataclass(frozen=True)
class Outgoing:
    """One upstream attempt as the transport sends it: everything already resolved (auth, body, timeout)."""

    method: str
    url: str
    params: Mapping[str, Any] | None
    data: Any
    headers: Mapping[str, str]
    timeout: aiohttp.ClientTimeout


# Sends one attempt and reads the answer in full; raises aiohttp's (or asyncio's timeout) errors, which
# `_send_once` maps to contract errors. Unit tests inject a fake instead of patching aiohttp.
Transport = Callable[["ConnectorContext", Outgoing], Awaitable["UpstreamResponse"]]


async def aiohttp_transport(ctx: ConnectorContext, out: Outgoing) -> UpstreamResponse:
    """The real transport: the app's shared aiohttp session, no redirects followed (a redirect is an answer)."""
    async with ctx.session.request(
        out.method, out.url, params=out.params, data=out.data, headers=out.headers, timeout=out.timeout,
        allow_redirects=False,
    ) as resp:
        return UpstreamResponse(resp.status, resp.headers, await resp.read())


@dataclass
class ConnectorContext:
    """What a connector needs from the running service: the shared session, settings and shared state."""

    session: aiohttp.ClientSession
    settings: Settings
    deadline: Deadline
    allowed_hosts: frozenset[str] = frozenset()
    sandbox_urls: Mapping[str, str] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)  # app-lifetime state, e.g. OAuth token caches
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    transport: Transport = aiohttp_transport
