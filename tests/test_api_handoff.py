"""The real service against the LiveChat emulator (and the CRM emulators for the fallback) over loopback."""

from __future__ import annotations

import base64
import copy
import json

import pytest

from crm import CRMFactory
from tests.conftest import Service, error_of

DESIGN_BODY = {
    "chat_type": "livechat",
    "context": {
        "call_id": "call_abc123",
        "customer_name": "Ahmed Al-Mansoori",
        "customer_email": "ahmed@example.ae",
        "transcript": [
            {"role": "user", "text": "I need help with my order"},
            {"role": "bot", "text": "I'd be happy to help. What's your order number?"},
            {"role": "user", "text": "ORD12345"},
        ],
        "reason": "customer_request",
        "urgency": "medium",
        "metadata": {"order_id": "ORD12345", "language": "en"},
    },
    "config": {"license_id": "your_license_id", "api_key": "your_api_key"},
}


# An OAuth agent token with its app's client id: the agent token grant makes the caller a customer.
OAUTH_CONFIG = {"license_id": "your_license_id", "api_key": "agent-oauth-token", "account_id": "",
                "client_id": "sandbox-client-id"}
# Every v3.6 method (and the accounts grant) a handoff may call, as LiveChat documents them:
# https://platform.text.com/docs/messaging/agent-chat-api, .../customer-chat-api, .../management/configuration-api,
# https://platform.text.com/docs/authorization/customer-authorization.
DOCUMENTED = {
    "/v3.6/agent/action/start_chat", "/v3.6/agent/action/send_event", "/v3.6/agent/action/tag_thread",
    "/v3.6/agent/action/transfer_chat", "/v3.6/agent/action/get_chat", "/v3.6/agent/action/deactivate_chat",
    "/v3.6/customer/action/list_group_statuses", "/v3.6/customer/action/update_customer",
    "/v3.6/configuration/action/list_groups", "/v2/customer/token",
}


def handoff(call_id: str, *, urgency: str = "medium", config: dict | None = None, **context) -> dict:
    """The design's request for another call id."""
    body = copy.deepcopy(DESIGN_BODY)
    body["context"].update(call_id=call_id, urgency=urgency, **{"customer_phone": "+971501234567", **context})
    if config is not None:
        body["config"] = config
    return body




def actions(svc: Service, name: str) -> list[dict]:
    """The LiveChat actions the emulator received with this method name."""
    return [q for q in svc.vendor_requests("livechat") if q["path"].endswith(f"/action/{name}")]


def agent_api(svc: Service, method: str, payload: dict, **headers: str):
    """Call the emulator's Agent API directly, as an agent's own app would."""
    auth = base64.b64encode(b"sara-account:sara-pat").decode()
    return svc.client.post(f"{svc.emulators['livechat']}/v3.6/agent/action/{method}", json=payload,
                           headers={"Authorization": f"Basic {auth}", **headers})


def status_of(svc: Service, handoff_id: str):
    """POST /handoff/status for an id."""
    return svc.post("/handoff/status", {"chat_type": "livechat", "handoff_id": handoff_id})


def sara_offline(svc: Service) -> None:
    """Take the seeded agent offline, so group 0 is offline."""
    svc.control("livechat", "set_agent", {"agent_id": "sara@example.com", "status": "offline"})


# --- a live agent ------------------------------------------------------------------------------------------


