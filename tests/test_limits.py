"""Every input limit is a 413 or 422 (or 408 for a slow client), never a 500 or a connection held for ever."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator

import pytest

from connectors.retry_policy import RETRY_AFTER_CAP_SECONDS, parse_retry_after
from connectors.zendesk import ZendeskConnector
from errors import RateLimited
from limits import MAX_JSON_DEPTH, check_json
from http_errors import error_response
from tests.conftest import Service, error_of, make_settings, start_service

CREATE = {"crm_type": "zendesk", "subject": "s", "description": "d"}
HANDOFF = {
    "chat_type": "livechat",
    "context": {"call_id": "c1", "customer_name": "A", "reason": "customer_request"},
}


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"x": value}
    return value


def raw_post(svc: Service, body: str) -> tuple[int, dict]:
    r = svc.client.post(f"{svc.url}/crm/ticket/create", content=body, headers={"Content-Type": "application/json"})
    return r.status_code, error_of(r)


@pytest.mark.parametrize("metadata", [
    {"n": 2**64},
    {"n": -(2**63) - 1},
    {"n": 10**400},  # more digits than Python's int() takes by default
    nested(MAX_JSON_DEPTH),
    nested(256),
    {"s": "x" * 70_000},
])  # fmt: skip
def test_metadata_outside_the_json_limits_is_422(svc: Service, metadata):
    status, err = raw_post(svc, json.dumps({**CREATE, "metadata": metadata}))
    assert status == 422 and err["code"] == "validation_error"
    assert svc.vendor_requests("zendesk") == []


@pytest.mark.parametrize("text", ['{"n": NaN}', '{"n": Infinity}', '{"n": -Infinity}', '{"n": 1e999}'])
def test_non_finite_numbers_are_422(svc: Service, text):
    status, err = raw_post(svc, json.dumps(CREATE)[:-1] + ', "metadata": ' + text + "}")
    assert status == 422 and err["code"] == "validation_error"


def test_nesting_that_would_overflow_the_parser_is_422(svc: Service):
    status, err = raw_post(svc, '{"metadata": ' + "[" * 200_000 + "]" * 200_000 + "}")
    assert status == 422 and "nests deeper" in err["message"]


def test_values_just_inside_the_limits_are_served(svc: Service):
    r = svc.post("/crm/ticket/create", {**CREATE, "metadata": {"n": 2**63 - 1, "deep": nested(MAX_JSON_DEPTH - 3)}})
    assert r.status_code == 201, r.text


def test_malformed_json_is_still_the_400_it_was(svc: Service):
    status, err = raw_post(svc, '{"crm_type": ')
    assert status == 400 and err["code"] == "invalid_request"


def test_check_json_leaves_non_json_to_fastapi():
    check_json(b"\xff\xfe not json")  # FastAPI answers these with its own 400


@pytest.mark.parametrize(("path", "body"), [
    ("/handoff/create", {**HANDOFF, "config": {"group_id": 2**64}}),
    ("/handoff/create", {**HANDOFF, "context": {**HANDOFF["context"], "transcript": [{"text": "hi"}] * 501}}),
    ("/handoff/create", {**HANDOFF, "context": {**HANDOFF["context"], "metadata": {str(i): i for i in range(101)}}}),
    ("/handoff/create", {**HANDOFF, "context": {**HANDOFF["context"], "urgency": "u" * 100}}),
    ("/crm/ticket/create", {**CREATE, "tags": ["t" * 101]}),
    ("/crm/ticket/create", {**CREATE, "metadata": {str(i): i for i in range(101)}}),
    ("/crm/ticket/update", {"crm_type": "zendesk", "ticket_id": "12345", "tags": [""]}),
    ("/crm/customer", {"crm_type": "zendesk", "customer_id": "1", "config": {str(i): i for i in range(51)}}),
])  # fmt: skip
def test_model_limits_are_422(svc: Service, path, body):
    r = svc.post(path, body)
    assert r.status_code == 422 and error_of(r)["code"] == "validation_error"
    assert svc.vendor_requests("livechat") == [] and svc.vendor_requests("zendesk") == []


@pytest.mark.parametrize("crm_type", ["zendesk", "hubspot", "freshdesk"])
@pytest.mark.parametrize("ticket_id", ["١٢٣٤٥", "１２３４５", "12\u00a0345", "१२३", "12345\x00"])
def test_ids_in_unicode_digits_never_reach_the_vendor(svc: Service, crm_type, ticket_id):
    r = svc.post("/crm/ticket", {"crm_type": crm_type, "ticket_id": ticket_id})
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_request"
    assert svc.vendor_requests(crm_type) == []


def test_an_oversized_body_is_413(svc: Service):
    status, err = raw_post(svc, json.dumps({**CREATE, "description": "x" * (2 * 1024 * 1024)}))
    assert status == 413


# --- Retry-After ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("inf", RETRY_AFTER_CAP_SECONDS), ("1e999", RETRY_AFTER_CAP_SECONDS), ("-inf", 0.0), ("nan", None),
    ("1e9", RETRY_AFTER_CAP_SECONDS), ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("2", 2.0), ("", None),
])  # fmt: skip
def test_retry_after_inf_nan_and_huge_are_capped_or_unknown(value, expected):
    assert parse_retry_after(value) == expected


@pytest.mark.parametrize("value", ["inf", "1e999", "nan"])
async def test_a_vendor_retry_after_of_inf_is_a_429_not_a_500(make_context, mock_http, value):
    crm = ZendeskConnector.from_request({"subdomain": "acme", "oauth_token": "t-123456789"}, make_context())
    mock_http.get(re.compile(r"https://acme\.zendesk\.com/.*"), status=429, headers={"Retry-After": value}, repeat=True)
    with pytest.raises(RateLimited) as caught:
        await crm.get_ticket("1")
    response = error_response(caught.value)
    assert response.status_code == 429
    assert value == "nan" or response.headers["Retry-After"] == str(int(RETRY_AFTER_CAP_SECONDS))


# --- slow clients: raw sockets on loopback, waiting on the socket, never sleeping ---------------------------

BOUND = 0.5  # the header and body read timeouts of the service below
SLACK = 1.5  # scheduling slack on a loaded CI machine


@pytest.fixture(scope="module")
def slow_bounds() -> Iterator[tuple[str, int]]:
    settings = make_settings(header_read_timeout_seconds=BOUND, body_read_timeout_seconds=BOUND, graceful_shutdown_seconds=1)
    server, thread, url = start_service(settings)
    host, port = url.removeprefix("http://").split(":")
    yield host, int(port)
    server.should_exit = True
    thread.join(timeout=10)


def trickle(address: tuple[str, int], head: bytes, then: bytes) -> tuple[float, bytes]:
    """Send `head`, then `then` one byte at a time (paced by waiting on the socket); return when it closes."""
    started = time.monotonic()
    received = b""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(head)
        for byte in then:
            sock.settimeout(0.05)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    break
                continue
            except OSError:
                break
            received += chunk
            if not chunk:
                break
        sock.settimeout(5)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
    return time.monotonic() - started, received


def test_an_idle_connection_is_closed_within_the_header_bound(slow_bounds):
    elapsed, received = trickle(slow_bounds, b"", b"")
    assert elapsed < BOUND + SLACK and b"408" in received.split(b"\r\n", 1)[0]


def test_headers_sent_a_byte_at_a_time_are_cut_off(slow_bounds):
    head = b"POST /crm/ticket HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 500 + b"\r\n\r\n"
    elapsed, received = trickle(slow_bounds, b"", head)
    assert elapsed < BOUND + SLACK
    assert received.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in received


def test_a_body_sent_a_byte_at_a_time_is_a_408_and_closed(slow_bounds):
    body = json.dumps({"crm_type": "zendesk", "ticket_id": "12345"}).encode() + b" " * 500
    head = b"POST /crm/ticket HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    elapsed, received = trickle(slow_bounds, head, body)
    assert elapsed < BOUND + SLACK
    assert received.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in received
    assert b"connection: close" in received.lower()


def test_a_half_sent_body_does_not_hold_up_shutdown():
    settings = make_settings(header_read_timeout_seconds=5, body_read_timeout_seconds=BOUND, graceful_shutdown_seconds=1)
    server, thread, url = start_service(settings)
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(b"POST /crm/ticket HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    started = time.monotonic()
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
    assert not thread.is_alive() and time.monotonic() - started < BOUND + SLACK + 1
