"""A corpus of host tricks, for every host-bearing field of every vendor config: each is a 400 `invalid_config`
before any connection (every resolve the service's connector makes is recorded, and none may happen).

An allowed host that answers 302 to an internal address is not followed: a trap listener on loopback counts
the connections it gets, and gets none.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import pytest

from registry import CHATS, CRMS
from sandbox import SANDBOX_CREDENTIALS
from tests.conftest import error_of, make_settings, start_service
from tests.secrets_audit import audited_client
from tests.test_api_contract import VENDORS

# {real}: the vendor's own host for the field; {sandbox}: the sandbox's allowed host:port.
URL_TRICKS = [
    # encodings: percent-encoded dots and NUL, unicode full stops, punycode lookalikes
    "https://{real}%2e.evil.io/", "https://evil%2eio/", "https://{real}%00.evil.io/", "https://127%2e0%2e0%2e1/",
    "https://api\u3002evil\u3002io/", "https://api\uff0eevil\uff0eio/", "https://{real}\u3002evil.io/",
    "https://xn--zndesk-vua.com/", "https://xn--80ak6aa92e.com/",
    # IPv6 and IPv4-mapped forms
    "http://[::1]/", "http://[::ffff:169.254.169.254]/", "http://[::ffff:a9fe:a9fe]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/", "http://[fe80::1%25eth0]/", "http://[::]/",
    # decimal, octal, hex and short IPv4
    "http://169.254.169.254/", "http://2852039166/", "http://0251.0376.0251.0376/", "http://0xa9fea9fe/",
    "http://0xa9.0xfe.0xa9.0xfe/", "http://127.1/", "http://0/", "http://0177.0.0.1/", "http://10.0.0.1/",
    # userinfo
    "https://user@169.254.169.254/", "https://{real}@evil.io/", "https://{real}:443@127.0.0.1/",
    "https://{sandbox}@evil.io/", "https://evil.io#@{real}/", "https://evil.io\\@{real}/",
    # NUL and control characters
    "https://{real}\x00.evil.io/", "https://{real}\r\nHost: evil.io/", "https://{real}\t/", "https://{real} /",
    "https://{real}\x7f/",
    # homoglyphs (Cyrillic е, а; Greek ο)
    "https://zend\u0435sk.com/", "https://hub\u0430pi.com/", "https://salesf\u03bfrce.com/",
    # ports
    "http://127.0.0.1:22/", "http://localhost:6379/", "http://{sandbox_other_port}/", "https://{real}:0/",
    "https://{real}:99999/", "https://{real}:22/",
    # schemes
    "gopher://{real}:70/", "file:///etc/passwd", "ftp://{real}/", "javascript:alert(1)", "//169.254.169.254/",
    "dict://127.0.0.1:11211/", "{real}",
    # lookalike domains
    "https://zendesk.com.evil.io/", "https://evilzendesk.com/", "https://acme.my.salesforce.com.evil.io/",
    "https://evilsalesforce.com/", "https://api.hubapi.com.evil.io/", "https://evilhubapi.com/",
    "https://freshdesk.com.evil.io/", "https://evilfreshdesk.com/", "https://livechatinc.com.evil.io/",
    "https://evillivechatinc.com/", "https://internal.corp/", "https://metadata.google.internal/",
]  # fmt: skip

# A one-label field (Zendesk's subdomain) or a name (Freshdesk's domain): what would smuggle a host in.
# (A plain label such as `2852039166` or `localhost` stays under the vendor's domain: it is no trick there.)
NAME_TRICKS = [
    "acme.evil.io", "acme%2eevil", "acme\u3002evil", "acme\uff0eevil", "acme\x00", "acme\x00.evil.io",
    "acme@evil.io", "user@acme", "acme:80", "acme/../x", "acme#", "acme?x=1", "169.254.169.254", "[::1]",
    "acm\u0435", "ac me", "ac\r\nme", "acme\\evil",
    "acme.freshdesk.com.evil.io", "acme.zendesk.com.evil.io", "evilfreshdesk.com", "https://acme", "",
]  # fmt: skip

# Every host-bearing field: (vendor, the field, the vendor's real host for it, a URL or a name).
FIELDS: list[tuple[str, str, str, str]] = [
    ("zendesk", "subdomain", "acme.zendesk.com", "name"),
    ("zendesk", "base_url", "acme.zendesk.com", "url"),
    ("freshdesk", "domain", "acme.freshdesk.com", "name"),
    ("freshdesk", "base_url", "acme.freshdesk.com", "url"),
    ("salesforce", "instance_url", "acme.my.salesforce.com", "url"),
    ("salesforce", "base_url", "acme.my.salesforce.com", "url"),
    ("hubspot", "base_url", "api.hubapi.com", "url"),
    ("servicenow", "instance", "acme.service-now.com", "name"),
    ("servicenow", "base_url", "acme.service-now.com", "url"),
    ("livechat", "base_url", "api.livechatinc.com", "url"),
    ("livechat", "accounts_url", "accounts.livechat.com", "url"),
    ("dynamics", "instance_url", "contoso.crm4.dynamics.com", "url"),
    ("dynamics", "authority_url", "login.microsoftonline.com", "url"),
    ("dynamics", "base_url", "contoso.crm4.dynamics.com", "url"),
]


def request_for(vendor: str, field: str, value: str) -> tuple[str, dict[str, Any]]:
    """The route and body that make the service build this vendor's connector with one host field set."""
    config = {**SANDBOX_CREDENTIALS[vendor], field: value}
    if vendor == "livechat":
        config["client_id"] = "sandbox-client-id"  # the agent token grant: accounts_url is used
        return "/handoff/status", {"chat_type": "livechat", "handoff_id": "C000000001", "config": config}
    ticket_id = CRMS.connector_class(vendor).sandbox_seed["ticket_id"]  # a well-formed id, so the host decides
    return "/crm/ticket", {"crm_type": vendor, "ticket_id": ticket_id, "config": config}


