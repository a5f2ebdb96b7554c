"""Tool call ids that carry what their provider needs back with the call.

Gemini's thinking models sign each function call they make (`thoughtSignature`, opaque bytes)
and, from Gemini 3 on, refuse a conversation whose function calls come back without their
signature. An OpenAI client keeps nothing of a tool call but its id, name and arguments (and
echoes the id in the `tool` message that answers it), so the signature travels in the id:
`<id>__thought__<signature, base64url>`. The Gemini provider writes and reads that form; a
provider that knows nothing of signatures (OpenAI, after a failover) is sent the plain id."""

from __future__ import annotations

import base64
import binascii

MARK = "__thought__"


def signed(call_id: str, signature: bytes | None) -> str:
    """`call_id` carrying `signature` (as it is when there is none)."""
    if not signature:
        return call_id
    return f"{call_id}{MARK}{base64.urlsafe_b64encode(signature).decode()}"


def split(call_id: str) -> tuple[str, bytes | None]:
    """The plain id and the signature a call id carries (None: none, or one that does not decode)."""
    plain, mark, encoded = call_id.partition(MARK)
    if not mark:
        return call_id, None
    try:
        return plain, base64.urlsafe_b64decode(encoded.encode()) or None
    except (binascii.Error, ValueError):
        return plain, None


def plain(call_id: str) -> str:
    return call_id.partition(MARK)[0]
