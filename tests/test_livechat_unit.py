"""LiveChatConnector against faked HTTP (aioresponses): the RPC bodies of a handoff, auth, errors, retries."""

from __future__ import annotations

import base64
import re

import orjson
import pytest

from errors import (
    AuthFailed,
    InvalidConfig,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnavailable,
    ValidationFailed,
)
from livechat import urgency_of
from connectors.chat import ChatAttempt
from livechat_connector import LiveChatConnector
from handoff_text import URGENCY, fit_text, split_text
from livechat_connector import MESSAGE_LIMIT_BYTES, transcript_events
from livechat_identity import CustomerTokens, read_grant
from models import HandoffContext, HandoffStatus
from settings import Settings
from tests.conftest import sent

AGENT = "https://api.livechatinc.com/v3.6/agent/action"
CUSTOMER = "https://api.livechatinc.com/v3.6/customer/action"
CONFIGURATION = "https://api.livechatinc.com/v3.6/configuration/action"
TOKEN_URL = "https://accounts.livechat.com/v2/customer/token"
CONFIG = {"license_id": "org-1", "account_id": "bot@acme.com", "api_key": "pat-123"}  # a PAT: Basic auth
OAUTH = {"license_id": "org-1", "api_key": "dal:agent-oauth", "client_id": "app-client-1"}  # the agent token grant
# The agent token grant's answer, shaped as https://platform.text.com/docs/authorization/customer-authorization
# documents it ("Agent token grant", case: new customer).
GRANT = {
    "access_token": "dal:customer-token-1",
    "client_id": "app-client-1",
    "entity_id": "cust-1",
    "expires_in": 28800,
    "token_type": "Bearer",
    "organization_id": "org-1",
}
CONTEXT = HandoffContext(
    call_id="call_abc123",
    customer_name="Ahmed Al-Mansoori",
    customer_email="ahmed@example.ae",
    customer_phone="+971 50 123 4567",
    transcript=[
        {"role": "user", "text": "I need help with my order"},
        {"role": "bot", "text": "What's your order number?"},
        {"role": "user", "text": "ORD12345"},
    ],
    reason="billing dispute",
    urgency="high",
    metadata={"crm_type": "zendesk", "customer_id": "1001", "order_id": "ORD12345", "language": "en"},
)
ASSIGNED_CHAT = {
    "id": "PJ0MRSHTDG",
    "thread": {"id": "QA37PVJ75B", "active": True, "user_ids": ["cust-1", "sara@example.com"], "events": []},
    "users": [
        {"id": "cust-1", "type": "customer", "name": "Ahmed Al-Mansoori"},
        {"id": "sara@example.com", "type": "agent", "name": "Sara Ahmed"},
    ],
}


@pytest.fixture
def livechat(make_context):
    """Build a connector over aioresponses."""
    def build(config=None, **settings):
        """A connector for this config and settings."""
        connector = LiveChatConnector.from_request(config or CONFIG, make_context(**settings))
        assert isinstance(connector, LiveChatConnector)
        return connector

    return build


def calls(mock_http, method_name: str) -> list:
    """What aioresponses saw for one LiveChat action (agent or customer side)."""
    return [
        call
        for (method, url), seen in mock_http.requests.items()
        if method == "POST" and str(url).split("?")[0].endswith(f"/action/{method_name}")
        for call in seen
    ]


def body_of(call) -> dict:
    """The JSON body of a recorded call."""
    return orjson.loads(call.kwargs["data"])


