"""Prompt size limit: a chat or image request whose prompt text is longer than
MAX_PROMPT_CHARS is refused with 413 before it reaches a route, a queue or a provider.

The body limit (MAX_BODY_BYTES) bounds bytes; this bounds what a provider would be asked to
read, whatever the request's shape: chat `messages[].content` (a string or OpenAI-style
parts with `text`), and `prompt`, `negative_prompt`, `system` or `instructions` strings.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from common.errors import PayloadTooLarge
from gateway.http.body import read_body, replaying
from gateway.http.errors import send_error
from gateway.http.json_body import loads, remember
from gateway.ratelimit.policy import group_of

_TEXT_FIELDS = ("prompt", "negative_prompt", "system", "instructions")


def prompt_chars(body: Any) -> int:
    """Characters of prompt text in a parsed request body (0 for anything unrecognised)."""
    if not isinstance(body, dict):
        return 0
    total = sum(len(body[f]) for f in _TEXT_FIELDS if isinstance(body.get(f), str))
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                total += len(content)
            elif isinstance(content, list):
                total += sum(len(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return total


class PromptLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_chars: int) -> None:
        self.app = app
        self.max_chars = max_chars

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or group_of(scope["method"], scope["path"]) is None:
            await self.app(scope, receive, send)
            return
        body, ended = await read_body(receive)
        size = 0
        if body:
            try:
                value = loads(body)
            except ValueError:
                pass  # not JSON, or nested too deep: the route refuses it with 422
            else:
                remember(scope, body, value)  # decoded once: the route and idempotency reuse it
                size = prompt_chars(value)
        if size > self.max_chars:
            error = PayloadTooLarge(
                f"the prompt is {size} characters; at most {self.max_chars} are accepted",
                prompt_chars=size,
                max_prompt_chars=self.max_chars,
            )
            await send_error(scope, receive, send, error)
            return
        await self.app(scope, replaying(body, ended, receive), send)
