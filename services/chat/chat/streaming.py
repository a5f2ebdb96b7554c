"""Sending an answer to a requester as it is produced, and metering what was delivered.

The last chunk (`last=True`, empty text) says no text follows; the requester then acknowledges
how many chunks it passed on to its client (or does so at once when its client leaves, which
stops the pump before the next chunk). Credits are charged on that count. Chunks go out without
waiting for the client, so a report that does not come in time counts every chunk sent as
delivered: the requester may still be relaying them to a client that paused its reading."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field

from chat.providers.base import ProviderAnswer, ProviderError, ProviderStream, count_tokens, pieces
from common.bus import ReplyStream
from common.contracts import ChatChunk, ChatMessage, FinishReason, Usage
from common.errors import DeadlineExceeded, PlatformError, UpstreamFailed

log = logging.getLogger(__name__)


@dataclass
class Pumped:
    """How a stream went: what was sent, what the requester says it delivered, how it ended."""

    sent: list[str] = field(default_factory=list)
    delivered: int = 0
    answer: ProviderAnswer | None = None
    finish: FinishReason = "stop"
    error: PlatformError | None = None
    provider_failed: bool = False
    timed_out: bool = False  # the provider's failure was a stall (maybe the request's own doing)

    @property
    def cancelled(self) -> bool:
        return self.finish == "cancelled"

    @property
    def complete(self) -> bool:
        return self.answer is not None and self.error is None and not self.cancelled

    @property
    def delivered_text(self) -> str:
        return "".join(self.sent[: self.delivered])


async def pump(
    source: ProviderStream,
    stream: ReplyStream,
    *,
    provider: str,
    model: str,
    cached: bool,
    deadline: float,
    idle_timeout_s: float,
    ack_timeout_s: float,
) -> Pumped:
    """Forward `source`'s pieces as chunks until it ends, fails, the deadline passes or the requester leaves."""
    out = Pumped()

    def chunk(delta: str, *, last: bool = False) -> ChatChunk:
        finish = out.finish if last else None
        return ChatChunk(
            index=len(out.sent),
            delta=delta,
            last=last,
            finish_reason=finish,
            provider=provider,
            model=model,
            cached=cached,
        )

    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded("the answer did not finish before the deadline")
            async with asyncio.timeout(min(idle_timeout_s, left)):
                item = await anext(source, None)
            if item is None:
                raise ProviderError(provider, "stream ended without its final answer", retryable=False)
            if isinstance(item, ProviderAnswer):
                out.answer, out.finish = item, item.finish_reason
                break
            if stream.delivered_now() is not None:
                out.finish = "cancelled"
                break
            await stream.send(chunk(item))
            out.sent.append(item)
    except (ProviderError, TimeoutError) as exc:
        detail = exc.detail if isinstance(exc, ProviderError) else "stalled mid-stream"
        out.error, out.finish, out.provider_failed = UpstreamFailed(f"{provider}: {detail}"), "error", True
        out.timed_out = exc.timed_out if isinstance(exc, ProviderError) else True
    except DeadlineExceeded as exc:
        out.error, out.finish = exc, "error"
    finally:
        await source.aclose()
    await stream.send(chunk("", last=True))
    delivered = stream.delivered_now()
    if delivered is None:
        delivered = await stream.delivered(within_s=ack_timeout_s)
    if delivered is None:
        log.warning("no delivery report from the requester; charging all that was sent", extra={"sent": len(out.sent)})
        delivered = len(out.sent)
    out.delivered = min(delivered, len(out.sent))
    return out


async def replay(answer: ProviderAnswer) -> ProviderStream:
    """A stored answer as a stream: its words (none for tool calls alone), then the answer."""
    for piece in pieces(answer.text) if answer.text else ():
        yield piece
    yield answer


def delivered_usage(out: Pumped, messages: tuple[ChatMessage, ...]) -> Usage:
    """Tokens of what reached the client: the provider's figures when all of it did, else the
    delivered share of them (or a word count when the provider never reported any)."""
    answer = out.answer
    prompt = answer.prompt_tokens if answer else sum(count_tokens(m.content) for m in messages)
    if answer is not None and out.delivered >= len(out.sent) and not out.cancelled:
        completion = answer.completion_tokens
    else:
        whole, delivered = "".join(out.sent), out.delivered_text
        if answer is not None and whole:
            completion = math.ceil(answer.completion_tokens * len(delivered) / len(whole))
        else:
            completion = count_tokens(delivered)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def produced_usage(out: Pumped, messages: tuple[ChatMessage, ...]) -> Usage:
    """Tokens the provider produced (what it bills), delivered or not."""
    if out.answer is not None:
        a = out.answer
        return Usage(
            prompt_tokens=a.prompt_tokens,
            completion_tokens=a.completion_tokens,
            total_tokens=a.prompt_tokens + a.completion_tokens,
        )
    prompt = sum(count_tokens(m.content) for m in messages)
    completion = count_tokens("".join(out.sent))
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)
