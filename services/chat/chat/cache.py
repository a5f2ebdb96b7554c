"""The prompt cache in Redis, with single-flight across chat replicas.

Keys, under the bus namespace (`cachekey.py` says how a request and its scope become `<key>`;
the braces keep one key's entries in one Redis Cluster slot, for the script below):
- `<ns>:chat:cache:{<key>}`  the stored answer (JSON), for `CHAT_CACHE_TTL_S` (24 h by default);
- `<ns>:chat:lead:{<key>}`   who is computing it: SET NX with a random token, deleted only by its
  holder (compare-and-delete), expiring at the holder's deadline should it die;
- `<ns>:chat:failed:{<key>}` the holder's provider failure, shared with its followers for a moment;
- channel `<ns>:chat:cache-events`: a holder publishes `<key>` when it is done (filled, failed
  or gave up), waking the followers on every replica at once. Its last write, the release of
  its lead and this notice are one script (one round trip; and a Redis Cluster pipeline
  refuses PUBLISH).

Single flight: the first miss takes the lead and calls a provider; the others wait for the
key's event (re-checking every `poll_s` too, so a lost event or a dead holder costs latency,
never correctness), then read the answer, share the failure, or take the lead themselves.
Looking and taking the lead are one script, so no answer can be stored between the two (a
follower that saw a miss, then took the lead its leader had just released, would call the
provider again).

Redis unreachable: the cache fails open. A lookup that meets a Redis error is a miss without
single flight (the request is answered uncached, and its answer is not stored), so chat keeps
answering within its deadline; the outage is logged once (WARNING when it starts, again when a
lookup reaches Redis), not per request, and each bypass is counted (`unavailable`); the pooled
connections the cut left broken fail once each after Redis is back, so a new outage within
`quiet_s` of the last one logged is logged at DEBUG only. While it lasts, one lookup per
`probe_s` tries Redis and the others skip it at once: a Redis that hangs (its socket timeout)
rather than refuses costs one request that wait, not every request.

Scope: each user's answers are their own (`user:<id>` in the key) unless CHAT_CACHE_SCOPE is
`shared`; a shared answer, once stored, is never replaced before it expires (SET NX), so a
`no-cache` request from one user cannot change what every other user is served."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass

from redis.asyncio.client import PubSub

from chat import metrics
from chat.cachekey import cache_key
from chat.providers.base import Choice, ProviderAnswer, ProviderRequest
from common.contracts.chatfeatures import ToolCall
from common.errors import ErrorBody, PlatformError, error_from_body
from common.redis_client import REDIS_ERRORS, RedisClient, as_bytes, subscriber

log = logging.getLogger(__name__)

# KEYS: answer, failure, lead (one hash slot). ARGV: what to write ('answer', 'failure' or ''),
# its value, its life (ms), '1' to keep an answer already stored, the lead's token ('' for
# none), the channel, the key to announce. The lead is dropped only by its holder.
_END = """
if ARGV[1] == 'answer' then
  if ARGV[4] == '1' then
    redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3], 'NX')
  else
    redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
  end
elseif ARGV[1] == 'failure' then
  redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
