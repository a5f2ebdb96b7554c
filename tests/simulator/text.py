"""Deterministic generated text: the answer to a prompt, its stream chunks and rough token counts."""

from __future__ import annotations

import re

_WORD = re.compile(r"\S+\s*")


def answer(provider: str, prompt: str) -> str:
    """The simulated model's reply: the same prompt always gives the same text."""
    return f"Simulated {provider} answer to: {prompt.strip() or '(empty prompt)'}"


def count_tokens(*texts: str) -> int:
    """Rough token count: whitespace-separated words."""
    return sum(len(text.split()) for text in texts)


def truncate(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """Cut `text` to `max_tokens` words; the flag says whether it was cut."""
    if max_tokens is None or max_tokens <= 0:
        return text, False
    pieces = _WORD.findall(text)
    if len(pieces) <= max_tokens:
        return text, False
    return "".join(pieces[:max_tokens]).rstrip(), True


def chunks(text: str) -> list[str]:
    """Stream pieces: one word each (with its trailing space), joined they give `text` back."""
    return _WORD.findall(text) or [text]
