"""One robust connection per process, one confirming publish channel, declared topology.

Publishing waits for the broker's confirm; a command nobody consumes (no queue bound) or a
broker that is down surfaces as ServiceUnavailable at once instead of a silent loss.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import aiormq
from aio_pika.abc import AbstractExchange, AbstractRobustChannel, AbstractRobustConnection, AbstractRobustQueue
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from common import telemetry
from common.bus.topology import Topology
from common.contracts.envelope import Envelope
from common.errors import OutcomeUnknown, ServiceUnavailable
from common.telemetry import current_trace_context

log = logging.getLogger(__name__)
tracer = trace.get_tracer("common.bus")

PUBLISH_TIMEOUT_S = 5.0
BATCH = "batch"  # AMQP type of a message carrying several commands of one type
BATCH_OF = "x-batch-of"  # its header naming that type
# ChannelInvalidStateError (a RuntimeError) is what a publish on a channel still being restored
# after a broker restart raises: the broker is unavailable, not the request broken.
BROKER_ERRORS = (
    aio_pika.exceptions.AMQPError,
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
)

# The broker closed the channel because of this very publish: it took nothing.
REFUSALS = (
    aiormq.exceptions.ChannelAccessRefused,
    aiormq.exceptions.ChannelNotFoundEntity,
    aiormq.exceptions.ChannelPreconditionFailed,
)


class Bus:
    """A process's link to RabbitMQ. Create once at start-up, close at shutdown."""

    def __init__(
        self, *, url: str, topology: Topology, service: str, publish_timeout_s: float = PUBLISH_TIMEOUT_S
    ) -> None:
        self.topology = topology
        self._publish_timeout_s = publish_timeout_s
        self.service = service
        self._url = url
        # Stamped on every message as its AMQP user_id: RabbitMQ refuses one that is not this
        # connection's login, so consumers can believe it (see common.bus.trust).
        self.login = login_of(url)
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._replies: AbstractRobustChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self._url, reconnect_interval=1.0, client_properties={"connection_name": self.service}
        )
        self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        # Replies are transient and go to a requester's exclusive queue: a lost one is a timeout the
        # requester handles (the work is idempotent), so they skip the confirm round trip. One
        # channel keeps a stream's chunks and its reply in order.
        self._replies = await self._connection.channel(publisher_confirms=False)
        t = self.topology
        self._exchanges = {
            "": self._channel.default_exchange,
            # A topic exchange, though bindings name exact keys: RabbitMQ checks a user's topic
            # permissions (which commands it may publish) only on topic exchanges.
            t.commands: await self._channel.declare_exchange(t.commands, aio_pika.ExchangeType.TOPIC, durable=True),
            t.events: await self._channel.declare_exchange(t.events, aio_pika.ExchangeType.TOPIC, durable=True),
            t.dead_letter: await self._channel.declare_exchange(
                t.dead_letter, aio_pika.ExchangeType.DIRECT, durable=True
            ),
        }

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    @property
    def connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise RuntimeError("Bus.connect() was not awaited")
        return self._connection

    @property
    def is_ready(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def channel(self, *, prefetch: int) -> AbstractRobustChannel:
        """A new channel for consuming, with its own bounded prefetch."""
        channel = await self.connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def declare_service_queue(
        self, channel: AbstractRobustChannel, *, service: str, max_attempts: int
    ) -> AbstractRobustQueue:
        """The service's durable quorum queue, bound to its commands, with its dead-letter queue."""
        t = self.topology
        queue = await self._declare_command_queue(channel, service, t.queue(service), max_attempts=max_attempts)
        for name in t.commands_for(service):
            await queue.bind(t.commands, routing_key=name)
        return queue

    async def declare_partition_queue(
        self, channel: AbstractRobustChannel, *, service: str, partition: int, max_attempts: int
    ) -> AbstractRobustQueue:
        """One partition's quorum queue (single active consumer), bound to `<command>.<partition>`."""
        t = self.topology
        queue = await self._declare_command_queue(
            channel,
            service,
            t.partition_queue(service, partition),
            max_attempts=max_attempts,
            arguments={"x-single-active-consumer": True},
        )
        for name in t.partitioned_commands_for(service):
            await queue.bind(t.commands, routing_key=f"{name}.{partition}")
        return queue

    async def _declare_command_queue(
        self,
        channel: AbstractRobustChannel,
        service: str,
        name: str,
        *,
        max_attempts: int,
        arguments: dict[str, object] | None = None,
    ) -> AbstractRobustQueue:
        t = self.topology
        dead = await channel.declare_queue(
            t.dead_letter_queue(service), durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead.bind(t.dead_letter, routing_key=t.queue(service))
        queue = await channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": max_attempts - 1,
                "x-dead-letter-exchange": t.dead_letter,
                "x-dead-letter-routing-key": t.queue(service),
                **(arguments or {}),
            },
        )
        return queue

    async def publish(
        self,
        envelope: Envelope[Any],
        *,
        event: bool = False,
        reply_to: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Publish a command (or an event) persistently and wait for the broker's confirm."""
        exchange = self.topology.events if event else self.topology.commands
        with telemetry.span(
            tracer, f"{envelope.type} publish", kind=SpanKind.PRODUCER, attributes=_span_attributes(exchange, envelope)
        ):
            stamped = stamp(envelope)
            message = aio_pika.Message(
                body=stamped.model_dump_json().encode(),
                content_type="application/json",
                message_id=str(stamped.message_id),
                type=stamped.type,
                user_id=self.login,
                correlation_id=correlation_id,
                reply_to=reply_to,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                timestamp=datetime.now(UTC),
                headers={
                    k: v
                    for k, v in {
                        "traceparent": stamped.traceparent,
                        "tracestate": stamped.tracestate,
                        "x-request-id": stamped.request_id,
                    }.items()
                    if v
                },
            )
            routing_key = self.topology.routing_key(stamped)
            await self._send(exchange, message, routing_key=routing_key, mandatory=not event)

    async def publish_batch(
        self, envelopes: list[Envelope[Any]], *, reply_to: str | None = None, correlation_id: str | None = None
    ) -> None:
        """Publish commands of one type and routing key, already stamped, as ONE message (AMQP type
        `batch`, header `x-batch-of`: their type); see `common.bus.rpc` for the protocol."""
        first = envelopes[0]
        message = aio_pika.Message(
            body=b"[" + b",".join(e.model_dump_json().encode() for e in envelopes) + b"]",
            content_type="application/json",
            message_id=uuid.uuid4().hex,
            type=BATCH,
            user_id=self.login,
            correlation_id=correlation_id,
            reply_to=reply_to,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            timestamp=datetime.now(UTC),
            headers={BATCH_OF: first.type, "x-batch-size": len(envelopes)},
        )
        routing_key = self.topology.routing_key(first)
        await self._send(self.topology.commands, message, routing_key=routing_key, mandatory=True)

    async def reply(
        self,
        body: bytes,
        *,
        reply_to: str,
        correlation_id: str | None,
        message_type: str | None = None,
        feedback_to: str | None = None,
    ) -> None:
        """Send a serialised Reply (or a stream chunk, `message_type="chunk"`) to a requester's queue;
        a requester that has gone is not an error. `feedback_to` names where the requester may answer."""
        message = aio_pika.Message(
            body=body,
            content_type="application/json",
            correlation_id=correlation_id,
            type=message_type,
            user_id=self.login,
            reply_to=feedback_to,
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
        )
        assert self._replies is not None, "Bus.connect() was not awaited"
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self._replies.default_exchange.publish(message, routing_key=reply_to, mandatory=False)
        except (TimeoutError, *BROKER_ERRORS) as exc:
            log.warning("reply not sent", extra={"routing_key": reply_to, "error": repr(exc)})
            raise ServiceUnavailable("message broker unavailable") from exc

    async def _send(self, exchange: str, message: aio_pika.Message, *, routing_key: str, mandatory: bool) -> None:
        """Publish and wait for the broker's confirm. 503 (ServiceUnavailable) only when the message
        surely went nowhere: no channel to send it on, returned unroutable, or nacked. A failure
        once it may have been written (the link dropped, or no confirm in time) is OutcomeUnknown:
        the work may happen, and the caller must not be told that nothing did."""
        if not self.is_ready:
            raise ServiceUnavailable("message broker unavailable")
        try:
            async with asyncio.timeout(self._publish_timeout_s):
                await self._exchanges[exchange].publish(message, routing_key=routing_key, mandatory=mandatory)
        except aio_pika.exceptions.PublishError as exc:
            raise ServiceUnavailable(f"no service consumes {routing_key}") from exc
        except aiormq.exceptions.DeliveryError as exc:  # nacked: the broker did not take it
            log.warning("publish nacked", extra={"routing_key": routing_key, "error": repr(exc)})
            raise ServiceUnavailable("message broker unavailable") from exc
        except (aiormq.exceptions.ChannelInvalidStateError, *REFUSALS) as exc:  # not written, or refused
            log.warning("publish failed", extra={"routing_key": routing_key, "error": repr(exc)})
            raise ServiceUnavailable("message broker unavailable") from exc
        except (TimeoutError, *BROKER_ERRORS) as exc:
            log.warning("publish unconfirmed", extra={"routing_key": routing_key, "error": repr(exc)})
            raise OutcomeUnknown(
                "the message broker went away before confirming the request; it may still be carried out"
            ) from exc


def login_of(url: str) -> str:
    """The user an AMQP URL logs in as (aio-pika's default when it names none)."""
    return unquote(urlsplit(url).username or "") or "guest"


def stamp[E: Envelope[Any]](envelope: E) -> E:
    """The envelope with the current trace context in it, as a message published now carries."""
    traceparent, tracestate = current_trace_context()
    return envelope.model_copy(update={"traceparent": traceparent, "tracestate": tracestate})


def _span_attributes(exchange: str, envelope: Envelope[Any]) -> dict[str, str]:
    return {
        "messaging.system": "rabbitmq",
        "messaging.destination.name": exchange,
        "messaging.rabbitmq.destination.routing_key": envelope.type,
        "messaging.message.id": str(envelope.message_id),
    }