def test_design_example_is_assigned_to_sara_with_everything_the_bot_learned(svc: Service):
    r = svc.post("/handoff/create", DESIGN_BODY)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert (answer["status"], answer["agent_name"], answer["agent_id"]) == ("assigned", "Sara Ahmed", "sara@example.com")
    assert answer["estimated_wait_seconds"] == 0
    assert answer["chat_url"] == f"https://my.livechatinc.com/chats/{answer['handoff_id']}"
    assert "queue_position" not in answer and "fallback" not in answer

    # What the operator sees in LiveChat.
    [chat] = svc.control("livechat", "chats")
    thread = chat["thread"]
    texts = [e["text"] for e in thread["events"]]
    assert texts[:3] == ["Caller: I need help with my order", "Bot: I'd be happy to help. What's your order number?",
                         "Caller: ORD12345"]
    [note] = [e for e in thread["events"] if e["visibility"] == "agents"]
    assert "Reason: customer_request" in note["text"] and "order_id=ORD12345" in note["text"]
    assert set(thread["tags"]) == {"voice_handoff", "customer_request", "priority_medium"}
    # A PAT (the sandbox's default credential) cannot make a customer: the caller is in the summary instead.
    assert [u for u in chat["users"] if u["type"] == "customer"] == []
    assert "Customer: Ahmed Al-Mansoori" in note["text"] and "Call id: call_abc123" in note["text"]
    assert [u["id"] for u in chat["users"] if u["type"] == "agent"] == ["sara@example.com"]  # the bot left on transfer

    requests = svc.vendor_requests("livechat")
    assert {q["path"] for q in requests} <= DOCUMENTED
    sent = [q["path"].rsplit("/", 1)[1] for q in requests]
    assert sent[:2] == ["list_groups", "start_chat"] and sent[-2:] == ["transfer_chat", "get_chat"]
    assert "users" not in actions(svc, "start_chat")[0]["body"]["chat"]
    assert {q["authorization_scheme"] for q in requests} == {"Basic"}


def test_oauth_token_makes_the_caller_a_livechat_customer_with_documented_v36_calls(svc: Service):
    # The service's customer-token cache outlives an emulator reset: each test's caller has their own number.
    r = svc.post("/handoff/create", handoff("oauth-1", config=OAUTH_CONFIG, customer_phone="+971501230001"))
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["agent_id"]) == ("assigned", "sara@example.com")

    requests = svc.vendor_requests("livechat")
    assert {q["path"] for q in requests} <= DOCUMENTED and not actions(svc, "create_customer")
    [grant] = [q for q in requests if q["path"] == "/v2/customer/token"]
    assert grant["body"] == {"grant_type": "agent_token", "client_id": "sandbox-client-id", "response_type": "token"}
    assert grant["authorization_scheme"] == "Bearer" and requests[0] is not None and requests[0]["path"] == grant["path"]
    sent = [q["path"].rsplit("/", 1)[1] for q in requests]
    assert set(sent[1:3]) == {"list_group_statuses", "update_customer"} and sent[3] == "start_chat"
    assert actions(svc, "update_customer")[0]["query"] == {"organization_id": "your_license_id"}

    [chat] = svc.control("livechat", "chats")
    customer = next(u for u in chat["users"] if u["type"] == "customer")
    assert customer["name"] == "Ahmed Al-Mansoori" and customer["email"] == "ahmed@example.ae"
    assert customer["phone_number"] == "+971501230001"
    assert {"call_id": "oauth-1"} in customer["session_fields"] and {"reason": "customer_request"} in customer["session_fields"]
    assert actions(svc, "start_chat")[0]["body"]["chat"]["users"] == [{"id": customer["id"], "type": "customer"}]

    # The same caller again: the cached customer token, no second grant, the same LiveChat customer.
    again = svc.post("/handoff/create", handoff("oauth-2", config=OAUTH_CONFIG, customer_phone="+971501230001"))
    assert again.status_code == 201, again.text
    assert len([q for q in svc.vendor_requests("livechat") if q["path"] == "/v2/customer/token"]) == 1
    assert actions(svc, "start_chat")[1]["body"]["chat"]["users"] == [{"id": customer["id"], "type": "customer"}]


def test_a_revoked_customer_token_is_renewed_for_the_same_customer(svc: Service):
    phone = "+971501230002"
    assert svc.post("/handoff/create", handoff("revoke-1", config=OAUTH_CONFIG, customer_phone=phone)).status_code == 201
    svc.control("livechat", "revoke_customer_tokens")
    # The refused token costs only the profile update; the handoff goes on and the token is forgotten.
    second = svc.post("/handoff/create", handoff("revoke-2", config=OAUTH_CONFIG, customer_phone=phone))
    assert second.json()["status"] == "assigned"
    third = svc.post("/handoff/create", handoff("revoke-3", config=OAUTH_CONFIG, customer_phone=phone))
    assert third.json()["status"] == "queued"  # Sara has her two chats
    grants = [q for q in svc.vendor_requests("livechat") if q["path"] == "/v2/customer/token"]
    first_customer = actions(svc, "start_chat")[0]["body"]["chat"]["users"][0]["id"]
    assert len(grants) == 2 and grants[1]["body"]["entity_id"] == first_customer
    assert actions(svc, "start_chat")[2]["body"]["chat"]["users"][0]["id"] == first_customer


