"""The prompt cache on the real Redis: single flight under a forced interleaving, and scopes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from chat.cache import CachedAnswer, Lead, PromptCache
from chat.providers.base import ProviderAnswer
from common.redis_client import RedisClient
from devstack import free_port
from tests.support.fixtures import RedisServer
from tests.support.redis_cluster import ON_BOTH_REDIS, server_slots

pytestmark = pytest.mark.integration

KEY = "0" * 64
ANSWER = CachedAnswer("gemini", ProviderAnswer(text="the answer", model="m", prompt_tokens=3, completion_tokens=2))
OTHER = CachedAnswer("gemini", ProviderAnswer(text="another answer", model="m", prompt_tokens=3, completion_tokens=2))


class Interleaved:
    """A replica's Redis connection after whose first command naming `watched` another client
    acts (`then`) before the replica's next command goes out: the moment a leader elsewhere may
    choose to finish, made certain instead of likely. Mixed into a single-server or cluster client."""

    watched: str = ""
    then: Callable[[], Awaitable[None]] | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        result = await super().execute_command(*args, **options)
        if self.then is not None and any(str(a) == self.watched for a in args):
            then, self.then = self.then, None
            await then()
        return result


class InterleavedRedis(Interleaved, Redis):
    pass


class InterleavedCluster(Interleaved, RedisCluster):
    pass


@pytest.fixture
async def follower_redis(redis_server: RedisServer) -> AsyncIterator[InterleavedRedis | InterleavedCluster]:
    kind = InterleavedCluster if redis_server.cluster else InterleavedRedis
    client = kind.from_url(redis_server.url)
    yield client
    await client.aclose()


async def running(cache: PromptCache) -> asyncio.Task[None]:
    await cache.start()
    return asyncio.create_task(cache.run())


@ON_BOTH_REDIS
async def test_a_follower_that_saw_a_miss_as_the_leader_finished_reads_the_answer_and_calls_no_provider(
    redis: RedisClient, follower_redis: InterleavedRedis | InterleavedCluster, namespace: str
) -> None:
    leader = PromptCache(redis, namespace=namespace, ttl_s=60)
    follower = PromptCache(follower_redis, namespace=namespace, ttl_s=60)
    events = await running(follower)
    try:
        lead = await leader.lead_or_wait(KEY, deadline=time.monotonic() + 5)
        assert isinstance(lead, Lead)
        # Right after the follower's first look at the answer's key (a miss: the leader is still
        # working), the leader stores its answer and releases its lead.
        follower_redis.watched = follower.name("cache", KEY)
        follower_redis.then = lambda: lead.fill(ANSWER)
        found = await follower.lead_or_wait(KEY, deadline=time.monotonic() + 5)
        assert follower_redis.then is None, "the interleaving did not happen"
        assert found == ANSWER  # not a lead of its own: that would be a second provider call
    finally:
        events.cancel()
        await follower.close()


@ON_BOTH_REDIS
async def test_a_shared_answer_is_never_replaced_but_a_users_own_is_refreshed(
    redis: RedisClient, namespace: str
) -> None:
    for shared, kept in ((True, ANSWER), (False, OTHER)):
        cache = PromptCache(redis, namespace=f"{namespace}:{shared}", ttl_s=60, shared=shared)
        first = await cache.lead_or_wait(KEY, deadline=time.monotonic() + 5)
        assert isinstance(first, Lead)
        await first.fill(ANSWER)
        fresh = await cache.lead_or_wait(KEY, deadline=time.monotonic() + 5, lookup=False)  # `no-cache`
        assert isinstance(fresh, Lead)
        await fresh.fill(OTHER)
        assert await cache.get(KEY) == kept


async def test_one_keys_answer_lead_and_failure_share_one_hash_slot(redis: RedisClient, redis_cluster_url: str) -> None:
    """The look-or-lead and end scripts name all three together; other keys spread over the cluster."""
    cache = PromptCache(redis, namespace="ns", ttl_s=60)
    for key in (KEY, "f" * 64):
        names = [cache.name(kind, key) for kind in ("cache", "failed", "lead")]
        assert len(set(await server_slots(redis_cluster_url, names))) == 1, names
    answers = [cache.name("cache", f"{i:064x}") for i in range(8)]
    assert len(set(await server_slots(redis_cluster_url, answers))) > 1


async def test_redis_unreachable_is_a_miss_that_stores_nothing_logged_once_per_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    cache = PromptCache(down, namespace="ns", ttl_s=60, probe_s=60)
    try:
        with caplog.at_level(logging.DEBUG, logger="chat.cache"):
            await cache.start()  # the service still starts; the events are subscribed later
            started = time.monotonic()
            leads = [await cache.lead_or_wait(KEY, deadline=time.monotonic() + 5) for _ in range(20)]
            assert time.monotonic() - started < 1  # a miss at once, not a wait for the deadline
            assert all(isinstance(lead, Lead) for lead in leads)
            for lead in leads:
                assert isinstance(lead, Lead)
                await lead.fill(ANSWER)  # stores nothing, and tries nothing
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert warnings == [
            "prompt cache events not subscribed at start; retrying",
            "prompt cache unreachable: answering uncached, without single flight, until it is back",
        ]
        tried = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(tried) == 1  # one lookup met the error; the other 19 skipped Redis (probe_s)
    finally:
        await down.aclose()