def mock_handoff(mock_http, *, group: str = "online", chat: dict | None = None, routing: str = "accepting_chats") -> None:
    """A LiveChat that accepts every step of a handoff, for either credential type."""
    mock_http.post(TOKEN_URL, payload=GRANT, repeat=True)
    # https://platform.text.com/docs/messaging/customer-chat-api#list-group-statuses
    mock_http.post(re.compile(rf"{CUSTOMER}/list_group_statuses\?.*"), payload={"groups_status": {"0": group}}, repeat=True)
    # https://platform.text.com/docs/messaging/customer-chat-api#update-customer answers {}
    mock_http.post(re.compile(rf"{CUSTOMER}/update_customer\?.*"), payload={}, repeat=True)
    # https://platform.text.com/docs/management/configuration-api#list-groups with fields: [routing_status]
    mock_http.post(f"{CONFIGURATION}/list_groups", payload=[
        {"id": 0, "name": "General", "language_code": "en", "routing_status": routing},
        {"id": 7, "name": "Billing", "language_code": "en", "routing_status": routing},
    ], repeat=True)
    # https://platform.text.com/docs/messaging/agent-chat-api#start-chat
    mock_http.post(f"{AGENT}/start_chat", payload={"chat_id": "PJ0MRSHTDG", "thread_id": "QA37PVJ75B", "event_ids": []})
    mock_http.post(f"{AGENT}/send_event", payload={"event_id": "QA37PVJ75B_9"}, repeat=True)
    mock_http.post(f"{AGENT}/tag_thread", payload={}, repeat=True)
    mock_http.post(f"{AGENT}/transfer_chat", payload={})
    mock_http.post(f"{AGENT}/get_chat", payload=chat or ASSIGNED_CHAT)


def error(kind: str, message: str = "msg", **extra) -> dict:
    """LiveChat's error envelope."""
    return {"error": {"type": kind, "message": message, **extra}}


# --- auth -------------------------------------------------------------------------------------------------


async def test_personal_access_token_is_basic_with_region_from_the_token(livechat, mock_http):
    mock_handoff(mock_http)
    assert await livechat({**CONFIG, "api_key": "fra:pat-123"}).group_status(0, None) == "online_for_queue"
    call = calls(mock_http, "list_groups")[0]
    headers = call.kwargs["headers"]
    assert base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode() == "bot@acme.com:fra:pat-123"
    assert headers["X-Region"] == "fra"
    assert body_of(call) == {"fields": ["routing_status"]}
    assert calls(mock_http, "list_group_statuses") == []  # a PAT cannot call the Customer Chat API


async def test_oauth_token_is_bearer_and_an_explicit_region_is_sent(livechat, mock_http):
    mock_http.post(f"{AGENT}/get_chat", payload=ASSIGNED_CHAT)
    await livechat({"license_id": "org-1", "api_key": "oauth-abc", "region": "fra"}).get_chat("PJ0MRSHTDG")
    headers = calls(mock_http, "get_chat")[0].kwargs["headers"]
    assert headers["Authorization"] == "Bearer oauth-abc" and headers["X-Region"] == "fra"


async def test_no_region_header_when_none_is_known(livechat, mock_http):
    mock_http.post(f"{AGENT}/get_chat", payload=ASSIGNED_CHAT)
    await livechat().get_chat("PJ0MRSHTDG")
    assert "X-Region" not in calls(mock_http, "get_chat")[0].kwargs["headers"]


# --- the handoff's calls --------------------------------------------------------------------------------


async def test_oauth_handoff_makes_the_caller_a_customer_with_the_agent_token_grant(livechat, mock_http):
    mock_handoff(mock_http)
    result = await livechat(OAUTH).hand_over(CONTEXT, URGENCY["high"], ChatAttempt())

    [grant] = sent(mock_http, "POST", TOKEN_URL)
    assert grant.kwargs["headers"]["Authorization"] == "Bearer dal:agent-oauth"
    assert body_of(grant) == {"grant_type": "agent_token", "client_id": "app-client-1", "response_type": "token"}

    [update] = calls(mock_http, "update_customer")
    assert update.kwargs["headers"]["Authorization"] == "Bearer dal:customer-token-1"
    assert update.kwargs["params"] == {"organization_id": "org-1"}
    customer = body_of(update)
    assert customer["name"] == "Ahmed Al-Mansoori" and customer["email"] == "ahmed@example.ae"
    assert customer["phone_number"] == "+971501234567"
    assert {"phone": "+971501234567"} in customer["session_fields"] and {"call_id": "call_abc123"} in customer["session_fields"]
    status_call = calls(mock_http, "list_group_statuses")[0]
    assert status_call.kwargs["headers"]["Authorization"] == "Bearer dal:customer-token-1"
    assert body_of(status_call) == {"group_ids": [0]}

    start = body_of(calls(mock_http, "start_chat")[0])
    assert start["chat"]["users"] == [{"id": "cust-1", "type": "customer"}]
    assert calls(mock_http, "start_chat")[0].kwargs["headers"]["Authorization"] == "Bearer dal:agent-oauth"
    assert calls(mock_http, "create_customer") == []
    assert result.status == HandoffStatus.assigned


