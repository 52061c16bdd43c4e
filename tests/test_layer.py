"""The layer: the registry derives everything, auth strategies with one OAuth cache, the injectable transport."""

from __future__ import annotations

import asyncio
import dataclasses

import orjson
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from connectors.auth import OAuthAuth, OAuthToken, basic, bearer
from connectors.context import Outgoing
from connectors.upstream_answers import UpstreamResponse
from connectors.zendesk import ZendeskConnector
from errors import AuthFailed, UpstreamUnreachable
from registry import CHATS, CRMS, PLUGINS, all_connectors
from sandbox import EMULATORS, SANDBOX_CREDENTIALS
from settings import Settings
from state import MemoryState
from tokens import TokenStore


class FakeTransport:
    """Answers from a list and records what was sent: the HTTP boundary without aiohttp."""

    def __init__(self, *answers: tuple[int, object] | BaseException) -> None:
        self.answers = list(answers)
        self.sent: list[Outgoing] = []

    async def __call__(self, ctx, out: Outgoing) -> UpstreamResponse:
        self.sent.append(out)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        status, body = answer
        headers = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
        return UpstreamResponse(status, headers, orjson.dumps(body))


# --- the registry ---------------------------------------------------------------------------------------


def test_everything_vendor_specific_derives_from_the_registry():
    vendors = {cls.vendor for cls in all_connectors()}
    for registry in (CRMS, CHATS):  # each plugin is in the registry of each kind it is, and nothing else is
        assert registry.supported() == sorted(p.vendor for p in PLUGINS if issubclass(p, registry.kind))
    assert CRMS.supported() and CHATS.supported()
    assert len(all_connectors()) == len(vendors)  # a vendor of both kinds (Intercom) is listed once
    assert {e.name for e in EMULATORS} == vendors and set(SANDBOX_CREDENTIALS) == vendors
    settings_fields = set(Settings.model_fields)
    for cls in all_connectors():
        assert {f"{cls.vendor}_{name}" for name in cls.config_model.model_fields} <= settings_fields


def test_vendor_variables_come_from_the_config_models(monkeypatch):
    monkeypatch.setenv("SALESFORCE_STATUS_MAP", '{"In Progress": "open"}')
    monkeypatch.setenv("ZENDESK_TIER_FIELD", "plan")
    settings = Settings(_env_file=None)
    assert settings.salesforce_status_map == {"In Progress": "open"} and settings.zendesk_tier_field == "plan"
    assert settings.hubspot_api_version == "2026-09"  # the config model's default stays the default


def test_a_bad_vendor_variable_fails_at_start_up_naming_it(monkeypatch):
    monkeypatch.setenv("LIVECHAT_GROUP_ID", "-1")
    with pytest.raises(ValueError, match="livechat_group_id"):
        Settings(_env_file=None)


def test_unknown_chat_type_lists_the_registered_ones():
    with pytest.raises(Exception, match=f"supported: {', '.join(CHATS.supported())}"):
        CHATS.connector_class("genesys")


# --- auth strategies --------------------------------------------------------------------------------------


async def test_static_strategies_never_refresh():
    assert (await basic("u", "p").headers()) == {"Authorization": "Basic dTpw"}
    assert not await bearer("t").refresh({"Authorization": "Bearer t"})


def store() -> TokenStore:
    return TokenStore(MemoryState(1024 * 1024), wait_seconds=1.0)


async def test_oauth_fetches_once_for_concurrent_callers_and_renews_after_expiry_answer():
    fetched: list[int] = []

    async def fetch() -> OAuthToken:
        fetched.append(1)
        await asyncio.sleep(0)
        return OAuthToken(f"token-{len(fetched)}")

    tokens = store()
    first, second = OAuthAuth(tokens, "grant", fetch), OAuthAuth(tokens, "grant", fetch)
    headers = await asyncio.gather(first.headers(), second.headers())
    assert headers[0] == headers[1] == {"Authorization": "Bearer token-1"} and len(fetched) == 1
    assert await first.refresh(headers[0]) and await second.refresh(headers[1])  # both saw token-1 rejected
    assert await first.headers() == {"Authorization": "Bearer token-2"} and len(fetched) == 2


async def test_oauth_renews_before_a_stated_expiry():
    now = [1000.0]

    async def fetch() -> OAuthToken:
        return OAuthToken(f"token-at-{now[0]:.0f}", expires_at=now[0] + 3600)

    oauth = OAuthAuth(store(), "grant", fetch, clock=lambda: now[0])
    assert await oauth.headers() == {"Authorization": "Bearer token-at-1000"}
    now[0] += 3000  # ten minutes left: still good
    assert await oauth.headers() == {"Authorization": "Bearer token-at-1000"}
    now[0] += 570  # within the margin
    assert await oauth.headers() == {"Authorization": "Bearer token-at-4570"}


async def test_oauth_with_only_a_given_token_cannot_refresh():
    oauth = OAuthAuth(store(), None, None, given="given")
    assert await oauth.headers() == {"Authorization": "Bearer given"} and not await oauth.refresh({})


# --- the transport seam -----------------------------------------------------------------------------------


@pytest.fixture
def zendesk(make_context):
    def build(transport: FakeTransport) -> ZendeskConnector:
        ctx = dataclasses.replace(make_context(), transport=transport)
        connector = ZendeskConnector.from_request({"subdomain": "acme", "oauth_token": "tok"}, ctx)
        assert isinstance(connector, ZendeskConnector)
        return connector

    return build


async def test_a_fake_transport_sees_the_resolved_call(zendesk):
    transport = FakeTransport((200, {"ticket": {"id": 7, "status": "open"}}))
    ticket = await zendesk(transport).get_ticket("7")
    assert ticket.id == "7"
    (out,) = transport.sent
    assert out.method == "GET" and out.url == "https://acme.zendesk.com/api/v2/tickets/7.json"
    assert out.headers["Authorization"] == "Bearer tok"


async def test_transport_errors_and_statuses_still_map_to_contract_errors(zendesk):
    import aiohttp

    refused = aiohttp.ClientConnectorError(None, OSError("refused"))  # type: ignore[arg-type]
    transport = FakeTransport(refused, refused, refused)
    with pytest.raises(UpstreamUnreachable):
        await zendesk(transport).get_ticket("7")
    assert len(transport.sent) == 3  # retried like any unreachable vendor
    with pytest.raises(AuthFailed):
        await zendesk(FakeTransport((401, {"error": "Couldn't authenticate you"}))).get_ticket("7")


def test_tuning_fields_do_not_change_who_the_tenant_is(make_context):
    base = {"subdomain": "acme", "oauth_token": "tok"}
    plain = ZendeskConnector.from_request(base, make_context())
    tuned = ZendeskConnector.from_request({**base, "tier_field": "plan"}, make_context())
    other = ZendeskConnector.from_request({**base, "oauth_token": "other"}, make_context())
    assert plain.tenant_fingerprint() == tuned.tenant_fingerprint() != other.tenant_fingerprint()
