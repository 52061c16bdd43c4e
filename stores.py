"""The shared stores, chosen once in the lifespan: caller cache, idempotency and OAuth tokens over one `State`.

With REDIS_URL every worker and replica shares them (Redis is checked at start-up: fail fast); without it
each process has its own embedded stores, bounded in bytes.
"""

from __future__ import annotations

import logging
from typing import Any

from cache import CallerCache
from idempotency import StateIdempotencyStore
from observability import log_event
from settings import Settings
from state import MemoryState, open_state, redacted
from tokens import TOKEN_STATE, TokenStore

TOKEN_MEMORY_BYTES = 4 * 1024 * 1024


async def open_shared_state(app_state: Any, settings: Settings) -> None:
    """Set app.state.idempotency, app.state.cache and the token store in app.state.shared."""
    wait = settings.request_deadline_seconds + 1.0  # a twin or waiter never outlives the request it serves
    if settings.redis_url:
        url = settings.redis_url.get_secret_value()
        shared = await open_state(url, 0)
        app_state.states = [shared]
        idempotency_state = cache_state = token_state = shared
        log_event("shared_state", backend="redis", url=redacted(url))
    else:
        app_state.states = []
        idempotency_state = MemoryState(settings.idempotency_max_bytes, settings.idempotency_max_entries)
        cache_state, token_state = MemoryState(settings.caller_cache_max_bytes), MemoryState(TOKEN_MEMORY_BYTES)
        if getattr(settings, "workers", 1) > 1:
            log_event(
                "shared_state_per_worker",
                logging.WARNING,
                detail="WORKERS>1 without REDIS_URL: idempotency keys, the caller cache and tokens hold per worker only",
            )
    app_state.idempotency = StateIdempotencyStore(
        idempotency_state,
        settings.idempotency_ttl_seconds,
        wait_seconds=wait,
        claim_ttl=settings.request_deadline_seconds * 3,
        max_answer_bytes=settings.idempotency_max_answer_bytes,
    )
    app_state.cache = (
        CallerCache(
            cache_state,
            fresh=settings.caller_cache_ttl_seconds,
            stale=settings.caller_cache_stale_seconds,
            negative=settings.caller_cache_negative_ttl_seconds,
            wait=wait,
        )
        if settings.caller_cache_enabled
        else None
    )
    app_state.shared[TOKEN_STATE] = TokenStore(token_state, wait_seconds=wait)


async def close_shared_state(app_state: Any) -> None:
    """Stop background refreshes and close the store's connections."""
    if getattr(app_state, "cache", None) is not None:
        await app_state.cache.close()
    for state in getattr(app_state, "states", []):
        await state.close()
