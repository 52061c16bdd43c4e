"""Salesforce's token cache over the shared token store: one renewal per round, its failure shared (issue 9)."""

from __future__ import annotations

import asyncio

from aioresponses import CallbackResult

from connectors.salesforce import SalesforceConnector
from errors import CRMError
from state import RedisState
from tests.conftest import sent
from tests.test_salesforce_unit import CASE, CASE_ID, CASE_URL, CLIENT, TOKEN_URL, token_answer
from tokens import TOKEN_STATE, TokenStore


async def test_forty_callers_with_the_token_endpoint_down_share_one_failed_renewal(make_context, mock_http):
    context = make_context()
    mock_http.post(TOKEN_URL, status=503, body="down", repeat=True)
    connectors = [SalesforceConnector.from_request(CLIENT, context) for _ in range(40)]
    results = await asyncio.gather(*(c.get_ticket(CASE_ID) for c in connectors), return_exceptions=True)
    assert all(isinstance(r, CRMError) and r.retryable for r in results)
    # One renewal, with its own retries (RETRY_MAX_ATTEMPTS); before, each waiter retried in turn: 65 requests.
    assert len(sent(mock_http, "POST", TOKEN_URL)) == context.settings.retry_max_attempts


async def test_a_token_fetched_by_one_replica_is_used_by_another(make_context, mock_http, redis_url):
    replicas = [RedisState(redis_url), RedisState(redis_url)]
    mock_http.post(TOKEN_URL, callback=lambda url, **kw: CallbackResult(payload=token_answer("tok-shared")), repeat=True)
    mock_http.get(CASE_URL, payload=CASE, repeat=True)
    for state in replicas:
        context = make_context()
        context.shared[TOKEN_STATE] = TokenStore(state, wait_seconds=5)
        await SalesforceConnector.from_request(CLIENT, context).get_ticket(CASE_ID)
    assert len(sent(mock_http, "POST", TOKEN_URL)) == 1
    assert {c.kwargs["headers"]["Authorization"] for c in sent(mock_http, "GET", "https")} == {"Bearer tok-shared"}
    for state in replicas:
        await state.close()