def test_bad_chat_url_template_is_400_before_anything_is_started(svc: Service):
    config = {**DESIGN_BODY["config"], "chat_url_template": "https://my.livechatinc.com/chats/{chat_id:d}"}
    r = svc.post("/handoff/create", handoff("template-1", config=config))
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_config"
    assert svc.vendor_requests("livechat") == [] and svc.control("livechat", "chats") == []


def test_status_reads_the_agent_who_wrote_the_first_event_as_assigned(svc: Service):
    # Sara opens a chat herself in her agent app: she wrote its first event and she is the one in it.
    auth = base64.b64encode(b"sara@example.com:sara-pat").decode()
    started = svc.client.post(f"{svc.emulators['livechat']}/v3.6/agent/action/start_chat", headers={
        "Authorization": f"Basic {auth}"}, json={"chat": {"thread": {"events": [
            {"type": "message", "text": "Calling you back about your order", "visibility": "all"}]}}, "continuous": True})
    r = status_of(svc, started.json()["chat_id"])
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["agent_id"], r.json()["agent_name"]) == ("assigned", "sara@example.com", "Sara Ahmed")


def test_full_agent_queues_with_position_and_wait_then_gets_assigned(svc: Service):
    for n in range(2):  # Sara takes two chats at a time
        assert svc.post("/handoff/create", handoff(f"fill-{n}")).json()["status"] == "assigned"
    third = svc.post("/handoff/create", handoff("queued-1")).json()
    fourth = svc.post("/handoff/create", handoff("queued-2")).json()
    assert (third["status"], third["queue_position"], third["estimated_wait_seconds"]) == ("queued", 1, 120)
    assert (fourth["status"], fourth["queue_position"], fourth["estimated_wait_seconds"]) == ("queued", 2, 240)
    assert third["agent_id"] is None and third["agent_name"] is None
    assert actions(svc, "transfer_chat")[-1]["body"]["ignore_agents_availability"] is True

    # Sara finishes a chat in her agent app: the oldest queued chat is hers.
    first = svc.post("/handoff/create", handoff("fill-0")).json()["handoff_id"]
    assert agent_api(svc, "deactivate_chat", {"id": first}).json() == {}
    now = status_of(svc, third["handoff_id"]).json()
    assert (now["status"], now["agent_id"], now["estimated_wait_seconds"]) == ("assigned", "sara@example.com", 0)
    moved = status_of(svc, fourth["handoff_id"]).json()
    assert (moved["status"], moved["queue_position"]) == ("queued", 1)


def test_status_reports_closed_when_the_chat_ends(svc: Service):
    chat_id = svc.post("/handoff/create", handoff("to-close")).json()["handoff_id"]
    agent_api(svc, "deactivate_chat", {"id": chat_id})
    r = status_of(svc, chat_id)
    assert r.status_code == 200 and r.json()["status"] == "closed"


def test_a_configured_agent_gets_the_chat(svc: Service):
    svc.control("livechat", "set_agent", {"agent_id": "omar@example.com", "name": "Omar Said", "status": "online"})
    r = svc.post("/handoff/create", handoff("to-omar", config={"agent_id": "omar@example.com"}))
    assert (r.json()["status"], r.json()["agent_name"]) == ("assigned", "Omar Said")