async def test_handoff_sends_transcript_summary_tags_and_transfer(livechat, mock_http):
    mock_handoff(mock_http)
    result = await livechat().hand_over(CONTEXT, URGENCY["high"], ChatAttempt())

    start = body_of(calls(mock_http, "start_chat")[0])
    assert "users" not in start["chat"]  # a PAT gets no customer: chat.users is optional in v3.6
    assert start["chat"]["access"] == {"group_ids": [0]}
    assert [e["text"] for e in start["chat"]["thread"]["events"]] == [
        "Caller: I need help with my order",
        "Bot: What's your order number?",
        "Caller: ORD12345",
    ]
    assert {e["visibility"] for e in start["chat"]["thread"]["events"]} == {"all"}
    assert sent(mock_http, "POST", TOKEN_URL) == [] and calls(mock_http, "update_customer") == []

    summary = body_of(calls(mock_http, "send_event")[0])
    assert summary["chat_id"] == "PJ0MRSHTDG" and summary["event"]["visibility"] == "agents"
    text = summary["event"]["text"]
    for fact in ("Reason: billing dispute", "Urgency: high", "Ahmed Al-Mansoori", "ahmed@example.ae",
                 "Callback number: +971501234567", "customer_id=1001", "order_id=ORD12345", "crm_type=zendesk",
                 "Call id: call_abc123", "language=en"):
        assert fact in text

    tags = {body_of(c)["tag"] for c in calls(mock_http, "tag_thread")}
    assert tags == {"voice_handoff", "billing_dispute", "priority_high"}
    assert {body_of(c)["thread_id"] for c in calls(mock_http, "tag_thread")} == {"QA37PVJ75B"}

    transfer = body_of(calls(mock_http, "transfer_chat")[0])
    # An accepting group may be busy (routing_status cannot say): the transfer may queue.
    assert transfer == {"id": "PJ0MRSHTDG", "target": {"type": "group", "ids": [0]}, "ignore_agents_availability": True,
                        "ignore_requester_presence": True}
    assert body_of(calls(mock_http, "get_chat")[0]) == {"chat_id": "PJ0MRSHTDG"}

    assert (result.status, result.agent_id, result.agent_name) == (HandoffStatus.assigned, "sara@example.com", "Sara Ahmed")
    assert result.estimated_wait_seconds == 0 and result.chat_url == "https://my.livechatinc.com/chats/PJ0MRSHTDG"


async def test_customer_token_is_reused_until_it_expires_then_renewed_for_the_same_customer(livechat, make_context, mock_http):
    mock_handoff(mock_http)
    context = make_context()
    connector = LiveChatConnector.from_request(OAUTH, context)
    first = await connector.caller(CONTEXT)
    again = await connector.caller(CONTEXT)
    assert again == first and len(sent(mock_http, "POST", TOKEN_URL)) == 1  # cached: one grant
    CustomerTokens(context.shared).expire(first.key)
    renewed = await connector.caller(CONTEXT)
    grants = sent(mock_http, "POST", TOKEN_URL)
    assert len(grants) == 2 and body_of(grants[1])["entity_id"] == "cust-1" and renewed.token.entity_id == "cust-1"
    other = LiveChatConnector.from_request({**OAUTH, "api_key": "dal:other-tenant"}, context)
    assert (await other.caller(CONTEXT)).key != first.key  # never another tenant's customer


def test_customer_token_cache_counts_expiry_on_its_own_clock():
    clock = [1000.0]
    cache = CustomerTokens({}, clock=lambda: clock[0])
    token = read_grant(GRANT, cache.now())
    assert token is not None and token.expires_at == 1000.0 + 28800 - 60
    cache.put("k", token)
    assert cache.fresh("k") == token
    clock[0] += 28800
    assert cache.fresh("k") is None and cache.known_entity("k") == "cust-1"
    assert read_grant({"access_token": "x"}, 0) is None  # no entity_id: not a customer


