"""The steady mixed load: uncached, cached and streamed chat, image jobs, balance and history
reads and admin grants, over many users, each answer recorded (request id, status, credits).

A request the gateway never answered (connection refused or cut: the gateway was killed) is
recorded with status None: its outcome is unknown to the client, so the invariants hold it to
"charged at most once", not to "charged nothing".
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

KINDS = ("chat", "chat_cached", "chat_stream", "image", "balance", "history", "grant")
WEIGHTS = (5, 3, 3, 2, 3, 2, 1)
REQUEST_TIMEOUT_S = 10  # X-Request-Timeout: what the client waits for an answer
GRANT = 7


@dataclass
class Answer:
    """One request and what came back."""

    kind: str
    user: str  # the user's id (JWT sub); for grants, who received them
    request_id: str
    started: float  # wall clock, seconds
    ended: float
    status: int | None = None  # None: no HTTP answer at all
    credits: int | None = None  # what the answer says it charged (chat) or granted (grant)
    job_id: str | None = None  # an image job accepted (202)
    key: str | None = None  # a grant's Idempotency-Key
    stream_error: str | None = None  # a stream that began (200) and ended with an error event
    detail: str | None = None  # the start of an unexpected answer

    @property
    def ok(self) -> bool:
        return self.status in (200, 202) and self.stream_error is None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class User:
    id: str
    email: str
    headers: dict[str, str]


@dataclass
class Recorder:
    answers: list[Answer] = field(default_factory=list)

    def add(self, answer: Answer) -> None:
        self.answers.append(answer)


def shares(workers: int) -> dict[str, int]:
    """Loops per kind, in proportion to WEIGHTS, at least one each: a kind's requests never wait
    behind another kind's (a chat stuck until its deadline does not hold up balance reads), so
    each kind's recovery after a fault is its own."""
    total = sum(WEIGHTS)
    return {k: max(1, round(workers * w / total)) for k, w in zip(KINDS, WEIGHTS, strict=True)}


class Load:
    """Loops per kind (see `shares`), each picking a user at random, until `stop` is set."""

    def __init__(
        self,
        *,
        base_url: str,
        users: list[User],
        admin: dict[str, str],
        recorder: Recorder,
        workers: int = 12,
        seed: int | None = None,
    ) -> None:
        self.base_url, self.users, self.admin, self.recorder, self.workers = base_url, users, admin, recorder, workers
        self.random = random.Random(seed)
        self.stop = asyncio.Event()

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=self.workers * 2, max_keepalive_connections=self.workers * 2)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=REQUEST_TIMEOUT_S + 10, limits=limits) as http:
            loops = [self._loop(http, kind) for kind, n in shares(self.workers).items() for _ in range(n)]
            await asyncio.gather(*loops)

    async def _loop(self, http: httpx.AsyncClient, kind: str) -> None:
        calls: dict[str, Callable[[httpx.AsyncClient, User, Answer], Any]] = {
            "chat": self._chat,
            "chat_cached": self._chat,
            "chat_stream": self._stream,
            "image": self._image,
            "balance": self._read,
            "history": self._read,
            "grant": self._grant,
        }
        while not self.stop.is_set():
            user = self.random.choice(self.users)
            answer = Answer(kind=kind, user=user.id, request_id=uuid.uuid4().hex, started=time.time(), ended=0.0)
            try:
                await calls[kind](http, user, answer)
            except httpx.TransportError as exc:
                answer.status, answer.detail = None, type(exc).__name__
            answer.ended = time.time()
            self.recorder.add(answer)
            if answer.status is None or answer.status >= 500:
                await asyncio.sleep(0.05)  # a client backs off a little from a server that is down

    def _headers(self, user: User, answer: Answer) -> dict[str, str]:
        return user.headers | {"X-Request-ID": answer.request_id, "X-Request-Timeout": str(REQUEST_TIMEOUT_S)}

    async def _chat(self, http: httpx.AsyncClient, user: User, answer: Answer) -> None:
        # Cached: a handful of prompts each user repeats (the cache is per user); uncached: unique.
        text = f"what is {self.random.randrange(3)}?" if answer.kind == "chat_cached" else f"tell me {uuid.uuid4().hex}"
        response = await http.post(
            "/v1/chat", json={"messages": [{"role": "user", "content": text}]}, headers=self._headers(user, answer)
        )
        answer.status = response.status_code
        if response.status_code == 200:
            answer.credits = int(response.json()["credits"])
        else:
            answer.detail = response.text[:200]

    async def _stream(self, http: httpx.AsyncClient, user: User, answer: Answer) -> None:
        body = {"messages": [{"role": "user", "content": f"stream {uuid.uuid4().hex}"}], "stream": True}
        async with http.stream("POST", "/v1/chat", json=body, headers=self._headers(user, answer)) as response:
            answer.status = response.status_code
            if response.status_code != 200:
                answer.detail = (await response.aread()).decode(errors="replace")[:200]
                return
            event = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "done":
                    answer.credits = int(json.loads(line.removeprefix("data: "))["credits"])
                elif line.startswith("data: ") and event == "error":
                    answer.stream_error = line.removeprefix("data: ")[:200]
            if answer.credits is None and answer.stream_error is None:
                answer.stream_error = "the stream ended without done or error"

    async def _image(self, http: httpx.AsyncClient, user: User, answer: Answer) -> None:
        response = await http.post(
            "/v1/images", json={"prompt": f"chaos {uuid.uuid4().hex[:12]}"}, headers=self._headers(user, answer)
        )
        answer.status = response.status_code
        if response.status_code == 202:
            answer.job_id = response.json()["id"]
        else:
            answer.detail = response.text[:200]

    async def _read(self, http: httpx.AsyncClient, user: User, answer: Answer) -> None:
        path = "/v1/credits" if answer.kind == "balance" else "/v1/credits/history?limit=20"
        response = await http.get(path, headers=self._headers(user, answer))
        answer.status = response.status_code
        if response.status_code != 200:
            answer.detail = response.text[:200]

    async def _grant(self, http: httpx.AsyncClient, user: User, answer: Answer) -> None:
        answer.key = uuid.uuid4().hex
        headers = self.admin | {"X-Request-ID": answer.request_id, "Idempotency-Key": answer.key}
        response = await http.post(
            "/v1/admin/credits/grants", json={"user_id": user.id, "amount": GRANT}, headers=headers
        )
        answer.status = response.status_code
        if response.status_code == 200:
            answer.credits = GRANT
        else:
            answer.detail = response.text[:200]
