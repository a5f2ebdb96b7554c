"""Rate-limit policy, with no IO: which budget a request draws on, how big it is, and how the
outcome is told to the client in the IETF RateLimit header fields
(draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy: "chat";q=30;w=60` and
`RateLimit: "chat";r=29;t=60`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from limits import parse

from common.contracts import Role

# Where a request's rate-limit outcomes are kept in its ASGI state, for the response's header fields.
OUTCOMES = "ratelimits"
RATELIMIT_FIELDS = frozenset({b"ratelimit", b"ratelimit-policy"})
# A group is a family of expensive requests with a budget of its own, by path prefix.
GROUPS: dict[str, str] = {"chat": "/v1/chat", "images": "/v1/images"}
# Paths outside those prefixes that draw on a group's budget: embeddings are tokens priced as chat's.
MEMBERS: dict[str, str] = {"/v1/embeddings": "chat"}
# Only requests that make work (POST) draw on a group's budget; reads, polls and deletes are
# held by the per-IP budget.
_SPENDING_METHODS = frozenset({"POST"})


@dataclass(frozen=True, slots=True)
class Budget:
    """`limit` requests in any sliding window of `window_s` seconds."""

    name: str
    limit: int
    window_s: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """One check's result: `remaining` after this request, `reset_s` until a unit frees up."""

    budget: Budget
    allowed: bool
    remaining: int
    reset_s: float

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.reset_s))


def parse_budget(text: str, *, name: str = "budget") -> Budget:
    """`"30/minute"`, `"5 per second"`, `"100/2 hours"`: the `limits` library's notation."""
    try:
        item = parse(text)
    except ValueError as exc:
        raise ValueError(f"not a rate limit: {text!r} (write e.g. '30/minute')") from exc
    if item.amount < 1:
        raise ValueError(f"a rate limit allows at least one request: {text!r}")
    return Budget(name=name, limit=item.amount, window_s=item.get_expiry())


def group_of(method: str, path: str) -> str | None:
    """The group whose budget this request draws on, if any."""
    if method not in _SPENDING_METHODS:
        return None
    if path in MEMBERS:
        return MEMBERS[path]
    for group, prefix in GROUPS.items():
        if path == prefix or path.startswith(prefix + "/"):
            return group
    return None


def parse_budgets(limits: dict[str, dict[Role, str]]) -> dict[tuple[str, Role], Budget]:
    """RATE_LIMITS as budgets by (group, role); a role without an entry is not limited in that group."""
    return {
        (group, role): parse_budget(text, name=group)
        for group, by_role in limits.items()
        for role, text in by_role.items()
    }


def policy_header(outcomes: list[Outcome]) -> str:
    return ", ".join(f'"{o.budget.name}";q={o.budget.limit};w={o.budget.window_s}' for o in outcomes)


def ratelimit_header(outcomes: list[Outcome]) -> str:
    return ", ".join(f'"{o.budget.name}";r={o.remaining};t={math.ceil(o.reset_s)}' for o in outcomes)


def ratelimit_fields(outcomes: list[Outcome]) -> list[tuple[bytes, bytes]]:
    """The RateLimit-Policy and RateLimit header fields for the checks a request passed (raw)."""
    if not outcomes:
        return []
    return [
        (b"ratelimit-policy", policy_header(outcomes).encode("latin-1")),
        (b"ratelimit", ratelimit_header(outcomes).encode("latin-1")),
    ]
