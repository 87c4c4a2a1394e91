"""Limits: the body size (413 before anything is parsed) and rate limits per principal.

Rate limits are token buckets: a principal's bucket fills at its role's rate (requests per
second) up to `burst_seconds` of requests; each request takes a token, and a request that
finds none is refused with 429 and a `Retry-After` that says when the next token comes.

With one worker the buckets live in the process. With more, each worker would otherwise
grant the full rate, so the buckets live in Redis: one Lua script reads, refills and takes
atomically, on Redis's own clock. If Redis cannot be reached the process falls back to its
own buckets (and says so in the log) rather than refusing every request.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from .problems import RateLimited, problem

log = logging.getLogger("socialcredit.api")


class BodyLimit:
    """ASGI middleware: a body over `limit` bytes is a 413, whether it says its length or not."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    await self._refuse(scope, receive, send, declared)
                    return
                break
        received = 0
        started = False
        over = False

        async def counting_receive():
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = True
                    raise _Over()
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _Over:
            if started:
                raise
            await self._refuse(scope, None, send, received)
        except Exception:
            if over and not started:
                await self._refuse(scope, None, send, received)
                return
            raise

    async def _refuse(self, scope, receive, send, size: int) -> None:
        response = problem(413, "too_large", f"the request body is larger than {self.limit} bytes "
                                             f"(SOCIALCREDIT_API_MAX_BODY); send smaller batches",
                           instance=scope.get("path"), headers={"Connection": "close"})
        await response(scope, receive or _nothing, send)


class _Over(Exception):
    pass


async def _nothing():
    return {"type": "http.disconnect"}


class MemoryBuckets:
    def __init__(self):
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, name: str, rate: float, burst: float) -> float:
        """0 if a token was taken, else the seconds until one will be there."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(name, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                if len(self._buckets) > 100_000:
                    self._buckets.clear()  # a flood of addresses: start afresh rather than grow
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1.0 - tokens) / rate


_TAKE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or t
tokens = math.min(burst, tokens + math.max(0, t - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(t))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisBuckets:
    """Buckets shared by every worker (and every server on the same Redis)."""

    def __init__(self, url: str, prefix: str = "socialcredit:rate:"):
        import redis.asyncio as aioredis

        self._client = aioredis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self._script = self._client.register_script(_TAKE)
        self._prefix = prefix
        self._fallback = MemoryBuckets()
        self._down_until = 0.0

    async def take(self, name: str, rate: float, burst: float) -> float:
        if time.monotonic() < self._down_until:
            return self._fallback.take(name, rate, burst)
        try:
            return float(await self._script(keys=[self._prefix + name], args=[rate, burst]))
        except Exception as exc:  # Redis down or unreachable: this process's own buckets meanwhile
            log.warning("rate limits: Redis unavailable (%s); using this process's buckets for 10 s",
                        exc.__class__.__name__)
            self._down_until = time.monotonic() + 10
            return self._fallback.take(name, rate, burst)

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except Exception:
            return False

    async def close(self) -> None:
        try:
            await self._client.aclose()
        except Exception:
            pass


class Limiter:
    def __init__(self, rates: dict[str, float], burst_seconds: float, shared_url: str | None):
        self.rates = rates
        self.burst_seconds = burst_seconds
        self.memory = MemoryBuckets()
        self.shared = RedisBuckets(shared_url) if shared_url else None

    async def take(self, who: str, role: str) -> None:
        rate = self.rates.get(role, 0.0)
        if not rate or rate <= 0:
            return
        burst = max(1.0, rate * self.burst_seconds)
        if self.shared is not None:
            wait = await self.shared.take(f"{role}:{who}", rate, burst)
        else:
            wait = self.memory.take(f"{role}:{who}", rate, burst)
        if wait > 0:
            raise RateLimited(f"rate limit of {rate:g} requests per second for a{'n' if role[0] in 'aeiou' else ''} "
                              f"{role} reached; retry after {math.ceil(wait)} s", wait)

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()
