"""The SSRF guard: a corpus of hostile hosts, each a 400 invalid_config before any connection is attempted."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from connectors.hosts import check_base_url, check_vendor_url
from connectors.context import ConnectorContext
from connectors.deadline import Deadline
from crm import CRMFactory
from errors import InvalidConfig, UpstreamUnreachable
from tests.conftest import Service, error_of, make_settings

SF_DOMAINS = (".salesforce.com", ".force.com")
SF_CREDS = {"client_id": "cid", "client_secret": "a-client-secret"}

# Each would reach something other than the vendor if a parser or resolver read it differently from us.
HOSTILE_INSTANCE_URLS = [
    # NUL and control characters: the resolver cuts the name at the NUL
    "https://169.254.169.254\u0000.salesforce.com",
    "https://169.254.169.254%00.salesforce.com",
    "https://acme\t.my.salesforce.com",
    "https://acme.my.salesforce.com\r\nHost: evil",
    "https://acme.my.salesforce.com\x7f",
    "https://acme .my.salesforce.com",
    # non-ASCII: full-width slash and at, homoglyphs, IDNA dots
    "https://169.254.169.254\uff0f.salesforce.com",
    "https://evil.com\uff20acme.my.salesforce.com",
    "https://\u0430cme.my.salesforce.com",  # Cyrillic a
    "https://acme.my.salesforce\u3002com",  # ideographic full stop
    "https://acme.my.ｓalesforce.com",
    # percent-encoding and escapes in the host
    "https://acme%2emy.salesforce.com",
    "https://%31%36%39.254.169.254.salesforce.com",
    # userinfo and backslash tricks
    "https://acme.my.salesforce.com@169.254.169.254",
    "https://169.254.169.254@acme.my.salesforce.com",
    "https://evil.com\\@acme.my.salesforce.com",
    "https://user:pw@acme.my.salesforce.com",
    # IP literals, IPv6 and mapped forms, numeric IPv4 spellings
    "https://169.254.169.254",
    "https://[::1]",
    "https://[::ffff:169.254.169.254]",
    "https://[::ffff:a9fe:a9fe]",
    "https://[fe80::1%25eth0]",
    "https://[::1",  # unclosed bracket
    "https://2852039166",
    "https://0xa9fea9fe",
    "https://0251.0376.0251.0376",
    "https://169.254.43518",
    # ports
    "https://acme.my.salesforce.com:99999",
    "https://acme.my.salesforce.com:-1",
    "https://acme.my.salesforce.com:0",
    "https://acme.my.salesforce.com:443x",
    "https://acme.my.salesforce.com:8443",
    # schemes
    "http://acme.my.salesforce.com",
    "gopher://acme.my.salesforce.com",
    "file:///etc/passwd",
    "//acme.my.salesforce.com",
    "acme.my.salesforce.com",
    "",
    # lookalike domains
    "https://acme.my.salesforce.com.evil.com",
    "https://evilsalesforce.com",
    "https://salesforce.com",
    "https://acme.my.salesforce.com./",
    "https://-acme.my.salesforce.com",
    "https://acme..salesforce.com",
    "https://a_b.my.salesforce.com",
    # query, fragment and path tricks
    "https://acme.my.salesforce.com?x=1",
    "https://acme.my.salesforce.com#frag",
    "https://acme.my.salesforce.com/../../admin",
    "https://acme.my.salesforce.com/%2e%2e/x",
]


@pytest.mark.parametrize("url", HOSTILE_INSTANCE_URLS)
def test_hostile_vendor_urls_are_invalid_config(url):
    with pytest.raises(InvalidConfig):
        check_vendor_url(url, crm_type="salesforce", suffixes=SF_DOMAINS, allowed_hosts=frozenset())


@pytest.mark.parametrize("url", ["https://acme.my.salesforce.com", "https://ACME.My.Salesforce.com/", "https://na1.force.com"])
def test_real_vendor_urls_pass_lower_cased(url):
    assert check_vendor_url(url, crm_type="salesforce", suffixes=SF_DOMAINS, allowed_hosts=frozenset()) == url.lower().rstrip("/")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://[::1]:9000", "http://localhost:9000", "http://proxy.internal:1"])
def test_ip_literals_and_ports_are_refused_unless_allowed(url):
    with pytest.raises(InvalidConfig):
        check_base_url(url, crm_type="zendesk", allowed_hosts=frozenset({"proxy.internal:2"}))


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://127.0.0.1:8080/zendesk", "127.0.0.1:8080"),
    ("http://[::1]:9000", "::1:9000"),
    ("https://zd.staging.internal", "zd.staging.internal"),
])  # fmt: skip
def test_an_allowed_host_passes(url, allowed):
    assert check_base_url(url, crm_type="zendesk", allowed_hosts=frozenset({allowed})) == url


def test_allowed_hosts_do_not_lift_the_character_checks():
    with pytest.raises(InvalidConfig):
        check_base_url("http://127.0.0.1\u0000:8080", crm_type="zendesk", allowed_hosts=frozenset({"127.0.0.1:8080"}))


# --- through the connectors, with a session that records (and refuses) every connection -----------------


class RecordingConnector(aiohttp.TCPConnector):
    """Records each connection aiohttp would open, and opens none."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts: list[str] = []

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
        self.attempts.append(str(req.url))
        raise aiohttp.ClientConnectorError(req.connection_key, OSError("refused by the test"))


