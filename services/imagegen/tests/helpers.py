"""Helpers for imagegen tests: talk to the in-process service as the gateway would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from common.bus import RpcClient
from common.contracts import Actor, Balance, Caller, GenerateImage, GetBalance, GetImageJob, ImageJob
from tests.support.waiting import wait_until

ALICE = Actor(id="user_alice", email="alice@example.com", role="user")
BOB = Actor(id="user_bob", email="bob@example.com", role="user")
ADMIN = Actor(id="user_admin", email="admin@example.com", role="admin")


def caller(actor: Actor | None = ALICE, *, seconds: float = 10) -> Caller:
    return Caller(
        request_id=f"req-{uuid.uuid4().hex[:12]}", actor=actor, deadline=datetime.now(UTC) + timedelta(seconds=seconds)
    )


def generate(
    prompt: str = "a red lighthouse", *, job_id: uuid.UUID | None = None, job_s: float = 30, **fields: Any
) -> GenerateImage:
    deadline = datetime.now(UTC) + timedelta(seconds=job_s)
    return GenerateImage(job_id=job_id or uuid.uuid4(), prompt=prompt, deadline=deadline, **fields)


async def submit(rpc: RpcClient, payload: GenerateImage, actor: Actor = ALICE) -> ImageJob:
    return await rpc.call(caller(actor).envelope(payload), reply_model=ImageJob)


async def job_of(rpc: RpcClient, job_id: uuid.UUID, actor: Actor | None = ALICE) -> ImageJob:
    return await rpc.call(caller(actor).envelope(GetImageJob(job_id=job_id)), reply_model=ImageJob)


async def finished(rpc: RpcClient, job_id: uuid.UUID, *, within: float = 15) -> ImageJob:
    return await wait_until(lambda: job_of(rpc, job_id), lambda j: j.status in ("succeeded", "failed"), within=within)


async def balance(rpc: RpcClient, actor: Actor = ALICE) -> Balance:
    return await rpc.call(caller(actor).envelope(GetBalance(user_id=actor.id, email=actor.email)), reply_model=Balance)


async def settled(rpc: RpcClient, actor: Actor = ALICE, *, within: float = 10) -> Balance:
    """The balance once no credits are held any more."""
    return await wait_until(lambda: balance(rpc, actor), lambda b: b.reserved == 0, within=within)
