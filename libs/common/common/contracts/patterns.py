"""Pieces of the regular expressions the contracts and HTTP bodies state as `pattern`s.

A pattern is read by several dialects: pydantic's (Rust `regex`, whose `\\s` is Unicode's
White_Space and counts U+0085 and U+001C-U+001F), Python's, and the OpenAPI document's
readers (ECMAScript, whose `\\s` counts U+FEFF but not U+0085). `[^\\s]` means a different set
to each, so a client generated from the document, or a fuzzer, would meet refusals of values
the schema allows. These classes are written out instead, and mean the same to all three."""

from __future__ import annotations

# Whitespace and control characters, in any of the dialects (the inside of a character class).
_INVISIBLE = r"\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# One character that is neither.
VISIBLE = rf"[^{_INVISIBLE}]"
# The same, and not `@` (the two halves of an email address).
VISIBLE_NOT_AT = rf"[^@{_INVISIBLE}]"
EMAIL = rf"^{VISIBLE_NOT_AT}+@{VISIBLE_NOT_AT}+$"
