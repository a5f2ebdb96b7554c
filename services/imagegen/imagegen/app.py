"""Image generation service entry point: build settings, wire adapters, consume until stopped.

Two queues: `imagegen` for the quick messages (accept a job, queries, delete) and
`imagegen-jobs` for running jobs, with a prefetch of IMAGE_CONCURRENCY, so a backlog of slow
jobs never delays the quick answers.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from functools import partial

from common.bus import Consumer, Handler, Publishers, RpcClient
from common.contracts import Caller, Envelope, ImageGenerated, RunImageJob
from common.contracts.catalog import IMAGE_WORKER
from common.credits import CreditsClient
from common.mongo import database, mongo_client
from common.runtime import Runtime, serve
from imagegen.handlers import ImageHandlers
from imagegen.pricing import ImagePricing
from imagegen.progress import JobProgress
from imagegen.providers import ImageProvider, LocalGenerator, ReplicateProvider
from imagegen.providers.delivery import DeliveryPolicy
from imagegen.repository import ImageRepository
from imagegen.runner import JobRunner
from imagegen.settings import ImagegenSettings
from imagegen.storage import CloudinaryStorage, ImageStorage, LocalStorage
from imagegen.sweeper import JobSweeper

log = logging.getLogger(__name__)

# Every message here is idempotent by itself (a job by its id, its hold by the job's id; the
# rest are reads), and job status is polled often: keeping each reply in Redis for a day, as
# the bus's processed-message record would, buys nothing.
DEDUPLICATE = False


def build_provider(settings: ImagegenSettings) -> ImageProvider:
    choice = settings.image_provider
    if choice == "auto":
        choice = "replicate" if settings.replicate_api_token else "local"
    if choice == "local":
        return LocalGenerator(latency_s=settings.local_image_latency_s)
    if settings.replicate_api_token is None:
        raise ValueError("IMAGE_PROVIDER=replicate needs REPLICATE_API_TOKEN")
    return ReplicateProvider(
        api_token=settings.replicate_api_token.get_secret_value(),
        base_url=settings.replicate_base_url,
        timeout_s=settings.image_http_timeout_s,
        poll_initial_s=settings.image_poll_initial_s,
        poll_max_s=settings.image_poll_max_s,
        max_bytes=settings.image_max_bytes,
        delivery=DeliveryPolicy(
            hosts=tuple(settings.image_output_hosts), schemes=frozenset(settings.image_output_schemes)
        ),
    )


def build_storages(settings: ImagegenSettings) -> tuple[dict[str, ImageStorage], str]:
    """Every store this process can reach (images kept earlier elsewhere can still be deleted) and the one to use."""
    storages: dict[str, ImageStorage] = {"local": LocalStorage(settings.image_data_dir)}
    if settings.cloudinary_url is not None:
        storages["cloudinary"] = CloudinaryStorage(
            url=settings.cloudinary_url.get_secret_value(),
            root_folder=settings.image_cloudinary_folder,
            timeout_s=settings.image_http_timeout_s,
        )
    choice = settings.image_storage
    if choice == "auto":
        choice = "cloudinary" if "cloudinary" in storages else "local"
    if choice not in storages:
        raise ValueError("IMAGE_STORAGE=cloudinary needs CLOUDINARY_URL")
    return storages, choice


async def setup(runtime: Runtime, settings: ImagegenSettings) -> dict[str, Handler]:
    client = mongo_client(settings)
    runtime.on_close(client.close)
    repo = ImageRepository(database(client, settings))
    await repo.create_indexes()
    rpc = RpcClient(runtime.bus, process=settings.service_name)
    await rpc.start()
    credits = CreditsClient(rpc)
    provider = build_provider(settings)
    runtime.on_close(provider.aclose)
    storages, storage = build_storages(settings)
    pricing = ImagePricing(
        default_model=settings.image_default_model or provider.default_model,
        default_price=settings.image_price,
        by_model=settings.image_model_prices,
    )
    progress = JobProgress(runtime.redis, namespace=settings.bus_namespace)
    lease = timedelta(seconds=settings.image_lease_s)

    async def dispatch(job_id: uuid.UUID, request_id: str) -> None:
        envelope = Caller(request_id=request_id, actor=None, deadline=None).envelope(RunImageJob(job_id=job_id))
        await runtime.bus.publish(envelope)

    async def announce(caller: Caller, event: ImageGenerated, message_id: uuid.UUID) -> None:
        # An event states a fact: it carries no deadline, so no consumer drops it as stale.
        fact = Caller(request_id=caller.request_id, actor=caller.actor, deadline=None)
        await runtime.bus.publish(fact.envelope(event, message_id=message_id), event=True)

    runner = JobRunner(
        repo=repo,
        provider=provider,
        storages=storages,
        storage=storage,
        credits=credits,
        publish=progress.publish,
        announce=announce,
        lease=lease,
    )

    async def run_job(envelope: Envelope[RunImageJob]) -> None:
        await runner.run(envelope.payload.job_id)

    # The runner settles every outcome itself, and a repeated RunImageJob finds its job taken
    # or finished: no processed-message record is needed on this queue.
    worker = Consumer(
        runtime.bus,
        service=IMAGE_WORKER,
        handlers={"RunImageJob": run_job},
        processed=None,
        publishers=Publishers.of(settings),
        prefetch=settings.image_concurrency,
        max_attempts=settings.bus_max_attempts,
        retry_backoff_s=settings.bus_retry_backoff_s,
        retry_backoff_max_s=settings.bus_retry_backoff_max_s,
    )
    await worker.start()
    sweeper = JobSweeper(
        repo, dispatch=dispatch, storages=storages, interval_s=settings.image_sweep_interval_s, window=lease
    )
    runtime.spawn(sweeper.run(), name="image-job-sweeper")
    handlers = ImageHandlers(
        repo=repo,
        pricing=pricing,
        credits=credits,
        storages=storages,
        default_size=settings.image_default_size,
        dispatch=dispatch,
        publish=progress.publish,
        dispatch_window=lease,
    )
    log.info(
        "image generation configured",
        extra={"provider": provider.name, "storage": storage, "models": pricing.models},
    )
    return handlers.routes()


def main() -> None:
    settings = ImagegenSettings()
    serve(settings, partial(setup, settings=settings), deduplicate=DEDUPLICATE)


if __name__ == "__main__":
    main()
