"""Rate limits and authentication as one ASGI layer, in this order:

1. every request (but health probes and CORS preflights) counts against its client IP's
   budget (RATE_LIMIT_IP), so token guessing and floods are held before any work;
2. the bearer token is verified and the caller recorded (see `auth.caller.record_caller`);
3. a POST under /v1/chat* or /v1/images* counts against its user's budget for that group,
   sized by the user's role (RATE_LIMITS).

When the caller is known without IO (a token verified lately, a user cached), 1 and 3 go to
Redis in one round trip, with the same outcome: the user's budget is counted only if the IP's
admitted the request. Otherwise the IP is counted before the token is looked at.

Over budget: 429 problem+json with Retry-After. Requests without a valid token are not
counted per user (they get 401 from the route), only per IP. Every response of a counted
request carries the RateLimit/RateLimit-Policy headers for the checks it passed (the outcomes
are kept in the request state; the request-context layer writes the fields).
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from common.contracts import Actor, Role
from common.errors import PlatformError, RateLimited
from gateway.auth.caller import bearer_token, known_caller, record_caller
from gateway.http.errors import send_error
from gateway.metrics import RATE_LIMITED
from gateway.ratelimit.policy import OUTCOMES, Budget, group_of, parse_budgets
from gateway.ratelimit.store import RateLimiter

# Health probes are never limited: an orchestrator must always be able to ask.
PROBES = frozenset({"/healthz", "/readyz"})


async def _count(scope: Scope, receive: Receive, send: Send, checks: list[tuple[str, Budget]]) -> bool:
    """Check these budgets in order; answer 429 (or 503 when the limiter is closed) and return
    False when one refuses."""
    limiter: RateLimiter = scope["app"].state.limiter
    try:
        outcomes = await limiter.check_all(checks)
    except PlatformError as exc:
        await send_error(scope, receive, send, exc)
        return False
    scope["state"].setdefault(OUTCOMES, []).extend(outcomes)
    last = outcomes[-1]
    if last.allowed:
        return True
    budget = last.budget
    RATE_LIMITED.labels(budget.name).inc()
    error = RateLimited(
        f"the {budget.name} budget of {budget.limit} requests per {budget.window_s}s is used up",
        limit=budget.name,
        retry_after=last.retry_after_s,
    )
    await send_error(scope, receive, send, error, {"Retry-After": str(last.retry_after_s)})
    return False


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, ip_budget: Budget, limits: dict[str, dict[Role, str]]) -> None:
        self.app = app
        self.ip_budget = ip_budget
        self.budgets = parse_budgets(limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        app_state = scope["app"].state
        token = bearer_token(scope["headers"])
        if scope["method"] == "OPTIONS" or scope["path"] in PROBES:
            await record_caller(state, app_state, token)
            await self.app(scope, receive, send)
            return

        client = scope.get("client")
        by_ip = (f"ip:{client[0] if client else 'unknown'}", self.ip_budget)
        group = group_of(scope["method"], scope["path"])
        known = known_caller(app_state, token) if token is not None else None
        if known is not None:
            state["actor"] = known
            checks = [by_ip, *self._by_user(group, known)]
            if not await _count(scope, receive, send, checks):
                return
        else:
            if not await _count(scope, receive, send, [by_ip]):
                return
            await record_caller(state, app_state, token)
            by_user = self._by_user(group, state.get("actor"))
            if by_user and not await _count(scope, receive, send, by_user):
                return
        await self.app(scope, receive, send)

    def _by_user(self, group: str | None, actor: Actor | None) -> list[tuple[str, Budget]]:
        budget = self.budgets.get((group, actor.role)) if group and actor else None
        return [(f"user:{actor.id}", budget)] if budget is not None and actor is not None else []
