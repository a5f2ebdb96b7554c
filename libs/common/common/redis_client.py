"""The one way a service connects to Redis: REDIS_URL names a single server, or, with
REDIS_CLUSTER=true, one node of a Redis Cluster (redis-py's cluster client learns the other
nodes from it, sends each key to the node serving its hash slot and follows slot moves).

What holds on a cluster, and how our key sets keep to it:
- A script or multi-key command may only name keys of one hash slot. Keys that go together
  share a hash tag (`{...}`): one user's Idempotency-Key records and their byte budget, one
  prompt's cached answer, lead and failure. The rate limiter's budgets of one request (the
  IP's and the user's) cannot share a slot, so on a cluster it makes one call per slot, in
  order (gateway.ratelimit); on a single server it keeps its one round trip.
- Pub/Sub: a PUBLISH on any node reaches the subscribers on every node, and the cluster
  client's pubsub subscribes on the node serving the channel's slot, once it knows the slots
  (`subscriber` makes sure it does). A cluster pipeline refuses PUBLISH, so a publish that must
  go with writes is made inside their script.
- Only database 0 exists.
- The cluster client learns the slots before it is handed out: redis-py 8.1 sends commands
  issued before then to a default node, and a burst of them meets MOVED replies and then
  connections closed under it (without retries, a few of 60 concurrent scripts on a fresh
  client failed; none once it was initialised). A cluster unreachable at start is left to
  connect on first use.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError

from common.settings import CommonSettings

log = logging.getLogger(__name__)

type RedisClient = Redis | RedisCluster

# What a Redis call may raise when the server is slow, gone or refuses: the cluster client's
# own errors (such as no node reachable) are not RedisErrors.
REDIS_ERRORS = (RedisError, RedisClusterException, OSError, TimeoutError)


async def redis_client(settings: CommonSettings, **options: Any) -> RedisClient:
    """A client for the settings' Redis (a cluster with REDIS_CLUSTER, its slots learnt);
    `options` go to redis-py (timeouts, retry). A single server is connected on first use."""
    url = settings.redis_url.get_secret_value()
    if not settings.redis_cluster:
        return Redis.from_url(url, **options)
    cluster = RedisCluster.from_url(url, **options)
    try:
        await cluster.initialize()
    except REDIS_ERRORS as exc:
        log.warning("Redis Cluster unreachable at start; connecting on first use", extra={"error": repr(exc)})
    return cluster


async def subscriber(client: RedisClient) -> PubSub:
    """A Pub/Sub connection of `client`. A cluster client first learns the cluster's slots: its
    pubsub cannot find a channel's node before (redis-py 8.1 fails with a KeyError)."""
    if isinstance(client, RedisCluster):
        await client.initialize()
    return client.pubsub()


def is_cluster(client: RedisClient) -> bool:
    return isinstance(client, RedisCluster)


def as_bytes(value: bytes | str | None) -> bytes | None:
    """A string reply as bytes. redis-py types replies as str or bytes by `decode_responses`;
    our clients leave it off, so this only narrows the type."""
    return value.encode() if isinstance(value, str) else value


def slot_of(key: str) -> int:
    """The cluster hash slot of `key` (its hash tag's, when it has one)."""
    return key_slot(key.encode())