def test_hundreds_of_turns_arrive_in_order_and_under_16_kb(svc: Service):
    turns = [{"role": "user" if i % 2 else "bot", "text": f"turn {i}"} for i in range(400)]
    turns[200] = {"role": "user", "text": "long " * 8000}  # 40 KB: LiveChat takes 16 KB a message
    r = svc.post("/handoff/create", handoff("long-call", transcript=turns))
    assert r.status_code == 201 and r.json()["status"] == "assigned", r.text
    events = actions(svc, "start_chat")[0]["body"]["chat"]["thread"]["events"]
    assert all(len(e["text"].encode()) <= 16 * 1024 for e in events)
    assert len(events) == 399 + 3
    numbered = [int(e["text"].rsplit(" ", 1)[1]) for e in events if "turn " in e["text"]]
    assert numbered == [i for i in range(400) if i != 200]
    assert [e["text"][:14] for e in events[200:203]] == ["Caller (1/3): ", "Caller (2/3): ", "Caller (3/3): "]


def test_rate_limited_start_chat_is_retried_and_opens_one_chat(svc: Service):
    svc.fault("livechat", "rate_limit", path="start_chat")
    r = svc.post("/handoff/create", handoff("rate-limited"))
    assert r.json()["status"] == "assigned"
    assert len(actions(svc, "start_chat")) == 2 and len(svc.control("livechat", "chats")) == 1


def test_dropped_start_chat_is_not_resent_and_the_call_becomes_a_ticket(svc: Service):
    svc.fault("livechat", "reset", path="start_chat")
    r = svc.post("/handoff/create", handoff("dropped"))
    assert r.status_code == 201 and r.json()["status"] == "fallback_ticket"
    assert len(actions(svc, "start_chat")) == 1


# --- idempotency --------------------------------------------------------------------------------------


def test_idempotency_key_replays_the_first_answer_and_rejects_another_body(svc: Service):
    body = handoff("idem-1")
    first = svc.post("/handoff/create", body, **{"Idempotency-Key": "handoff-idem-1"})
    second = svc.post("/handoff/create", body, **{"Idempotency-Key": "handoff-idem-1"})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and second.headers["Idempotent-Replayed"] == "true"
    assert first.headers["Idempotent-Replayed"] == "false"
    assert len(actions(svc, "start_chat")) == 1
    other = svc.post("/handoff/create", handoff("idem-1", urgency="high"), **{"Idempotency-Key": "handoff-idem-1"})
    assert other.status_code == 409 and error_of(other)["code"] == "idempotency_conflict"


def test_same_call_id_finds_its_chat(svc: Service):
    first = svc.post("/handoff/create", handoff("retried-call")).json()
    retry = svc.post("/handoff/create", handoff("retried-call", reason="agent_requested"))
    assert retry.json()["handoff_id"] == first["handoff_id"] and retry.headers["Idempotent-Replayed"] == "true"
    assert len(actions(svc, "start_chat")) == 1


# --- the fallback ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("crm_type", CRMFactory.supported())
def test_offline_group_becomes_a_ticket_in_the_fallback_crm(svc: Service, crm_type: str):
    sara_offline(svc)
    r = svc.post("/handoff/create", handoff(f"offline-{crm_type}", urgency="high", config={"fallback_crm": crm_type}))
    assert r.status_code == 201, r.text
    answer = r.json()
    fallback = answer["fallback"]
    assert answer["status"] == "fallback_ticket" and (fallback["crm_type"], fallback["reason"]) == (crm_type, "group_offline")
    assert answer["handoff_id"] == f"ticket:{crm_type}:{fallback['ticket_id']}"
    assert answer["chat_url"] is None and answer["agent_id"] is None
    assert actions(svc, "start_chat") == []  # no chat was opened for nobody

    ticket = svc.post("/crm/ticket", {"crm_type": crm_type, "ticket_id": fallback["ticket_id"]})
    assert ticket.status_code == 200, ticket.text
    assert ticket.json()["priority"] == "high"
    assert "ORD12345" in json.dumps(ticket.json()) and "customer_request" in json.dumps(ticket.json())
    assert status_of(svc, answer["handoff_id"]).json()["status"] == "fallback_ticket"