async def test_refused_customer_token_is_forgotten_and_the_handoff_goes_on(livechat, mock_http, make_context):
    mock_http.post(re.compile(rf"{CUSTOMER}/list_group_statuses\?.*"), status=401, payload=error("authentication"))
    mock_handoff(mock_http)
    context = make_context()
    connector = LiveChatConnector.from_request(OAUTH, context)
    result = await connector.hand_over(CONTEXT, URGENCY["medium"], ChatAttempt())
    assert result.status == HandoffStatus.assigned
    assert body_of(calls(mock_http, "transfer_chat")[0])["ignore_agents_availability"] is False
    caller = await connector.caller(CONTEXT)  # the refused token is not reused
    assert len(sent(mock_http, "POST", TOKEN_URL)) == 2 and caller.token.entity_id == "cust-1"


async def test_grant_refused_still_hands_over_without_a_customer(livechat, mock_http):
    mock_http.post(TOKEN_URL, status=401, payload={"error": "unauthorized", "error_description": "missing scope"})
    mock_handoff(mock_http)
    result = await livechat(OAUTH).hand_over(CONTEXT, URGENCY["medium"], ChatAttempt())
    assert result.status == HandoffStatus.assigned
    assert "users" not in body_of(calls(mock_http, "start_chat")[0])["chat"]
    assert calls(mock_http, "list_groups")  # staffing then comes from the Configuration API


async def test_accounts_url_is_guarded(livechat):
    assert livechat({**OAUTH, "accounts_url": "https://accounts.livechat.com/"}).accounts_url == "https://accounts.livechat.com"
    for url in ("https://evil.example", "http://accounts.livechat.com", "https://accounts.livechat.com.evil.example"):
        with pytest.raises(InvalidConfig):
            livechat({**OAUTH, "accounts_url": url})


async def test_busy_group_transfers_to_the_queue_and_reports_position_and_wait(livechat, mock_http):
    queued = {
        "id": "PJ0MRSHTDG",
        "thread": {"id": "QA37PVJ75B", "active": True, "user_ids": ["cust-1"],
                   "queue": {"position": 3, "wait_time": 360, "queued_at": "2025-01-01T10:00:00.000000Z"}},
        "users": [{"id": "cust-1", "type": "customer"}],
    }
    mock_handoff(mock_http, group="online_for_queue", chat=queued)
    result = await livechat(OAUTH).hand_over(CONTEXT, URGENCY["low"], ChatAttempt())
    assert body_of(calls(mock_http, "transfer_chat")[0])["ignore_agents_availability"] is True
    assert (result.status, result.queue_position, result.estimated_wait_seconds) == (HandoffStatus.queued, 3, 360)
    assert result.agent_id is None


async def test_a_configured_agent_is_the_transfer_target(livechat, mock_http):
    mock_handoff(mock_http)
    await livechat({**CONFIG, "agent_id": "lead@acme.com", "group_id": 7}).hand_over(CONTEXT, URGENCY["urgent"], ChatAttempt())
    transfer = body_of(calls(mock_http, "transfer_chat")[0])
    assert transfer["target"] == {"type": "agent", "ids": ["lead@acme.com"]}
    assert body_of(calls(mock_http, "start_chat")[0])["chat"]["access"] == {"group_ids": [7]}
    assert calls(mock_http, "list_groups")  # group 7's routing_status, read with the PAT


@pytest.mark.parametrize("config", [CONFIG, OAUTH])
async def test_offline_group_starts_no_chat(livechat, mock_http, config):
    mock_handoff(mock_http, group="offline", routing="offline")
    attempt = ChatAttempt()
    with pytest.raises(UpstreamError) as caught:
        await livechat(config).hand_over(CONTEXT, URGENCY["medium"], attempt)
    assert caught.value.details == {"type": "group_offline"}
    assert calls(mock_http, "start_chat") == [] and attempt.chat_id is None


async def test_configuration_api_refusing_the_pat_does_not_block_the_handoff(livechat, mock_http):
    # Registered first, so it answers first: the PAT lacks the scope to read groups.
    mock_http.post(f"{CONFIGURATION}/list_groups", status=403, payload=error("authorization"))
    mock_handoff(mock_http)
    result = await livechat().hand_over(CONTEXT, URGENCY["medium"], ChatAttempt())
    assert result.status == HandoffStatus.assigned
    assert body_of(calls(mock_http, "transfer_chat")[0])["ignore_agents_availability"] is False


