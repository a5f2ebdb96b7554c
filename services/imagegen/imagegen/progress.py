"""Job progress for whoever follows a job (the gateway's SSE stream and `?wait`): every change
of a job is published on its Redis channel as ImageJob JSON.

Pub/sub is fire-and-forget, which suits progress: the job's state of record is in MongoDB,
and a follower reads it there first and again whenever it has heard nothing for a while. A
Redis hiccup therefore costs at most a late update, never a wrong one.
"""

from __future__ import annotations

import logging

from common.contracts import ImageJob, job_channel
from common.redis_client import REDIS_ERRORS, RedisClient

log = logging.getLogger(__name__)


class JobProgress:
    def __init__(self, redis: RedisClient, *, namespace: str) -> None:
        self._redis = redis
        self._namespace = namespace

    async def publish(self, job: ImageJob) -> None:
        try:
            await self._redis.publish(job_channel(self._namespace, job.job_id), job.model_dump_json())
        except REDIS_ERRORS:
            log.warning("job progress not published", extra={"job_id": str(job.job_id)}, exc_info=True)