def test_fallback_ticket_carries_the_whole_call(svc: Service):
    sara_offline(svc)
    r = svc.post("/handoff/create", handoff("ticket-content", urgency="low"))
    assert r.json()["fallback"]["crm_type"] == "zendesk"  # HANDOFF_FALLBACK_CRM's default
    [post] = [q for q in svc.vendor_requests("zendesk") if q["method"] == "POST"]
    ticket = post["body"]["ticket"]
    text = ticket["comment"]["body"]
    for fact in ("Caller: I need help with my order", "Bot: I'd be happy to help", "Caller: ORD12345",
                 "Reason: customer_request", "Callback number: +971501234567", "group_offline"):
        assert fact in text
    assert ticket["priority"] == "low" and "voice_handoff" in ticket["tags"]
    assert post["idempotency_key"].startswith("handoff-")


def test_livechat_failing_past_the_retry_budget_becomes_a_ticket(svc: Service):
    svc.fault("livechat", "error", status=503, count=-1)
    r = svc.post("/handoff/create", handoff("lc-down"))
    assert r.status_code == 201 and r.json()["fallback"]["reason"] == "service_unavailable"
    assert svc.control("livechat", "chats") == []


def test_livechat_too_slow_still_leaves_time_for_the_ticket(svc: Service):
    svc.fault("livechat", "latency", seconds=5, count=-1)
    r = svc.post("/handoff/create", handoff("lc-slow"))
    assert r.status_code == 201 and r.json()["fallback"]["reason"] == "crm_timeout"


def test_failed_transfer_closes_the_chat_and_says_so(svc: Service):
    svc.fault("livechat", "error", status=500, path="transfer_chat", count=-1)
    r = svc.post("/handoff/create", handoff("transfer-fails"))
    assert r.status_code == 201, r.text
    fallback = r.json()["fallback"]
    assert (fallback["reason"], fallback["livechat_chat_closed"]) == ("internal", True)
    [chat] = svc.control("livechat", "chats")
    assert chat["id"] == fallback["livechat_chat_id"] and chat["thread"]["active"] is False


def test_invalid_livechat_credentials_still_reach_a_person(svc: Service):
    r = svc.post("/handoff/create", handoff("bad-creds", config={"api_key": "invalid"}))
    assert r.status_code == 201 and r.json()["fallback"]["reason"] == "authentication"


def test_fallback_failing_too_is_handoff_failed_and_nothing_was_created(svc: Service):
    sara_offline(svc)
    svc.fault("zendesk", "rate_limit", retry_after=30, count=-1)  # refused before any work: surely no ticket
    r = svc.post("/handoff/create", handoff("all-down"))
    err = error_of(r)
    assert r.status_code == 502 and err["code"] == "handoff_failed" and err["retryable"] is False
    assert "group_offline" in err["message"] and "zendesk" in err["message"] and "nothing was created" in err["message"]
    assert err["details"]["fallback"]["created"] is False
    assert svc.control("livechat", "chats") == []
    # Nothing was remembered either: the same call may try again once things recover.
    svc.reset()
    assert svc.post("/handoff/create", handoff("all-down")).json()["status"] == "assigned"


def test_fallback_cut_off_says_the_ticket_may_exist(svc: Service):
    sara_offline(svc)
    svc.fault("zendesk", "error", status=503, count=-1)  # a 503 after sending: the ticket may have been made
    err = error_of(svc.post("/handoff/create", handoff("maybe-ticket")))
    assert err["code"] == "handoff_failed" and err["details"]["fallback"]["created"] == "unknown"
    assert "may or may not have been created" in err["message"] and "nothing was created" not in err["message"]


def test_fallback_failing_after_a_chat_was_started_names_the_chat(svc: Service):
    svc.fault("livechat", "error", status=500, path="transfer_chat", count=-1)
    svc.fault("zendesk", "error", status=503, count=-1)
    r = svc.post("/handoff/create", handoff("half-done"))
    err = error_of(r)
    [chat] = svc.control("livechat", "chats")
    assert r.status_code == 502 and chat["id"] in err["message"] and "closed again" in err["message"]
    assert "nothing was created" not in err["message"]


def test_unknown_fallback_crm_is_400(svc: Service):
    r = svc.post("/handoff/create", handoff("bad-fallback", config={"fallback_crm": "pipedrive"}))
    assert r.status_code == 400 and error_of(r)["code"] == "unsupported_crm"
    assert svc.vendor_requests("livechat") == []