if ARGV[5] ~= '' and redis.call('get', KEYS[3]) == ARGV[5] then redis.call('del', KEYS[3]) end
redis.call('publish', ARGV[6], ARGV[7])
return 1
"""
# KEYS: answer, failure, lead; ARGV: a token for the lead, how long to hold it (ms).
_LOOK_OR_LEAD = """
local found = redis.call('mget', KEYS[1], KEYS[2])
if found[1] then return {'hit', found[1]} end
if found[2] then return {'failed', found[2]} end
if redis.call('set', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'lead'} end
return {'wait'}
"""


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    provider: str
    answer: ProviderAnswer

    def to_json(self) -> bytes:
        return json.dumps({"provider": self.provider, **asdict(self.answer)}, default=_model).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> CachedAnswer:
        data = json.loads(raw)
        calls = tuple(ToolCall(**c) for c in data.pop("tool_calls", ()))
        more = tuple(
            Choice(
                text=c["text"],
                tool_calls=tuple(ToolCall(**t) for t in c["tool_calls"]),
                finish_reason=c["finish_reason"],
            )
            for c in data.pop("more", ())
        )
        return cls(provider=data.pop("provider"), answer=ProviderAnswer(**data, tool_calls=calls, more=more))


def _model(value: object) -> object:
    if isinstance(value, ToolCall):
        return value.model_dump()
    raise TypeError(f"{type(value).__name__} is not stored in the prompt cache")


class Lead:
    """The right, and the duty, to produce the answer for one key: end it with exactly one of
    fill, fail or abandon. A lead handed out while Redis is unreachable (`store=False`) writes
    nothing: its answer goes to its requester only."""

    def __init__(self, cache: PromptCache, key: str, token: str | None, *, store: bool = True) -> None:
        self._cache = cache
        self.key = key
        self._token = token
        self._done = not store

    async def fill(self, cached: CachedAnswer) -> None:
        keep = "1" if self._cache.shared else ""
        await self._end("answer", cached.to_json(), self._cache.ttl_s * 1000, keep)

    async def fail(self, error: PlatformError) -> None:
        """Followers waiting now get this error too, instead of each trying the failing providers again."""
        body = error.to_body().model_dump_json().encode()
        await self._end("failure", body, max(1, int(self._cache.failure_ttl_s * 1000)))

    async def abandon(self) -> None:
        """No answer and no verdict (the requester left, the deadline passed): a follower takes over."""
        await self._end("", b"", 0)

    async def _end(self, write: str, value: bytes, ttl_ms: int, keep: str = "") -> None:
        if self._done:
            return
        self._done = True
        cache = self._cache
        keys = [cache.name("cache", self.key), cache.name("failed", self.key), cache.name("lead", self.key)]
        args: list[str | bytes | int] = [write, value, ttl_ms, keep, self._token or "", cache.channel, self.key]
        if self._token is None and not cache.may_try():
            return  # Redis is down and this lead holds no lock to release: keep the answer to ourselves
        try:
            await cache.end_script(keys=keys, args=args)
        except REDIS_ERRORS as exc:
            cache.unreachable(exc)
        except Exception:
            log.warning("prompt cache update failed", exc_info=True, extra={"cache_key": self.key})
        else:
            cache.reached()


class PromptCache:
    def __init__(
        self,
        redis: RedisClient,
        *,
        namespace: str,
        ttl_s: int,
        shared: bool = False,
        failure_ttl_s: float = 2.0,
        poll_s: float = 0.5,
        probe_s: float = 1.0,
        quiet_s: float = 30.0,
    ) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.shared = shared
        self.failure_ttl_s = failure_ttl_s
        self._prefix = f"{namespace}:chat:"
        self.channel = f"{namespace}:chat:cache-events"
        self._poll_s = poll_s
        self._waiters: dict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._pubsub: PubSub | None = None
        self._look_or_lead = redis.register_script(_LOOK_OR_LEAD)
        self.end_script = redis.register_script(_END)
        self._probe_s = probe_s
        self._down_since: float | None = None  # monotonic start of the current outage
        self._next_probe = 0.0
        self._bypassed = 0  # lookups answered uncached in this outage
        self._quiet_s = quiet_s
        self._warned_at: float | None = None  # when an outage was last logged at WARNING
        self._warned = False  # the current outage was
        self._events_lost = False

    # -- Redis unreachable ------------------------------------------------------------------------

    def may_try(self) -> bool:
        """Whether to send a command to Redis now: always, except during an outage, when one
        caller per `probe_s` may (the probe that finds it back ends the outage)."""
        if self._down_since is None:
            return True
        now = time.monotonic()
        if now < self._next_probe:
            return False
        self._next_probe = now + self._probe_s
        return True

    def unreachable(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._next_probe = now + self._probe_s
        if self._down_since is None:
            self._down_since, self._bypassed = now, 0
            self._warned = self._warned_at is None or now - self._warned_at >= self._quiet_s
            if self._warned:
                self._warned_at = now
            log.log(
                logging.WARNING if self._warned else logging.DEBUG,
                "prompt cache unreachable: answering uncached, without single flight, until it is back",
                extra={"error": repr(exc)},
            )

    def reached(self) -> None:
        if self._down_since is not None:
            log.log(
                logging.WARNING if self._warned else logging.DEBUG,
                "prompt cache reachable again",
                extra={
                    "outage_s": round(time.monotonic() - self._down_since, 1),
                    "answered_uncached": self._bypassed,
                },
            )
            self._down_since = None

    def _bypass(self, key: str) -> Lead:
        """A miss without single flight, for a request answered while Redis is unreachable."""
        self._bypassed += 1
        metrics.CACHE.labels("unavailable").inc()
        return Lead(self, key, None, store=False)

    def name(self, kind: str, key: str) -> str:
        return f"{self._prefix}{kind}:{{{key}}}"

    def key(self, request: ProviderRequest, *, user_id: str) -> str:
        """The key of `request` in the asker's scope: their own, or everyone's when the cache is shared."""
        return cache_key(request, scope="shared" if self.shared else f"user:{user_id}")

    async def get(self, key: str) -> CachedAnswer | None:
        raw = as_bytes(await self.redis.get(self.name("cache", key)))
        return CachedAnswer.from_json(raw) if raw else None

    async def lead_or_wait(self, key: str, *, deadline: float, lookup: bool = True) -> CachedAnswer | Lead:
        """The stored answer, or the lead for computing it; raises a leader's recent provider failure.
        A follower still waiting at `deadline` (monotonic) gets a lead without the lock. With
        Redis unreachable, a lead that stores nothing (see the module's docstring)."""
        if not lookup:
            return Lead(self, key, None)  # a fresh answer was asked for: no wait, but it is stored
        while True:
            if not self.may_try():
                return self._bypass(key)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters[key].add(waiter)
            try:
                token = uuid.uuid4().hex
                hold_ms = max(1000, int((deadline - time.monotonic() + 1) * 1000))
                keys = [self.name("cache", key), self.name("failed", key), self.name("lead", key)]
                try:
                    found = await self._look_or_lead(keys=keys, args=[token, hold_ms])
                except REDIS_ERRORS as exc:
                    self.unreachable(exc)
                    return self._bypass(key)
                self.reached()
                if found[0] == b"hit":
                    metrics.CACHE.labels("hit").inc()
                    return CachedAnswer.from_json(found[1])
                if found[0] == b"failed":
                    raise error_from_body(ErrorBody.model_validate_json(found[1]))
                if found[0] == b"lead":
                    metrics.CACHE.labels("miss").inc()
                    return Lead(self, key, token)
                left = deadline - time.monotonic()
                if left <= 0:
                    metrics.CACHE.labels("miss").inc()
                    return Lead(self, key, None)  # out of patience: answer without the lock
                try:
                    async with asyncio.timeout(min(self._poll_s, left)):
                        await waiter
                except TimeoutError:
                    pass
            finally:
                self._waiters[key].discard(waiter)
                if not self._waiters[key]:
                    del self._waiters[key]

    async def start(self) -> None:
        """Subscribe to the cache events channel (before any request is served). Redis unreachable
        does not stop the service from starting: `run` subscribes once it is back, and until then
        followers find a leader's answer by polling."""
        try:
            await self._subscribe()
        except REDIS_ERRORS as exc:
            await self._drop_pubsub()
            self._events_lost = True
            log.warning("prompt cache events not subscribed at start; retrying", extra={"error": repr(exc)})

    async def _subscribe(self) -> None:
        self._pubsub = await subscriber(self.redis)
        await self._pubsub.subscribe(self.channel)

    async def run(self) -> None:
        """Wake local followers when a leader anywhere publishes their key; resubscribe after errors
        (logged once per outage)."""
        while True:
            try:
                if self._pubsub is None:
                    await self._subscribe()
                    if self._events_lost:
                        log.warning("prompt cache events subscribed again")
                        self._events_lost = False
                assert self._pubsub is not None
                async for message in self._pubsub.listen():
                    if message.get("type") == "message":
                        self._wake(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.log(
                    logging.DEBUG if self._events_lost else logging.WARNING,
                    "prompt cache events lost; resubscribing",
                    exc_info=True,
                )
                self._events_lost = True
                await self._drop_pubsub()
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        await self._drop_pubsub()

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except Exception:
                log.debug("closing the cache subscription failed", exc_info=True)

    def _wake(self, key: str) -> None:
        for waiter in self._waiters.get(key, ()):
            if not waiter.done():
                waiter.set_result(None)
