"""The Redis factory on a single server and on a Redis Cluster, and the bus's record of
processed messages on both."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ClusterCrossSlotError, RedisClusterException

from common.bus import ProcessedMessages
from common.redis_client import RedisClient, is_cluster, redis_client, slot_of
from common.settings import CommonSettings
from tests.support.fixtures import RedisServer
from tests.support.redis_cluster import ON_BOTH_REDIS

pytestmark = pytest.mark.integration


@ON_BOTH_REDIS
async def test_the_factory_speaks_to_a_single_server_or_a_cluster_as_configured(redis_server: RedisServer) -> None:
    settings = CommonSettings(redis_url=redis_server.url, redis_cluster=redis_server.cluster)  # type: ignore[arg-type]
    client = await redis_client(settings)
    try:
        assert is_cluster(client) is redis_server.cluster
        assert isinstance(client, RedisCluster if redis_server.cluster else Redis)
        assert await client.ping()
    finally:
        await client.aclose()


@ON_BOTH_REDIS
async def test_a_burst_of_scripts_on_a_fresh_client_each_reach_their_keys_node(
    redis_server: RedisServer, namespace: str
) -> None:
    """As a gateway meets its first requests: many scripts at once, no retries to hide a misrouted one."""
    settings = CommonSettings(redis_url=redis_server.url, redis_cluster=redis_server.cluster)  # type: ignore[arg-type]
    client = await redis_client(settings, retry=Retry(NoBackoff(), 0))
    try:
        script = client.register_script("return redis.call('incr', KEYS[1])")
        counts = await asyncio.gather(*(script(keys=[f"{namespace}:burst:{i % 16}"], args=[]) for i in range(64)))
        assert sorted(counts) == sorted(n for n in range(1, 5) for _ in range(16))
    finally:
        await client.aclose()


@ON_BOTH_REDIS
async def test_a_processed_message_keeps_its_reply(redis: RedisClient, namespace: str) -> None:
    processed = ProcessedMessages(redis, namespace=namespace, service="chat")
    first, other = uuid.uuid4(), uuid.uuid4()
    await processed.record(first, b"the reply")
    await processed.record(other, b"")
    assert await processed.reply_for(first) == b"the reply"
    assert await processed.reply_for(other) == b""
    assert await processed.reply_for(uuid.uuid4()) is None


async def test_the_test_cluster_refuses_a_script_naming_keys_of_two_slots(redis_cluster_url: str) -> None:
    """What the cluster variants of the tests rely on: a script whose keys hash to different
    slots fails there, in the client and in the server, rather than running on one node."""
    one, two = "aisaas:a", "aisaas:b"
    assert slot_of(one) != slot_of(two)
    cluster = RedisCluster.from_url(redis_cluster_url)
    try:
        # A script, as our modules call them: refused by the client, or else by the server.
        with pytest.raises((RedisClusterException, ClusterCrossSlotError)):
            await cluster.register_script("return 1")(keys=[one, two])
        node = cluster.get_node_from_key(one)
        assert node is not None
        direct = Redis(host=node.host, port=node.port)  # the node serving `one`, bypassing the client's check
        try:
            with pytest.raises(ClusterCrossSlotError):  # the server's CROSSSLOT error
                await direct.eval("return 1", 2, one, two)
            assert await direct.execute_command("CLUSTER", "KEYSLOT", one) == slot_of(one)
        finally:
            await direct.aclose()
    finally:
        await cluster.aclose()