# --- request errors --------------------------------------------------------------------------------------


def test_unknown_chat_type_lists_livechat(svc: Service):
    r = svc.post("/handoff/create", {**handoff("x"), "chat_type": "genesys"})
    err = error_of(r)
    assert r.status_code == 400 and err["code"] == "unsupported_crm" and "livechat" in err["message"]


def test_unknown_urgency_is_422(svc: Service):
    r = svc.post("/handoff/create", handoff("x", urgency="asap"))
    err = error_of(r)
    assert r.status_code == 422 and err["code"] == "validation_error" and "urgency" in err["message"]


def test_missing_context_is_422(svc: Service):
    r = svc.post("/handoff/create", {"chat_type": "livechat", "context": {"call_id": "x"}})
    assert r.status_code == 422 and error_of(r)["code"] == "validation_error"


def test_status_of_an_unknown_chat_is_404(svc: Service):
    r = status_of(svc, "NOSUCHCHAT")
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"


def test_status_with_a_malformed_id_is_400(svc: Service):
    r = status_of(svc, "../../etc")
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_request"
    assert svc.vendor_requests("livechat") == []


def test_wrong_region_is_invalid_config_naming_the_right_one(svc: Service):
    r = svc.post("/handoff/status", {"chat_type": "livechat", "handoff_id": "C000000001",
                                     "config": {"api_key": "fra:token", "region": "dal"}})
    err = error_of(r)
    assert r.status_code == 400 and err["code"] == "invalid_config" and "'fra'" in err["message"]
    assert "fra:token" not in r.text


def test_openapi_has_handoff_examples(svc: Service):
    spec = svc.client.get(f"{svc.url}/openapi.json").json()
    for path in ("/handoff/create", "/handoff/status"):
        ref = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert "example" in spec["components"]["schemas"][ref.split("/")[-1]], path


# --- the emulator as LiveChat's own clients see it ---------------------------------------------------------


def customer_token(svc: Service, **body) -> dict:
    """The emulator's agent token grant, as LiveChat's accounts service answers it."""
    grant = {"grant_type": "agent_token", "client_id": "sandbox-client-id", "response_type": "token", **body}
    r = svc.client.post(f"{svc.emulators['livechat']}/v2/customer/token", json=grant,
                        headers={"Authorization": "Bearer agent-oauth-token"})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_bot_can_join_as_the_customer(svc: Service):
    base = f"{svc.emulators['livechat']}/v3.6/customer/action"
    headers = {"Authorization": f"Bearer {customer_token(svc)['access_token']}"}
    status = svc.client.post(f"{base}/list_group_statuses?organization_id=org", json={"all": True}, headers=headers)
    assert status.json()["groups_status"] == {"0": "online"}  # LiveChat's field name
    some = svc.client.post(
        f"{base}/list_group_statuses?organization_id=org", json={"group_ids": [0, 42]}, headers=headers
    )
    assert some.json()["groups_status"] == {"0": "online"}  # an unknown group is left out, not an error
    start = svc.client.post(f"{base}/start_chat?organization_id=org", headers=headers, json={
        "chat": {"thread": {"events": [{"type": "message", "text": "hello", "visibility": "all"}]}}})
    chat_id = start.json()["chat_id"]
    agent_api(svc, "send_event", {"chat_id": chat_id, "event": {"type": "message", "text": "note", "visibility": "agents"}})
    seen = svc.client.post(f"{base}/get_chat?organization_id=org", json={"chat_id": chat_id}, headers=headers).json()
    assert [e["text"] for e in seen["thread"]["events"]] == ["hello"]  # agents-only events stay hidden
    assert any(u["type"] == "agent" and u["name"] == "Sara Ahmed" for u in seen["users"])
    assert all("visibility" not in e for e in seen["thread"]["events"])  # the customer API has no visibility
    assert all("email" not in u for u in seen["users"] if u["type"] == "agent")
    listed = svc.client.post(f"{base}/list_chats?organization_id=org", json={}, headers=headers).json()
    assert [c["id"] for c in listed["chats_summary"]] == [chat_id] and listed["total_chats"] == 1
    [summary] = listed["chats_summary"]
    assert summary["last_thread_id"] == start.json()["thread_id"] and summary["active"] is True
    assert summary["last_event_per_type"]["message"]["event"]["text"] == "hello"
    missing = svc.client.post(f"{base}/get_chat", json={"chat_id": chat_id}, headers=headers)
    assert missing.status_code == 400 and missing.json()["error"]["type"] == "validation"


