"""Request/reply over RabbitMQ for the gateway: one exclusive reply queue per process,
declared once, and a future per in-flight request keyed by correlation id."""

from __future__ import annotations

import asyncio
import logging
import uuid

from aio_pika.abc import AbstractIncomingMessage

from common.bus.connection import Bus
from common.contracts.envelope import Contract, Envelope, Reply
from common.errors import DeadlineExceeded, InternalError, error_from_body

log = logging.getLogger(__name__)


class RpcClient:
    def __init__(self, bus: Bus, *, process: str) -> None:
        self._bus = bus
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self.reply_queue = bus.topology.reply_queue(process)

    async def start(self) -> None:
        channel = await self._bus.channel(prefetch=1000)
        queue = await channel.declare_queue(self.reply_queue, exclusive=True, auto_delete=True)
        await queue.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.get(message.correlation_id or "")
        if future is None or future.done():
            log.info("late or unknown reply discarded", extra={"correlation_id": message.correlation_id})
            return
        future.set_result(message.body)

    async def call[R: Contract](self, envelope: Envelope[Contract], *, reply_model: type[R]) -> R:
        """Publish a command and wait for its reply until the envelope's deadline."""
        if envelope.deadline is None:
            raise ValueError("request/reply needs a deadline")
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            async with asyncio.timeout(max(envelope.seconds_left() or 0.0, 0.0)):
                await self._bus.publish(envelope, reply_to=self.reply_queue, correlation_id=correlation_id)
                body = await future
        except TimeoutError as exc:
            raise DeadlineExceeded(f"no answer to {envelope.type} before the deadline") from exc
        finally:
            self._pending.pop(correlation_id, None)
        reply = Reply[reply_model].model_validate_json(body)  # type: ignore[valid-type]
        if reply.error is not None:
            raise error_from_body(reply.error)
        if reply.result is None:
            raise InternalError(f"{envelope.type} reply carried neither result nor error")
        return reply.result
