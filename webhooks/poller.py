"""Salesforce without Platform Events: Cases changed since the last poll, read by SOQL, published as events.

Every SALESFORCE_POLL_SECONDS one replica (the holder of a lock in shared state) runs
`SELECT ... FROM Case WHERE LastModifiedDate >= :since ... ORDER BY LastModifiedDate, Id LIMIT 200`, page after
page (keyset on LastModifiedDate and Id, at most MAX_PAGES a round), and publishes ticket.created (CreatedDate is
LastModifiedDate) or ticket.updated. The cursor lives in shared state, so a new leader goes on where the last one
stopped. Delay: up to one interval plus the query's time.
SOQL: https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select.htm
Query resource: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from connectors.vendor_config import StoredConfig
from connectors.salesforce import CASE_FIELDS, SalesforceConnector, soql_quote
from deps import app_context
from errors import CRMError
from events import EventType
from observability import log_event
from state import State

from .inbound import Inbox, Source, publish_notices, ticket_fields
from .vendors import Notice

PAGE_SIZE = 200
MAX_PAGES = 10  # a round reads at most 2,000 Cases; the rest come in the next round
LOCK_KEY = "connectors:webhooks:salesforce:leader"
CURSOR_TTL_SECONDS = 30 * 86_400.0


def soql_datetime(value: str) -> str:
    """A Salesforce timestamp (2025-11-18T11:45:00.000+0000) as a SOQL dateTime literal (UTC, Z)."""
    parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z") if "." in value else datetime.fromisoformat(value)
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def changed_cases_query(since: str, after_id: str | None, inclusive: bool = False) -> str:
    """One page of Cases changed after the cursor (since, and the last Id read at exactly `since`)."""
    stamp = soql_datetime(since)
    where = f"LastModifiedDate {'>=' if inclusive else '>'} {stamp}"
    if after_id:
        where = f"({where} OR (LastModifiedDate = {stamp} AND Id > {soql_quote(after_id)}))"
    return (f"SELECT {', '.join(CASE_FIELDS)} FROM Case WHERE {where} "
            f"ORDER BY LastModifiedDate, Id LIMIT {PAGE_SIZE}")


class CasePoller:
    """The background task: leader lock, cursor, pages, publish."""

    def __init__(self, app_state: Any, state: State, inbox: Inbox, interval: float, connections: list[str]) -> None:
        self.app_state = app_state
        self.state = state
        self.inbox = inbox
        self.interval = interval
        self.connections = connections
        self.me = uuid.uuid4().hex.encode()
        self.task: asyncio.Task[None] | None = None
        self.rounds = 0

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="salesforce-case-poller")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.state.release(LOCK_KEY, self.me)

    async def leader(self) -> bool:
        """Hold the lock for three intervals; the holder renews it each round (another replica takes over after)."""
        ttl = self.interval * 3
        if await self.state.claim(LOCK_KEY, self.me, ttl):
            return True
        if await self.state.get(LOCK_KEY) == self.me:
            await self.state.set(LOCK_KEY, self.me, ttl)  # a lapse between get and set costs a duplicate, deduped
            return True
        return False

    async def _run(self) -> None:
        while True:
            try:
                if await self.leader():
                    for connection_id in self.connections:
                        await self.poll(connection_id)
            except CRMError as exc:  # the next round tries again; the cursor has not moved
                log_event("salesforce_poll_failed", logging.WARNING, code=exc.code, detail=exc.message)
            except Exception:  # a bug must not end polling for the life of the process: logged with its traceback
                logging.getLogger("connectors").exception("salesforce_poll_failed")
            self.rounds += 1
            await asyncio.sleep(self.interval)

    async def _source(self, connection_id: str) -> tuple[SalesforceConnector, Source]:
        """The connector for a connection (the environment's for "default") and the Source its events name."""
        ctx = app_context(self.app_state)
        config = None
        if connection_id != "default":
            _, found = await self.app_state.connections.resolve(connection_id, "crm")
            config = StoredConfig(found)
        connector = SalesforceConnector.from_request(config, ctx)
        assert isinstance(connector, SalesforceConnector)
        return connector, Source("salesforce", connection_id, config, ctx, self.app_state.events.bus.publish)

    async def poll(self, connection_id: str) -> int:
        """One round for one connection: publish what changed since the cursor, move the cursor; returns published.

        LastModifiedDate has whole seconds, so a round starts at the cursor's second inclusive: Cases read last
        round at that second come again and are dropped as duplicates (their vendor event id is the same).
        """
        cursor_key = f"connectors:webhooks:salesforce:cursor:{connection_id}"
        raw = await self.state.get(cursor_key)
        if raw is None:  # first round: from now on (the history is not replayed)
            start = datetime.now(timezone.utc) - timedelta(seconds=self.interval + 1)
            since = start.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
            await self.state.set(cursor_key, since.encode(), CURSOR_TTL_SECONDS)
        else:
            since = raw.decode()
        crm, source = await self._source(connection_id)
        published, after_id, inclusive = 0, None, True
        for _ in range(MAX_PAGES):
            records = await crm._query(changed_cases_query(since, after_id, inclusive), "poll_cases")  # noqa: SLF001
            notices = [await self._notice(crm, connection_id, case) for case in records]
            published += await publish_notices(self.inbox, source, notices)
            if records:
                since, after_id, inclusive = records[-1]["LastModifiedDate"], str(records[-1]["Id"]), False
                await self.state.set(cursor_key, since.encode(), CURSOR_TTL_SECONDS)
            if len(records) < PAGE_SIZE:
                break
        return published

    async def _notice(self, crm: SalesforceConnector, connection_id: str, case: dict[str, Any]) -> Notice:
        """ticket.created for a Case not seen before and never modified since; its id names what it now holds."""
        ticket = crm._ticket(case)  # noqa: SLF001  (the connector's own mapping, not a second one)
        seen = await self.inbox.snapshot(connection_id, "salesforce", ticket.id) is not None
        created = not seen and case.get("CreatedDate") == case.get("LastModifiedDate")
        # Two saves within one second share a LastModifiedDate: what the Case holds tells them apart.
        state = hashlib.sha256(orjson.dumps(ticket_fields(ticket), option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
        return Notice(EventType.ticket_created if created else EventType.ticket_updated, ticket.id,
                      vendor_event_id=f"{ticket.id}:{case.get('LastModifiedDate')}:{state}",
                      occurred_at=ticket.updated_at, ticket=ticket)