async def test_failed_tag_does_not_cost_the_handoff(livechat, mock_http):
    mock_http.post(f"{AGENT}/tag_thread", status=400, payload=error("validation", "Tag not found"), repeat=True)
    mock_handoff(mock_http)
    assert (await livechat().hand_over(CONTEXT, URGENCY["medium"], ChatAttempt())).status == HandoffStatus.assigned


async def test_transfer_failure_keeps_the_chat_id_for_the_caller(livechat, mock_http):
    mock_http.post(f"{AGENT}/transfer_chat", status=400, payload=error("agent_offline"))
    mock_handoff(mock_http)
    attempt = ChatAttempt()
    with pytest.raises(UpstreamError) as caught:
        await livechat({**CONFIG, "agent_id": "lead@acme.com"}).hand_over(CONTEXT, URGENCY["medium"], attempt)
    assert caught.value.details["type"] == "agent_offline" and attempt.chat_id == "PJ0MRSHTDG"


# --- transcript and text ---------------------------------------------------------------------------------


def test_long_turns_are_split_under_16_kb_in_order():
    long_text = " ".join(f"word{i}" for i in range(6000))  # ~53 KB
    arabic = "مرحبا " * 4000  # multi-byte: ~44 KB
    events = transcript_events([{"role": "user", "text": long_text}, {"role": "assistant", "text": arabic},
                                {"speaker": "bot", "content": "done"}])
    assert all(len(e["text"].encode()) <= MESSAGE_LIMIT_BYTES for e in events)
    caller = [e["text"] for e in events if e["text"].startswith("Caller")]
    assert caller[0].startswith("Caller (1/") and len(caller) == 4
    rebuilt = " ".join(t.split(": ", 1)[1] for t in caller)
    assert rebuilt == long_text
    assert events[-1]["text"] == "Bot: done"
    assert [e["text"].split(" (")[0] for e in events[:len(caller)]] == ["Caller"] * len(caller)


def test_split_text_never_breaks_a_character():
    pieces = split_text("é" * 10, 5)
    assert pieces == ["éé", "éé", "éé", "éé", "éé"]


def test_fit_text_keeps_both_ends_of_a_huge_transcript():
    lines = [f"Caller: turn {i} " + "x" * 300 for i in range(1000)]
    text = fit_text("HEAD", lines, 60_000)
    assert len(text) <= 60_000 and text.startswith("HEAD")
    assert "turn 0 " in text and "turn 999 " in text and "turns left out" in text


def test_unknown_urgency_is_a_422():
    with pytest.raises(ValidationFailed) as caught:
        urgency_of("asap")
    assert caught.value.status_code == 422 and "low, medium, high" in caught.value.message
    assert urgency_of(" HIGH ").tag == "priority_high"


# --- errors and retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "contract"),
    [
        (401, "authentication", AuthFailed),
        (403, "authorization", AuthFailed),
        (400, "validation", ValidationFailed),
        (404, "not_found", NotFound),
        (400, "chat_inactive", ValidationFailed),
        (400, "group_offline", UpstreamError),
    ],
)
async def test_livechat_error_types_map_to_contract_errors(livechat, mock_http, status, kind, contract):
    mock_http.post(f"{AGENT}/get_chat", status=status, payload=error(kind, "Something"))
    with pytest.raises(contract) as caught:
        await livechat().get_chat("PJ0MRSHTDG")
    assert type(caught.value) is contract
    assert caught.value.details["type"] == kind and caught.value.upstream_status == status
    assert len(calls(mock_http, "get_chat")) == 1


async def test_too_many_requests_is_retried_then_rate_limited(livechat, mock_http, sleeps):
    mock_http.post(f"{AGENT}/get_chat", status=429, payload=error("too_many_requests"), repeat=True)
    with pytest.raises(RateLimited):
        await livechat().get_chat("PJ0MRSHTDG")
    assert len(calls(mock_http, "get_chat")) == 3 and len(sleeps.calls) == 2


