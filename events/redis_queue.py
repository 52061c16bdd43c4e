"""The shared queue over Redis: an intake stream read by a consumer group, lanes as lists, due times in a sorted set.

Every replica's worker reads the intake stream with XREADGROUP (one consumer each) and XAUTOCLAIMs entries another
consumer left pending past the idle timeout (it crashed between reading and fanning out). Each step that changes
more than one key is one Lua script, so a crash leaves either all of it or none (fan-out and XACK together;
a lane's pop, its dead letter and the next due time together). Keys are built inside the scripts from one prefix:
a single Redis (or a primary with replicas), not Redis Cluster. Commands as documented at
https://redis.io/docs/latest/commands/ (xreadgroup, xautoclaim, xack, eval); XAUTOCLAIM needs Redis 6.2 or later.
"""

from __future__ import annotations

from typing import Any

from errors import StateUnavailable
from state import redacted

GROUP = "fanout"

ADD = """
if ARGV[5] == '1' and not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[4])
redis.call('XADD', KEYS[3], '*', 'id', ARGV[1])
return 1
"""

# KEYS: stream, due, refs, body, queued; ARGV: group, entry, event id, now, prefix, lanes...
FAN_OUT = """
local n = 0
for i = 6, #ARGV do
  if redis.call('RPUSH', ARGV[5] .. 'lane:' .. ARGV[i], ARGV[3]) == 1 then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[i]) end
  n = n + 1
end
if n > 0 then
  redis.call('HINCRBY', KEYS[3], ARGV[3], n)
  redis.call('INCRBY', KEYS[5], n)
else
  redis.call('DEL', KEYS[4])
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return n
"""

# KEYS: lane list, due, refs, body, queued; ARGV: lane, event id, body, now, retention
APPEND = """
redis.call('SET', KEYS[4], ARGV[3], 'EX', ARGV[5])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
redis.call('INCR', KEYS[5])
if redis.call('RPUSH', KEYS[1], ARGV[2]) == 1 then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1]) end
return 1
"""

LEASE = """
local lanes = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, lane in ipairs(lanes) do redis.call('ZADD', KEYS[1], ARGV[3], lane) end
return lanes
"""

# KEYS: lane list, attempts, due; ARGV: lane, body prefix. An empty lane leaves the due set in the same step,
# so a push that lands just after cannot lose its due time.
HEAD = """
local event = redis.call('LINDEX', KEYS[1], 0)
if not event then redis.call('ZREM', KEYS[3], ARGV[1]); return false end
return {event, redis.call('HGET', KEYS[2], ARGV[1]) or '0', redis.call('GET', ARGV[2] .. event) or ''}
"""

# KEYS: lane list, attempts, due; ARGV: lane, event id, attempts, due
RETRY = """
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 1
"""

# KEYS: lane list, attempts, due, refs, body, dead letters, queued; ARGV: lane, event id, now, dead record or ''
FINISH = """
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then return 0 end
redis.call('LPOP', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DECR', KEYS[7])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[6], ARGV[2], ARGV[4]) end
if redis.call('LLEN', KEYS[1]) > 0 then redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1]) else redis.call('ZREM', KEYS[3], ARGV[1]) end
if redis.call('HINCRBY', KEYS[4], ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[4], ARGV[2])
  redis.call('DEL', KEYS[5])
end
return 1
"""


