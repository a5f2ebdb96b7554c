"""The prompt cache's key: what makes two requests the same question.

Normalisation rule (documented in docs/architecture.md, "Prompt cache"; change CACHE_KEY_VERSION when it changes):
- the model is the resolved one (the service default filled in), compared exactly;
- messages keep their order, roles and exact text: no trimming, case folding or Unicode
  normalisation, since any of those can change an answer; their images (URL and detail), tool
  calls (id, name, arguments) and the call a tool result answers are part of them;
- generation parameters are part of the key; an absent one stays absent (it is not replaced
  by a guessed provider default), and numbers are compared by value, so `1` and `1.0` match;
  so are the tools offered, the tool choice, the response format (its schema compared as
  canonical JSON), `n`, the stop sequences in order, the seed and the penalties (the client's
  `user` label is not: it does not change the answer);
- whether the answer is streamed is not part of it (the same answer, delivered differently);
- the scope is part of it: `user:<id>` by default, so one user's answers are never served to,
  timed by or replaced by another; `shared` only where CHAT_CACHE_SCOPE widens it on purpose;
- the key is the SHA-256 of the canonical JSON of the above, so it never holds the text.
Two requests share a key only if every one of those is identical, so requests that could get
different answers are never merged.

What is cached at all (`cacheable`): an answer with tool calls or structured output is acted on
by the client's code, so one sampled at random must not be handed out again as if it were the
answer: a request with tools or a JSON response format is cached only when it is deterministic
(temperature 0, or a seed)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from chat.providers.base import ProviderRequest
from common.contracts import ChatMessage

CACHE_KEY_VERSION = 3


def cacheable(request: ProviderRequest) -> bool:
    structured = request.response_format is not None and request.response_format.type != "text"
    if request.tools or structured:
        return request.temperature == 0 or request.seed is not None
    return True


def cache_key(request: ProviderRequest, *, scope: str) -> str:
    canonical = {
        "v": CACHE_KEY_VERSION,
        "scope": scope,
        "model": request.model,
        "messages": [_message(m) for m in request.messages],
        "temperature": _number(request.temperature),
        "top_p": _number(request.top_p),
        "max_tokens": request.max_tokens,
        "tools": [t.model_dump(mode="json") for t in request.tools],
        "tool_choice": request.tool_choice.model_dump(mode="json") if request.tool_choice else None,
        "response_format": request.response_format.model_dump(mode="json") if request.response_format else None,
        "n": request.n,
        "stop": list(request.stop),
        "seed": request.seed,
        "presence_penalty": _number(request.presence_penalty),
        "frequency_penalty": _number(request.frequency_penalty),
    }
    encoded = json.dumps(canonical, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)


def _message(m: ChatMessage) -> list[Any]:
    return [
        m.role,
        m.content,
        [[i.url, i.detail] for i in m.images],
        [[c.id, c.name, c.arguments] for c in m.tool_calls],
        m.tool_call_id,
    ]
