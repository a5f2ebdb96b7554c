"""What the simulated models answer beyond plain text, the same for every provider: a value
matching a JSON Schema (tool arguments, structured output), the text after a tool's result,
the other choices of a request for several, and the tokens an image counts for."""

from __future__ import annotations

import json
from typing import Any

# What the simulated OpenAI counts an image as: its low-detail figure, else a 1024 px image at high detail.
OPENAI_IMAGE_TOKENS = {"low": 85, "high": 765, "auto": 765}
# Gemini counts an image up to 384 px a side as 258 tokens (larger ones per 768 px tile).
GEMINI_IMAGE_TOKENS = 258
_DEPTH = 8


def instance(schema: Any, defs: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A value that matches `schema` (JSON Schema, or Gemini's upper-case OpenAPI subset); every
    property of an object is filled in, as a strict schema requires."""
    if not isinstance(schema, dict) or depth > _DEPTH:
        return "sample"
    if defs is None:
        defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return instance(defs.get(ref.rsplit("/", 1)[-1]), defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or [] if isinstance(o, dict) and _type(o) != "null"]
        if options:
            return instance(options[0], defs, depth + 1)
    kind = _type(schema)
    if kind == "object" or (kind is None and isinstance(schema.get("properties"), dict)):
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        return {str(name): instance(sub, defs, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        count = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 1
        return [instance(schema.get("items"), defs, depth + 1) for _ in range(max(count, 1))]
    if kind == "integer":
        return _number(schema, 1)
    if kind == "number":
        return _number(schema, 1.5)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    least = schema.get("minLength") if isinstance(schema.get("minLength"), int) else 0
    return "sample".ljust(least, "x")


def _type(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    return kind.lower() if isinstance(kind, str) else None


def _number(schema: dict[str, Any], default: float) -> float:
    low = schema.get("minimum")
    return low if isinstance(low, int | float) and not isinstance(low, bool) else default


def arguments(parameters: Any) -> str:
    """Arguments for a function call, as JSON text: an object matching its parameters' schema."""
    value = instance(parameters) if isinstance(parameters, dict) and parameters else {}
    return json.dumps(value if isinstance(value, dict) else {}, separators=(",", ":"))


def after_tool(provider: str, results: list[str]) -> str:
    """The answer to a conversation whose last turn is tool results."""
    return f"Simulated {provider} answer from the tool results: {' | '.join(r.strip() for r in results)}"


def choice_text(answer: str, index: int) -> str:
    """The text of choice `index` of a request for several: the first is the plain answer."""
    return answer if index == 0 else f"{answer} (choice {index + 1})"


def seen(answer: str, images: int) -> str:
    return f"{answer} [{images} image{'s' if images != 1 else ''} seen]" if images else answer


def cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """`text` up to the first stop sequence (excluded); the flag says whether one was met."""
    at = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:at], True) if at >= 0 else (text, False)
