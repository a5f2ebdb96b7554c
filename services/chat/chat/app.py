"""Chat service entry point: build settings, wire adapters, consume until stopped."""

from __future__ import annotations

from functools import partial

from chat.analytics import UsageAnalytics
from chat.breaker import CircuitBreaker
from chat.cache import PromptCache
from chat.catalog import ModelCatalog
from chat.conversations import Conversations
from chat.embedding_catalog import EmbeddingCatalog
from chat.embedding_failover import EmbeddingFailover
from chat.embeddings import EmbeddingHandlers
from chat.failover import Failover, RetryPolicy
from chat.handlers import ChatHandlers
from chat.model_directory import ModelDirectory
from chat.provider_costs import CostTable
from chat.providers.base import ChatProvider
from chat.providers.embedding import EmbeddingProvider
from chat.providers.gemini import GeminiProvider
from chat.providers.gemini_embeddings import GeminiEmbeddings
from chat.providers.local import LocalProvider
from chat.providers.local_embeddings import LocalEmbeddings
from chat.providers.openai import OpenAIProvider
from chat.providers.openai_embeddings import OpenAIEmbeddings
from chat.settings import ChatSettings
from chat.thread_book import ThreadBook
from chat.thread_handlers import ThreadHandlers
from chat.thread_log import ThreadLog
from chat.thread_store import ThreadStore
from chat.usage import UsageRecorder
from common.bus import Handler, RpcClient, Streaming
from common.contracts import Envelope, UsageRecorded
from common.credits import CreditsClient
from common.mongo import database, mongo_client
from common.runtime import Runtime, serve

# A repeated CompleteChat finds its reservation (derived from the message id) settled and gets an
# error (`chat.settlement.settled_before`) before any provider call, and its usage record has the
# same id: the handler is idempotent by itself, so the bus's processed-message record (a Redis
# round trip) is not needed.
DEDUPLICATE = False


def providers(settings: ChatSettings) -> list[ChatProvider]:
    """Gemini, then OpenAI, each when its key is set; the offline `local` provider when neither is."""
    timeout = settings.chat_attempt_timeout_s
    chain: list[ChatProvider] = []
    if settings.gemini_api_key is not None:
        chain.append(
            GeminiProvider(
                api_key=settings.gemini_api_key.get_secret_value(),
                base_url=settings.google_gemini_base_url,
                default_model=settings.gemini_model,
                timeout_s=timeout,
            )
        )
    if settings.openai_api_key is not None:
        chain.append(
            OpenAIProvider(
                api_key=settings.openai_api_key.get_secret_value(),
                base_url=settings.openai_base_url,
                default_model=settings.openai_model,
                timeout_s=timeout,
            )
        )
    return chain or [LocalProvider(latency_s=settings.local_latency_s)]


def embedding_providers(settings: ChatSettings) -> list[EmbeddingProvider]:
    """As `providers`: Gemini's and OpenAI's embeddings, each when its key is set; else the offline ones."""
    timeout = settings.chat_attempt_timeout_s
    chain: list[EmbeddingProvider] = []
    if settings.gemini_api_key is not None:
        key, url, model = settings.gemini_api_key, settings.google_gemini_base_url, settings.gemini_embedding_model
        chain.append(
            GeminiEmbeddings(api_key=key.get_secret_value(), base_url=url, default_model=model, timeout_s=timeout)
        )
    if settings.openai_api_key is not None:
        key, url, model = settings.openai_api_key, settings.openai_base_url, settings.openai_embedding_model
        chain.append(
            OpenAIEmbeddings(api_key=key.get_secret_value(), base_url=url, default_model=model, timeout_s=timeout)
        )
    return chain or [LocalEmbeddings()]


