"""Chat's metrics: provider calls, fallbacks, circuit state and the prompt cache."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PROVIDER_CALLS = Counter(
    "aisaas_provider_calls_total",
    "Provider calls by provider and outcome (ok, error, timeout).",
    ["provider", "outcome"],
)
PROVIDER_SECONDS = Histogram(
    "aisaas_provider_call_seconds",
    "Time of one provider call (for a stream: until it opened).",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
FALLBACKS = Counter(
    "aisaas_provider_fallbacks_total", "Requests passed on to the next provider after one failed.", ["failed"]
)
CIRCUIT = Gauge(
    "aisaas_provider_circuit_state", "Circuit breaker per provider: 0 closed, 1 half-open, 2 open.", ["provider"]
)
CACHE = Counter(
    "aisaas_prompt_cache_lookups_total",
    "Prompt cache lookups by result (hit, miss, unavailable: Redis unreachable, answered uncached).",
    ["result"],
)

CIRCUIT_VALUE = {"closed": 0, "half_open": 1, "open": 2}

EARLY_CALLS = Counter(
    "aisaas_chat_early_calls_total",
    "Provider calls started while the request's hold was written, by fate (used; discarded: the hold was refused).",
    ["outcome"],
)
