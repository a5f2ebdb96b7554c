"""The prompt cache's key: what makes two requests the same question.

Normalisation rule (documented in docs/architecture.md, "Prompt cache"; change CACHE_KEY_VERSION when it changes):
- the model is the resolved one (the service default filled in), compared exactly;
- messages keep their order, roles and exact text: no trimming, case folding or Unicode
  normalisation, since any of those can change an answer;
- generation parameters are part of the key; an absent one stays absent (it is not replaced
  by a guessed provider default), and numbers are compared by value, so `1` and `1.0` match;
- whether the answer is streamed is not part of it (the same answer, delivered differently);
- the scope is part of it: `user:<id>` by default, so one user's answers are never served to,
  timed by or replaced by another; `shared` only where CHAT_CACHE_SCOPE widens it on purpose;
- the key is the SHA-256 of the canonical JSON of the above, so it never holds the text.
Two requests share a key only if every one of those is identical, so requests that could get
different answers are never merged."""

from __future__ import annotations

import hashlib
import json

from chat.providers.base import ProviderRequest

CACHE_KEY_VERSION = 2


def cache_key(request: ProviderRequest, *, scope: str) -> str:
    canonical = {
        "v": CACHE_KEY_VERSION,
        "scope": scope,
        "model": request.model,
        "messages": [[m.role, m.content] for m in request.messages],
        "temperature": None if request.temperature is None else float(request.temperature),
        "top_p": None if request.top_p is None else float(request.top_p),
        "max_tokens": request.max_tokens,
    }
    encoded = json.dumps(canonical, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()