async def test_start_chat_is_resent_when_livechat_refused_it(livechat, mock_http):
    mock_http.post(f"{AGENT}/start_chat", status=503, payload=error("service_unavailable"))
    mock_http.post(f"{AGENT}/start_chat", payload={"chat_id": "C1", "thread_id": "T1"})
    assert await livechat().start_chat("cust-1", []) == ("C1", "T1")
    assert len(calls(mock_http, "start_chat")) == 2


@pytest.mark.parametrize(("status", "answer", "contract"), [
    (500, {"payload": error("internal")}, UpstreamUnavailable),
    (502, {"body": "Bad Gateway"}, UpstreamUnavailable),
    (504, {"payload": error("request_timeout")}, UpstreamTimeout),
])
async def test_start_chat_is_not_resent_when_livechat_may_have_acted(livechat, mock_http, status, answer, contract):
    mock_http.post(f"{AGENT}/start_chat", status=status, **answer)
    with pytest.raises(contract):
        await livechat().start_chat("cust-1", [])
    assert len(calls(mock_http, "start_chat")) == 1


async def test_service_unavailable_is_a_refusal_that_is_safe_to_resend():
    assert UpstreamRefused.request_not_processed and UpstreamRefused.retryable


async def test_wrong_region_names_the_right_one(livechat, mock_http):
    mock_http.post(f"{AGENT}/get_chat", status=421, payload=error("misdirected_request", "Wrong region", data={"region": "fra"}))
    with pytest.raises(InvalidConfig) as caught:
        await livechat().get_chat("PJ0MRSHTDG")
    assert "'fra'" in caught.value.message and caught.value.details["data"] == {"region": "fra"}


async def test_deactivating_an_inactive_chat_counts_as_closed(livechat, mock_http):
    mock_http.post(f"{AGENT}/deactivate_chat", status=400, payload=error("chat_inactive"))
    assert await livechat().close("PJ0MRSHTDG") is True
    assert body_of(calls(mock_http, "deactivate_chat")[0]) == {"id": "PJ0MRSHTDG", "ignore_requester_presence": True}


async def test_closed_thread_is_reported_closed(livechat, mock_http):
    mock_http.post(f"{AGENT}/get_chat", payload={**ASSIGNED_CHAT, "thread": {**ASSIGNED_CHAT["thread"], "active": False}})
    connector = livechat()
    state = connector.handoff_state("PJ0MRSHTDG", await connector.get_chat("PJ0MRSHTDG"))
    assert state.status == HandoffStatus.closed and state.agent_id is None


# --- configuration ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {"api_key": "s3cret-value"},  # no license_id
        {"license_id": "org-1"},  # no api_key
        {**CONFIG, "api_key": "s3cret-value", "chat_url_template": "https://x/{secret}"},
        {**CONFIG, "api_key": "s3cret-value", "chat_url_template": "javascript:{chat_id}"},
        {**CONFIG, "api_key": "s3cret-value", "region": "mars"},
        {**CONFIG, "api_key": "s3cret-value", "license_id": "a/../b"},
    ],
)
async def test_bad_config_is_invalid_config_without_echoing_secrets(livechat, config):
    with pytest.raises(InvalidConfig) as caught:
        livechat(config)
    assert "s3cret-value" not in caught.value.message


@pytest.mark.parametrize("base_url", ["http://169.254.169.254/latest", "http://localhost:8080", "https://evil.example"])
async def test_base_url_outside_allowed_hosts_is_refused(livechat, base_url):
    with pytest.raises(InvalidConfig):
        livechat({**CONFIG, "base_url": base_url})


async def test_chat_url_template_fills_ids(livechat):
    connector = livechat({**CONFIG, "chat_url_template": "https://my.livechatinc.com/{license_id}/chats/{chat_id}/{thread_id}"})
    assert connector.chat_url("C1", "T1") == "https://my.livechatinc.com/org-1/chats/C1/T1"


