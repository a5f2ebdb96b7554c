"""Idempotency-Key records on a Redis Cluster: the scripts name a record and its user's byte
budget together, so both must hash to one slot; other users' keys spread over the cluster."""

from __future__ import annotations

import pytest

from common.redis_client import RedisClient
from gateway.idempotency.store import IdempotencyStore
from tests.support.redis_cluster import server_slots

pytestmark = pytest.mark.integration


async def test_a_users_records_and_byte_budget_share_one_hash_slot(redis: RedisClient, redis_cluster_url: str) -> None:
    store = IdempotencyStore(redis, namespace="ns", ttl_s=60, max_bytes_per_user=1024)
    for user in ("user_2abc", "user_other"):
        records = [store.record(user, key) for key in ("k1", "another key", "k" * 255)]
        keys = [*records, store.usage(records[0])]
        assert len(set(await server_slots(redis_cluster_url, keys))) == 1, keys
    users = [store.record(f"user_{i}", "k1") for i in range(8)]
    assert len(set(await server_slots(redis_cluster_url, users))) > 1  # a tag per user, not one for all