@pytest.mark.parametrize(
    ("headers", "status", "kind"),
    [
        ({"Authorization": "Bearer invalid"}, 401, "authentication"),
        ({}, 401, "authentication"),
        ({"Authorization": "Bearer fra:abc"}, 421, "misdirected_request"),
    ],
)
def test_emulator_answers_in_livechats_error_envelope(svc: Service, headers: dict, status: int, kind: str):
    r = svc.client.post(f"{svc.emulators['livechat']}/v3.6/agent/action/list_chats", json={}, headers=headers)
    assert r.status_code == status and r.json()["error"]["type"] == kind


def test_emulator_validates_events_and_knows_inactive_chats(svc: Service):
    too_long = agent_api(svc, "start_chat", {"chat": {"thread": {"events": [{"type": "message", "text": "x" * 17000}]}}})
    assert too_long.status_code == 400 and too_long.json()["error"]["type"] == "validation"
    chat_id = agent_api(svc, "start_chat", {"chat": {}, "continuous": True}).json()["chat_id"]
    agent_api(svc, "deactivate_chat", {"id": chat_id})
    again = agent_api(svc, "send_event", {"chat_id": chat_id, "event": {"type": "message", "text": "hi"}})
    assert again.json()["error"]["type"] == "chat_inactive"
    assert agent_api(svc, "list_agents_for_transfer", {"chat_id": chat_id}).json() == [
        {"agent_id": "sara@example.com", "total_active_chats": 0}
    ]


def test_emulator_grant_follows_the_agent_token_rules(svc: Service):
    url = f"{svc.emulators['livechat']}/v2/customer/token"
    grant = {"grant_type": "agent_token", "client_id": "sandbox-client-id", "response_type": "token"}
    token = customer_token(svc)
    assert set(token) == {"access_token", "client_id", "entity_id", "expires_in", "token_type", "organization_id"}
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    assert customer_token(svc, entity_id=token["entity_id"])["entity_id"] == token["entity_id"]
    pat = base64.b64encode(b"voice-bot@example.com:sandbox-pat").decode()
    assert svc.client.post(url, json=grant, headers={"Authorization": f"Basic {pat}"}).status_code == 401
    bearer = {"Authorization": "Bearer agent-oauth-token"}
    for wrong in ({"client_id": "someone-else"}, {"grant_type": "cookie"}, {"response_type": "code"},
                  {"entity_id": "no-such-customer"}):
        r = svc.client.post(url, json={**grant, **wrong}, headers=bearer)
        assert r.status_code == 400 and set(r.json()) == {"error", "error_description"}
    # The Customer Chat API takes customer tokens only: not a PAT, not an agent's token.
    customer_api = f"{svc.emulators['livechat']}/v3.6/customer/action/get_customer?organization_id=org"
    for headers in ({"Authorization": f"Basic {pat}"}, bearer):
        assert svc.client.post(customer_api, json={}, headers=headers).json()["error"]["type"] == "authentication"
    mine = svc.client.post(customer_api, json={}, headers={"Authorization": f"Bearer {token['access_token']}"})
    assert mine.json()["id"] == token["entity_id"]


def test_emulator_has_no_create_customer_in_v36_but_v35_keeps_it(svc: Service):
    body = {"name": "Ahmed", "session_fields": [{"call_id": "x"}]}
    gone = agent_api(svc, "create_customer", body)
    assert gone.status_code == 404 and gone.json()["error"]["type"] == "not_found"
    legacy = svc.client.post(f"{svc.emulators['livechat']}/v3.5/agent/action/create_customer", json=body,
                             headers={"Authorization": "Basic " + base64.b64encode(b"a:b").decode()})
    assert legacy.status_code == 200 and legacy.json()["customer_id"]
