"""What the invariants are checked against, read once the run has settled: the ledger's
journal and accounts, usage records, image jobs, images and stored files, the dead-letter
queues, the CompleteChat commands the gateway published (a tap queue bound at the start),
and `make reconcile`'s report.

Everything here is IO; `Evidence` is plain data the pure checks in `invariants` read.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx
from pymongo import AsyncMongoClient

from common.bus import Topology
from credits.log import LedgerLog
from devstack import ROOT

TAPPED = ("CompleteChat",)
DEAD_LETTERED = ("gateway", "chat", "imagegen", "imagegen-jobs", "credits")


@dataclass(frozen=True)
class Settlement:
    kind: str  # reserve, commit, release, expire
    amount: int


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    type: str
    request_id: str | None
    reason: str  # x-death: rejected (did not parse) or delivery_limit (kept failing)
    error: str | None = None  # the last line of the handler's last logged failure, when found


def handler_errors(log_dir: Path) -> dict[str, str]:
    """request id -> the last line of the last "handler failed" traceback the services logged."""
    found: dict[str, str] = {}
    for path in sorted(log_dir.glob("*.log")):
        with path.open(errors="replace") as lines:
            for line in lines:
                if '"handler failed' not in line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                trace = str(event.get("exc") or "").strip().splitlines()
                if event.get("request_id") and trace:
                    found[event["request_id"]] = trace[-1][:300]
    return found


@dataclass
class Evidence:
    """The stores and broker as the run left them."""

    message_ids: dict[str, list[str]] = field(default_factory=dict)  # request id -> CompleteChat message ids
    ledger: dict[str, list[Settlement]] = field(default_factory=dict)  # reservation id -> its entries
    grants: dict[str, int] = field(default_factory=dict)  # grant key -> entries seen
    open_holds: list[dict[str, Any]] = field(default_factory=list)  # {user, id, amount, expires}
    usage: dict[str, list[int]] = field(default_factory=dict)  # request id -> credits of each distinct record
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # job id -> {status, reservation, charged, ...}
    images: dict[str, dict[str, Any]] = field(default_factory=dict)  # image id -> {job, status, key}
    files: list[str] = field(default_factory=list)  # stored files' public ids
    dead_letters: list[DeadLetter] = field(default_factory=list)
    reconcile: dict[str, Any] = field(default_factory=dict)
    reconcile_status: int = 0
    now: datetime | None = None


class Tap:
    """A durable queue of our own bound to the commands the gateway publishes, declared before
    the load starts: it keeps every CompleteChat (request id -> message id, from which the
    chat service derives the reservation id) across broker restarts."""

    def __init__(self, amqp_url: str, namespace: str) -> None:
        self.amqp_url, self.topology = amqp_url, Topology(namespace)
        self.name = f"{namespace}.chaos-tap"

    async def bind(self) -> None:
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.name, durable=True)
            for name in TAPPED:
                await queue.bind(self.topology.commands, routing_key=name)

    async def drain(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.name, durable=True)
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                envelope = json.loads(message.body)
                found[envelope["request_id"]].append(envelope["message_id"])
        return dict(found)

    async def delete(self) -> None:
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(self.name)


async def dead_letters(amqp_url: str, namespace: str, log_dir: Path) -> list[DeadLetter]:
    """Every dead-lettered message, read and put back (the queues are the operators' to empty),
    with the error its handler last logged for it."""
    errors = handler_errors(log_dir)
    t = Topology(namespace)
    out: list[DeadLetter] = []
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        for service in DEAD_LETTERED:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(t.dead_letter_queue(service), passive=True)
            except aio_pika.exceptions.ChannelClosed:
                continue
            held = []
            while (message := await queue.get(fail=False)) is not None:
                held.append(message)
                letter = _dead_letter(queue.name, message)
                out.append(replace(letter, error=errors.get(letter.request_id or "")))
            for message in held:
                await message.nack(requeue=True)
            await channel.close()
    return out


def _dead_letter(queue: str, message: aio_pika.abc.AbstractIncomingMessage) -> DeadLetter:
    deaths = message.headers.get("x-death") or []
    reason = str(deaths[0].get("reason", "?")) if deaths and isinstance(deaths[0], dict) else "?"
    try:
        envelope = json.loads(message.body)
        return DeadLetter(queue, str(envelope.get("type", "?")), envelope.get("request_id"), reason)
    except (ValueError, AttributeError):
        return DeadLetter(queue, "unparseable", None, reason)


async def read_store(mongodb_url: str, database: str, evidence: Evidence) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        db = client[database]
        ledger: dict[str, list[Settlement]] = defaultdict(list)
        grants: dict[str, int] = defaultdict(int)
        async for page in LedgerLog(db).scan():
            for entry in page.entries:
                if entry.reservation_id is not None:
                    ledger[entry.reservation_id].append(Settlement(entry.kind, entry.amount))
                elif entry.kind == "grant":
                    grants[entry.key] += 1
        evidence.ledger, evidence.grants = dict(ledger), dict(grants)
        async for account in db["credits"].find({"holds.0": {"$exists": True}}):
            for hold in account["holds"]:
                evidence.open_holds.append(
                    {"user": account["_id"], "id": hold["id"], "amount": hold["amount"], "expires": hold["expiresAt"]}
                )
        usage: dict[str, dict[str, int]] = defaultdict(dict)
        async for page in db["usage"].find({}):
            for record in page["records"]:
                usage[record.get("request_id") or "?"][record["_id"]] = record["credits"]
        evidence.usage = {rid: list(records.values()) for rid, records in usage.items()}
        async for job in db["image_jobs"].find({}):
            evidence.jobs[job["_id"]] = {
                "status": job["status"],
                "reservation": job.get("reservationId"),
                "charged": job.get("charged", 0),
                "image": job.get("imageId"),
                "orphan": (job.get("orphan") or {}).get("key"),
            }
        async for image in db["images"].find({}):
            evidence.images[image["_id"]] = {
                "job": image.get("jobId"),
                "status": image.get("status"),
                "key": (image.get("storage") or {}).get("key"),
            }
    finally:
        await client.close()


async def stored_files(simulator_url: str) -> list[str]:
    async with httpx.AsyncClient(timeout=10) as http:
        return list((await http.get(f"{simulator_url}/_sim/cloudinary/assets")).json()["public_ids"])


async def run_reconcile(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """`make reconcile`, as an operator runs it, against the soak's database."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "credits.reconcile"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        return done.returncode or 2, {"error": (done.stdout + done.stderr)[-2000:]}