class RedisQueue:
    """The queue every replica shares (REDIS_URL); survives a restart of the service as far as Redis persists."""

    durable = True

    def __init__(
        self, url: str, *, prefix: str = "connectors:events:", dedupe_ttl: int, retention: int,
        claim_idle_ms: int, timeout_seconds: float = 2.0,
    ) -> None:
        import redis.asyncio as redis

        self.url = url
        self.prefix = prefix
        self.dedupe_ttl, self.retention, self.claim_idle_ms = dedupe_ttl, retention, claim_idle_ms
        self._errors = (redis.RedisError, OSError)
        self._client: Any = redis.Redis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)
        self._scripts = {name: self._client.register_script(text) for name, text in
                         {"add": ADD, "fan_out": FAN_OUT, "append": APPEND, "lease": LEASE, "head": HEAD,
                          "retry": RETRY, "finish": FINISH}.items()}
        self._group_ready = False

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def _call(self, command: Any) -> Any:
        """Await a Redis command; an unreachable Redis is the retryable StateUnavailable, never a 500."""
        try:
            return await command
        except self._errors as exc:
            raise StateUnavailable(f"the event queue is unavailable ({type(exc).__name__}); retry shortly") from None

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self._call(self._scripts[name](keys=keys, args=args))

    async def ping(self) -> None:
        """Start-up check, with the URL's password hidden."""
        try:
            await self._client.ping()
        except self._errors as exc:
            raise RuntimeError(f"REDIS_URL {redacted(self.url)} is not reachable: {exc}") from None

    async def add(self, event_id: str, dedupe_key: str | None, body: bytes) -> bool:
        keys = [self._key("seen", dedupe_key or ""), self._key("body", event_id), self._key("stream")]
        args = [event_id, body, self.dedupe_ttl, self.retention, "1" if dedupe_key else "0"]
        return bool(await self._run("add", keys, args))

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From the stream's start: events added before any worker ran are fanned out too.
            await self._client.xgroup_create(self._key("stream"), GROUP, id="0", mkstream=True)
        except self._errors as exc:
            if "BUSYGROUP" not in str(exc):
                raise StateUnavailable(f"the event queue is unavailable ({type(exc).__name__}); retry shortly") from None
        self._group_ready = True

    async def take(self, consumer: str, count: int, claim: bool = True) -> list[tuple[str, str, bytes | None]]:
        await self._ensure_group()
        stream = self._key("stream")
        claimed: list[Any] = []
        if claim:
            _, claimed, _ = await self._call(
                self._client.xautoclaim(stream, GROUP, consumer, self.claim_idle_ms, start_id="0-0", count=count)
            )
        fresh = await self._call(self._client.xreadgroup(GROUP, consumer, {stream: ">"}, count=count))
        entries = list(claimed) + [entry for _, batch in fresh or [] for entry in batch]
        found = [(entry_id.decode(), fields[b"id"].decode()) for entry_id, fields in entries if fields]
        if not found:
            return []
        bodies = await self._call(self._client.mget([self._key("body", event_id) for _, event_id in found]))
        return [(entry, event_id, body) for (entry, event_id), body in zip(found, bodies, strict=True)]

    async def fan_out(self, entry: str, lanes: list[str], event_id: str, now: float) -> None:
        keys = [self._key("stream"), self._key("due"), self._key("refs"), self._key("body", event_id), self._key("queued")]
        await self._run("fan_out", keys, [GROUP, entry, event_id, now, self.prefix, *lanes])

    async def append(self, lane: str, event_id: str, body: bytes, now: float) -> None:
        keys = [self._key("lane", lane), self._key("due"), self._key("refs"), self._key("body", event_id),
                self._key("queued")]
        await self._run("append", keys, [lane, event_id, body, now, self.retention])

    async def lease(self, now: float, count: int, until: float) -> list[str]:
        lanes = await self._run("lease", [self._key("due")], [now, count, until])
        return [lane.decode() for lane in lanes]

    async def head(self, lane: str) -> tuple[str, int, bytes | None] | None:
        found = await self._run("head", [self._key("lane", lane), self._key("attempts"), self._key("due")],
                                [lane, self._key("body", "")])
        if not found:
            return None
        event_id, attempts, body = found
        return event_id.decode(), int(attempts), body or None

    async def retry(self, lane: str, event_id: str, attempts: int, due: float) -> None:
        keys = [self._key("lane", lane), self._key("attempts"), self._key("due")]
        await self._run("retry", keys, [lane, event_id, attempts, due])

    async def finish(self, lane: str, event_id: str, now: float, dead_letter: bytes | None = None) -> None:
        sub_id = lane.split("|", 1)[0]
        keys = [self._key("lane", lane), self._key("attempts"), self._key("due"), self._key("refs"),
                self._key("body", event_id), self._key("dead", sub_id), self._key("queued")]
        await self._run("finish", keys, [lane, event_id, now, dead_letter or b""])

    async def save_subscription(self, sub_id: str, record: bytes) -> None:
        await self._call(self._client.hset(self._key("subs"), sub_id, record))

    async def subscription(self, sub_id: str) -> bytes | None:
        return await self._call(self._client.hget(self._key("subs"), sub_id))

    async def subscriptions(self) -> dict[str, bytes]:
        found = await self._call(self._client.hgetall(self._key("subs")))
        return {key.decode(): value for key, value in found.items()}

    async def delete_subscription(self, sub_id: str) -> bool:
        await self._call(self._client.delete(self._key("dead", sub_id)))
        return bool(await self._call(self._client.hdel(self._key("subs"), sub_id)))

    async def dead_letters(self, sub_id: str) -> list[tuple[str, bytes]]:
        found = await self._call(self._client.hgetall(self._key("dead", sub_id)))
        return [(key.decode(), value) for key, value in found.items()]

    async def pop_dead_letter(self, sub_id: str, event_id: str) -> bytes | None:
        key = self._key("dead", sub_id)
        record, removed = await self._call(self._client.pipeline(transaction=True).hget(key, event_id).hdel(key, event_id).execute())
        return record if removed else None

    async def depth(self) -> int:
        queued, intake = await self._call(
            self._client.pipeline(transaction=False).get(self._key("queued")).xlen(self._key("stream")).execute()
        )
        return int(queued or 0) + int(intake or 0)

    async def close(self) -> None:
        await self._client.aclose()
