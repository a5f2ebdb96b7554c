"""Broker helpers for tests: inspect queues and remove a test namespace's topology."""

from __future__ import annotations

import asyncio
import subprocess
from contextlib import suppress

import aio_pika
import aiormq

from common.bus import Topology
from common.contracts.catalog import CATALOG

SERVICES = ("gateway", "chat", "imagegen", "imagegen-jobs", "credits")
# Partition queues a test namespace may have declared (at most this many per service that has any).
PARTITIONED = {spec.service: 16 for spec in CATALOG.values() if spec.partitioned}


async def queue_depth(amqp_url: str, queue: str) -> int:
    """Messages ready in a queue (passive declare; the queue must exist)."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await connection.close()


async def delete_namespace(amqp_url: str, namespace: str) -> None:
    t = Topology(namespace)
    connection = await aio_pika.connect(amqp_url)
    try:
        partitions = [t.partition_queue(s, p) for s, n in PARTITIONED.items() for p in range(n)]
        for name in [*(q for s in SERVICES for q in (t.queue(s), t.dead_letter_queue(s))), *partitions]:
            channel = await connection.channel()
            with suppress(aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPError):
                await channel.queue_delete(name)
            with suppress(Exception):
                await channel.close()
        for name in (t.commands, t.events, t.dead_letter):
            channel = await connection.channel()
            with suppress(aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPError):
                await channel.exchange_delete(name)
            with suppress(Exception):
                await channel.close()
    finally:
        await connection.close()


def restart_broker() -> None:
    """Stop and start the RabbitMQ application on this machine (the node stays up)."""
    try:
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=180)
        subprocess.run(["rabbitmqctl", "await_startup"], check=True, capture_output=True, timeout=180)


async def restart_broker_async() -> None:
    await asyncio.to_thread(restart_broker)
