"""Rate limits as ASGI middleware, in two places of the stack:

- `ClientRateLimitMiddleware`, before authentication: every request (but health probes and
  CORS preflights) counts against its client IP's budget (RATE_LIMIT_IP), so token guessing
  and floods are held before any work.
  It also writes the RateLimit/RateLimit-Policy headers for every check the request passed.
- `UserRateLimitMiddleware`, after authentication: a POST under /v1/chat* or /v1/images*
  counts against its user's budget for that group, sized by the user's role (RATE_LIMITS).

Over budget: 429 problem+json with Retry-After. Requests without a valid token are not
counted per user (they get 401 from the route), only per IP.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.contracts import Actor, Role
from common.errors import PlatformError, RateLimited
from common.metrics import RATE_LIMITED
from gateway.asgi import send_problem
from gateway.quotas import Budget, Outcome, group_of, parse_budgets, policy_header, ratelimit_header
from gateway.ratelimit import RateLimiter

_OUTCOMES = "ratelimits"
# Health probes are never limited: an orchestrator must always be able to ask.
PROBES = frozenset({"/healthz", "/readyz"})


def _limiter(scope: Scope) -> RateLimiter:
    limiter: RateLimiter = scope["app"].state.limiter
    return limiter


async def _count(scope: Scope, receive: Receive, send: Send, key: str, budget: Budget) -> bool:
    """Check one budget; answer 429 (or 503 when the limiter is closed) and return False when refused."""
    try:
        outcome = await _limiter(scope).check(key, budget)
    except PlatformError as exc:
        await send_problem(scope, receive, send, exc)
        return False
    scope.setdefault("state", {}).setdefault(_OUTCOMES, []).append(outcome)
    if outcome.allowed:
        return True
    RATE_LIMITED.labels(budget.name).inc()
    error = RateLimited(
        f"the {budget.name} budget of {budget.limit} requests per {budget.window_s}s is used up",
        limit=budget.name,
        retry_after=outcome.retry_after_s,
    )
    await send_problem(scope, receive, send, error, {"Retry-After": str(outcome.retry_after_s)})
    return False


class ClientRateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, budget: Budget) -> None:
        self.app = app
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcomes: list[Outcome] = scope.get("state", {}).get(_OUTCOMES, [])
                if outcomes:
                    headers = MutableHeaders(scope=message)
                    headers["RateLimit-Policy"] = policy_header(outcomes)
                    headers["RateLimit"] = ratelimit_header(outcomes)
            await send(message)

        if await _count(scope, receive, send_with_headers, f"ip:{address}", self.budget):
            await self.app(scope, receive, send_with_headers)


class UserRateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limits: dict[str, dict[Role, str]]) -> None:
        self.app = app
        self.budgets = parse_budgets(limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            group = group_of(scope["method"], scope["path"])
            state: dict[str, Any] = scope.get("state", {})
            actor: Actor | None = state.get("actor")
            budget = self.budgets.get((group, actor.role)) if group and actor else None
            if (
                budget is not None
                and actor is not None
                and not await _count(scope, receive, send, f"user:{actor.id}", budget)
            ):
                return
        await self.app(scope, receive, send)
