"""Call log: what reached the simulator, counted per provider and per endpoint. A chat call's
entry also holds the conversation it was sent (`messages`: role and text of each, in order)."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

from tests.simulator.faults import PROVIDERS


class CallLog:
    """Thread-safe counters plus the most recent calls (oldest first)."""

    def __init__(self, keep: int = 500) -> None:
        self._lock = threading.Lock()
        self._keep = keep
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._counts: Counter[tuple[str, str]] = Counter()
            self._recent: deque[dict[str, Any]] = deque(maxlen=self._keep)

    def record(self, provider: str, endpoint: str, method: str, path: str, model: str | None) -> dict[str, Any]:
        """Count one call; the returned entry is updated with the reply status once it is sent."""
        entry: dict[str, Any] = {
            "provider": provider,
            "endpoint": endpoint,
            "method": method,
            "path": path,
            "model": model,
            "time": time.time(),
            "status": None,
            "fault": None,
            "client_disconnected": None,
        }
        with self._lock:
            self._counts[provider, endpoint] += 1
            self._recent.append(entry)
        return entry

    def count(self, provider: str | None = None, endpoint: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (p, e), n in self._counts.items()
                if (provider is None or p == provider) and (endpoint is None or e == endpoint)
            )

    def recent(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._recent]

    def snapshot(self) -> dict[str, Any]:
        """`{"total", "providers": {name: {"total", "endpoints": {endpoint: n}}}, "recent": [...]}`."""
        with self._lock:
            providers: dict[str, dict[str, Any]] = {p: {"total": 0, "endpoints": {}} for p in PROVIDERS}
            for (provider, endpoint), n in sorted(self._counts.items()):
                providers[provider]["total"] += n
                providers[provider]["endpoints"][endpoint] = n
            return {
                "total": sum(self._counts.values()),
                "providers": providers,
                "recent": [dict(entry) for entry in self._recent],
            }