async def setup(runtime: Runtime, settings: ChatSettings) -> dict[str, Handler]:
    chain = providers(settings)
    costs = CostTable(settings.chat_usd_prices)
    catalog = ModelCatalog.build(
        chain,
        default_model=settings.default_model,
        default_price=settings.chat_price,
        prices=settings.chat_model_prices,
        costs=costs,
    )
    rpc = RpcClient(runtime.bus, process=settings.service_name)
    await rpc.start()
    failover = Failover(
        chain,
        policy=RetryPolicy(
            attempts=settings.chat_retry_attempts,
            backoff_s=settings.chat_retry_backoff_s,
            attempt_timeout_s=settings.chat_attempt_timeout_s,
        ),
        breaker=partial(
            CircuitBreaker, failures=settings.chat_breaker_failures, cooldown_s=settings.chat_breaker_cooldown_s
        ),
    )
    runtime.on_close(failover.aclose)
    embedders = embedding_providers(settings)
    embedding_failover = EmbeddingFailover(
        embedders,
        policy=failover.policy,
        breaker=partial(
            CircuitBreaker, failures=settings.chat_breaker_failures, cooldown_s=settings.chat_breaker_cooldown_s
        ),
    )
    runtime.on_close(embedding_failover.aclose)

    cache = None
    if settings.chat_cache_ttl_s > 0:
        cache = PromptCache(
            runtime.redis,
            namespace=settings.bus_namespace,
            ttl_s=settings.chat_cache_ttl_s,
            shared=settings.chat_cache_scope == "shared",
        )
        await cache.start()
        runtime.spawn(cache.run(), name="prompt-cache-events")
        runtime.on_close(cache.close)

    mongo = mongo_client(settings)
    runtime.on_close(mongo.close)

    async def announce(event: Envelope[UsageRecorded]) -> None:
        await runtime.bus.publish(event, event=True)

    store, thread_log = ThreadStore(database(mongo, settings)), ThreadLog(database(mongo, settings))
    await store.create_indexes()
    await thread_log.create_indexes()
    threads = ThreadBook(
        store, thread_log, partitions=settings.credits_partitions, checkpoint_s=settings.chat_thread_checkpoint_s
    )
    runtime.spawn(threads.run(), name="thread-checkpoints")
    runtime.on_close(threads.close)  # after the usage writer's (closers run last first): it keeps turns
    runtime.on_channel_lost(threads.invalidate)
    usage = UsageRecorder(
        database(mongo, settings)["usage"],
        announce,
        linger_s=settings.chat_usage_flush_s,
        turn_linger_s=settings.chat_turn_linger_s,
        threads=threads,
    )
    analytics = UsageAnalytics(database(mongo, settings)["usage"])
    runtime.spawn(usage.run(), name="usage-recorder")
    runtime.on_close(usage.close)

    handlers = ChatHandlers(
        failover=failover,
        catalog=catalog,
        credits=CreditsClient(rpc),
        costs=costs,
        cache=cache,
        usage=usage,
        inbox=rpc,
        hit_price=settings.chat_cache_hit_price,
        stream_ack_timeout_s=settings.chat_stream_ack_timeout_s,
        conversations=Conversations(threads, max_turns=settings.chat_thread_max_turns),
    )
    embedding_catalog = EmbeddingCatalog.build(
        embedders, default_price=settings.embedding_price, prices=settings.embedding_model_prices, costs=costs
    )
    embeddings = EmbeddingHandlers(
        failover=embedding_failover,
        catalog=embedding_catalog,
        credits=CreditsClient(rpc),
        costs=costs,
        usage=usage,
    )
    return {
        "CompleteChat": Streaming(handlers.complete_chat),
        "CreateEmbeddings": embeddings.create_embeddings,
        "ListModels": ModelDirectory(catalog, embedding_catalog).list_models,
        "GetUsageReport": analytics.handle,
        **ThreadHandlers(threads).routes(),
    }


def main() -> None:
    settings = ChatSettings()
    serve(settings, partial(setup, settings=settings), deduplicate=DEDUPLICATE)


if __name__ == "__main__":
    main()