@pytest.fixture
async def recorded():
    connector = RecordingConnector()
    async with aiohttp.ClientSession(connector=connector) as session:
        settings = make_settings(sandbox=False, retry_max_attempts=1)
        yield connector, ConnectorContext(session=session, settings=settings, deadline=Deadline(1.0))


HOSTILE_CONFIGS = [
    *({"crm_type": "salesforce", "config": {**SF_CREDS, "instance_url": url}} for url in HOSTILE_INSTANCE_URLS[:20]),
    *(
        {"crm_type": crm, "config": {**creds, "base_url": url}}
        for crm, creds in (("zendesk", {"subdomain": "acme", "oauth_token": "a-zendesk-token"}),
                           ("hubspot", {"api_key": "a-hubspot-token"}),
                           ("freshdesk", {"domain": "acme", "api_key": "a-freshdesk-key"}))
        for url in ("http://169.254.169.254\u0000.evil", "http://[::ffff:127.0.0.1]", "https://x:99999", "https://\uff20x")
    ),  # fmt: skip
    *({"crm_type": "zendesk", "config": {"subdomain": s, "oauth_token": "a-zendesk-token"}} for s in ("acme\u0000.evil", "١٢٣", "acme\u200b", "ac\nme")),
    *({"crm_type": "freshdesk", "config": {"domain": d, "api_key": "a-freshdesk-key"}} for d in ("acme\u0000", "acme.freshdesk.com:81")),
]


@pytest.mark.parametrize("body", HOSTILE_CONFIGS)
async def test_every_connector_refuses_before_connecting(recorded, body):
    connector, ctx = recorded
    with pytest.raises(InvalidConfig):
        crm = CRMFactory.create(body["crm_type"], body["config"], ctx)
        await crm.get_ticket("1" if body["crm_type"] != "salesforce" else "500000000000001AAA")
    assert connector.attempts == []


async def test_the_recorder_sees_a_connection_a_valid_config_makes(recorded):
    connector, ctx = recorded
    crm = CRMFactory.create("hubspot", {"api_key": "a-hubspot-token"}, ctx)
    with pytest.raises(UpstreamUnreachable):
        await crm.get_ticket("1")
    assert connector.attempts and connector.attempts[0].startswith("https://api.hubapi.com/")


# --- through the service: the cases from the report, as 400s that reach no emulator ----------------------


@pytest.mark.parametrize("instance_url", [
    "https://169.254.169.254\u0000.salesforce.com",
    "https://169.254.169.254\uff0f.salesforce.com",
    "https://evil\uff20acme.my.salesforce.com",
    "https://acme.my.salesforce.com:65536",
    "https://[acme.my.salesforce.com",
])  # fmt: skip
def test_the_reported_instance_urls_are_400_over_the_api(svc: Service, instance_url):
    body = {"crm_type": "salesforce", "ticket_id": "500000000000001AAA", "config": {**SF_CREDS, "instance_url": instance_url}}
    r = svc.post("/crm/ticket", body)
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_config"
    assert svc.vendor_requests("salesforce") == []