async def test_the_bot_that_opened_the_chat_is_never_reported_as_the_agent(livechat, mock_http):
    # Where LiveChat keeps the requester in the thread after a transfer, the bot must not count as the agent.
    bot = {"id": "voice-bot@example.com", "type": "agent", "name": "Voice Bot"}
    first = {"id": "e1", "type": "message", "text": "Caller: hi", "author_id": "voice-bot@example.com"}
    queued = {**ASSIGNED_CHAT, "users": [ASSIGNED_CHAT["users"][0], bot],
              "thread": {"id": "QA37PVJ75B", "active": True, "user_ids": ["cust-1", "voice-bot@example.com"],
                         "events": [first], "queue": {"position": 1, "wait_time": 30}}}
    mock_http.post(f"{AGENT}/get_chat", payload=queued)
    mock_http.post(f"{AGENT}/get_chat", payload={**queued, "users": [*queued["users"], ASSIGNED_CHAT["users"][1]],
                                                 "thread": {**queued["thread"], "queue": None,
                                                            "user_ids": ["cust-1", "voice-bot@example.com", "sara@example.com"]}})
    connector = livechat()
    waiting = connector.handoff_state("PJ0MRSHTDG", await connector.get_chat("PJ0MRSHTDG"))
    assert waiting.status == HandoffStatus.queued and waiting.agent_id is None and waiting.queue_position == 1
    taken = connector.handoff_state("PJ0MRSHTDG", await connector.get_chat("PJ0MRSHTDG"))
    assert taken.status == HandoffStatus.assigned and taken.agent_id == "sara@example.com"


@pytest.mark.parametrize(
    "template",
    [
        "https://my.livechatinc.com/chats/{chat_id:d}",  # fails only once the chat exists
        "https://my.livechatinc.com/chats/{chat_id:>20000000}",  # a 20 MB answer
        "https://my.livechatinc.com/chats/{chat_id!r}",
        "https://my.livechatinc.com/chats/{chat_id[0]}",
        "https://my.livechatinc.com/chats/{chat_id.upper}",
        "https://my.livechatinc.com/chats/{}",
        "https://my.livechatinc.com/chats/{chat_id",
    ],
)
async def test_chat_url_template_takes_bare_placeholders_only(livechat, template):
    with pytest.raises(InvalidConfig) as caught:
        livechat({**CONFIG, "chat_url_template": template})
    assert "chat_url_template" in caught.value.message
    with pytest.raises(ValueError, match="livechat_chat_url_template"):
        Settings(_env_file=None, livechat_chat_url_template=template)  # LIVECHAT_CHAT_URL_TEMPLATE fails at start-up


# get_chat answers shaped as https://platform.text.com/docs/messaging/agent-chat-api#get-chat documents them
# (thread.user_ids, thread.events[].author_id, users[].type).
async def test_an_agent_who_wrote_the_first_event_is_still_the_assigned_agent(livechat, mock_http):
    first = {"id": "QA37PVJ75B_1", "type": "message", "text": "Hi, Sara here", "author_id": "sara@example.com",
             "visibility": "all", "created_at": "2025-01-01T10:00:00.000000Z"}
    chat = {**ASSIGNED_CHAT, "thread": {**ASSIGNED_CHAT["thread"], "events": [first]}}
    mock_http.post(f"{AGENT}/get_chat", payload=chat)
    connector = livechat()
    state = connector.handoff_state("PJ0MRSHTDG", await connector.get_chat("PJ0MRSHTDG"))
    assert (state.status, state.agent_id, state.agent_name) == (HandoffStatus.assigned, "sara@example.com", "Sara Ahmed")


async def test_a_chat_with_no_customer_reads_its_agent_too(livechat, mock_http):
    # A PAT's chat has no customer user: the agent is still found from users and user_ids.
    chat = {"id": "PJ0MRSHTDG", "thread": {"id": "QA37PVJ75B", "active": True, "user_ids": ["sara@example.com"],
                                          "events": [{"id": "e1", "type": "message", "text": "Caller: hi",
                                                      "author_id": "voice-bot@example.com"}]},
            "users": [ASSIGNED_CHAT["users"][1]]}
    mock_http.post(f"{AGENT}/get_chat", payload=chat)
    connector = livechat()
    state = connector.handoff_state("PJ0MRSHTDG", await connector.get_chat("PJ0MRSHTDG"))
    assert state.status == HandoffStatus.assigned and state.agent_id == "sara@example.com"