@pytest.fixture(scope="module")
def resolves() -> Iterator[list[tuple[str, int]]]:
    """Every host the service's aiohttp connector is asked to resolve (IP literals included) while this runs."""
    seen: list[tuple[str, int]] = []
    original = aiohttp.TCPConnector._resolve_host

    async def recording(self: aiohttp.TCPConnector, host: str, port: int, traces: Any = None) -> Any:
        seen.append((host, port))
        return await original(self, host, port, traces)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aiohttp.TCPConnector, "_resolve_host", recording)
        yield seen


@pytest.fixture(scope="module")
def guarded(resolves) -> Iterator[dict[str, Any]]:
    """A service in sandbox mode, started after the recorder is in place."""
    server, thread, url = start_service(make_settings())
    client = audited_client(url, timeout=10, trust_env=False)
    sandbox = client.get(f"{url}/sandbox").json()["control"].removeprefix("http://").removesuffix("/_sandbox")
    host, port = sandbox.split(":")
    yield {"url": url, "client": client, "sandbox": sandbox, "other_port": f"{host}:{int(port) + 1}"}
    client.close()
    server.should_exit = True
    thread.join(timeout=10)


def cases() -> list[Any]:
    out = []
    for vendor, field, real, kind in FIELDS:
        for trick in URL_TRICKS if kind == "url" else NAME_TRICKS:
            out.append(pytest.param(vendor, field, real, trick, id=f"{vendor}.{field}:{trick!r}"))
    return out


def test_the_recorder_sees_a_real_call(guarded, resolves):
    before = len(resolves)
    r = guarded["client"].post(f"{guarded['url']}/crm/ticket", json={"crm_type": "zendesk", "ticket_id": "12345"})
    assert r.status_code == 200 and len(resolves) > before  # the positive control: a call is recorded


@pytest.mark.parametrize(("vendor", "field", "real", "trick"), cases())
def test_a_host_trick_is_refused_before_any_connection(guarded, resolves, vendor, field, real, trick):
    value = trick.format(real=real, sandbox=guarded["sandbox"], sandbox_other_port=guarded["other_port"])
    path, body = request_for(vendor, field, value)
    before = len(resolves)
    r = guarded["client"].post(f"{guarded['url']}{path}", json=body)
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_config", r.text
    assert resolves[before:] == []


# --- redirects: an allowed host answering 302 to an internal address ---------------------------------------


class Trap:
    """A loopback listener that only counts the connections it is offered."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


@pytest.fixture(scope="module")
def redirector() -> Iterator[tuple[str, Trap]]:
    trap = Trap()

    class Redirect(BaseHTTPRequestHandler):
        def _redirect(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{trap.port}/latest/meta-data")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = do_PATCH = _redirect  # noqa: N815 - http.server's naming

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", trap
    server.shutdown()
    server.server_close()
    trap.sock.close()


# Every CRM whose contract row audits the redirect, and every chat-only vendor (its base_url is its only host).
REDIRECT_VENDORS = [v.crm_type for v in VENDORS if v.redirect_audited] + [s for s in CHATS.supported() if s not in CRMS.supported()]


@pytest.mark.parametrize("vendor", REDIRECT_VENDORS)
def test_a_redirect_from_an_allowed_host_is_not_followed(redirector, vendor):
    host, trap = redirector
    server, thread, url = start_service(make_settings(connectors_allowed_hosts=host))
    try:
        with audited_client(url, timeout=10, trust_env=False) as client:
            path, body = request_for(vendor, "base_url", f"http://{host}")
            if vendor == "salesforce":
                body["config"]["instance_url"] = f"http://{host}"
            r = client.post(f"{url}{path}", json=body)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert r.status_code in (400, 404, 502) and "error" in r.json(), r.text
    assert trap.accepted == 0
