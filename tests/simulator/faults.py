"""Fault knobs: one-shot failures queued per provider, and persistent per-provider settings.

A fault spec is the JSON object posted to `POST /_sim/faults` (or passed to `Simulator.add_fault`):

- `{"provider": "gemini", "status": 503, "times": 2}`: the next 2 calls fail with 503 in the provider's
  error format; `"retry_after": 1` adds a `Retry-After` header, `"message"` sets the error text.
- `{"provider": "gemini", "hang": true, "times": 1}`: the next call gets no answer for `hang_s` seconds
  (default 60) or until the client disconnects (or the simulator is reset / stopped).
- `{"provider": "openai", "malformed": true, "times": 1}`: 200 with a truncated JSON body (SSE for streams).
- `{"provider": "replicate", "fail_prediction": true, "times": 1}`: the next created prediction ends `failed`.
- `{"endpoint": "images.generations", ...}` limits a one-shot fault to one endpoint of the provider.
- `"times": -1` keeps a one-shot fault until reset.
- Persistent settings, kept until reset: `latency_ms` (added before every answer),
  `latency_ms_per_1k_tokens` (added per 1,000 words of the request body, as a real model takes
  longer over a longer prompt), `processing_s` (Replicate prediction run time), `stream_delay_ms`
  (pause between stream chunks).

One-shot faults of a provider are used in the order they were added; a call takes the first one that
applies to its endpoint.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field

PROVIDERS = ("gemini", "openai", "replicate", "cloudinary")
_ONE_SHOT = ("status", "hang", "malformed", "fail_prediction")
_SETTINGS = ("latency_ms", "latency_ms_per_1k_tokens", "processing_s", "stream_delay_ms")
_KNOWN = {"provider", "times", "endpoint", "retry_after", "message", "hang_s", *_ONE_SHOT, *_SETTINGS}


@dataclass
class Fault:
    """A failure the next `times` matching calls of `provider` get."""

    provider: str
    times: int = 1
    endpoint: str | None = None
    status: int | None = None
    retry_after: float | None = None
    message: str | None = None
    hang: bool = False
    hang_s: float = 60.0
    malformed: bool = False
    fail_prediction: bool = False

    def applies_to(self, endpoint: str, *, prediction: bool) -> bool:
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        return self.fail_prediction if prediction else not self.fail_prediction


@dataclass
class Settings:
    """Persistent knobs of one provider; None means the simulator's default."""

    latency_ms: float = 0.0
    latency_ms_per_1k_tokens: float = 0.0
    processing_s: float | None = None
    stream_delay_ms: float | None = None


@dataclass
class FaultBook:
    """Thread-safe store of queued faults and settings (the server thread reads, tests write)."""

    _faults: list[Fault] = field(default_factory=list)
    _settings: dict[str, Settings] = field(default_factory=lambda: {p: Settings() for p in PROVIDERS})
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, spec: dict[str, object]) -> None:
        """Apply one fault spec; ValueError when it is not understood."""
        provider = spec.get("provider")
        if provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}; got {provider!r}")
        unknown = sorted(set(spec) - _KNOWN)
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(unknown)}")
        one_shot = [key for key in _ONE_SHOT if spec.get(key) not in (None, False)]
        settings = {key: spec[key] for key in _SETTINGS if spec.get(key) is not None}
        if not one_shot and not settings:
            raise ValueError(f"a fault needs one of {', '.join(_ONE_SHOT + _SETTINGS)}")
        for key, value in settings.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{key} must be a non-negative number")
        fault = _fault(str(provider), spec) if one_shot else None
        with self._lock:
            current = self._settings[str(provider)]
            for key, value in settings.items():
                setattr(current, key, float(value))
            if fault is not None:
                self._faults.append(fault)

    def take(self, provider: str, endpoint: str, *, prediction: bool = False) -> Fault | None:
        """Use up one matching fault, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.provider == provider and fault.applies_to(endpoint, prediction=prediction):
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return Fault(**asdict(fault))
        return None

    def settings(self, provider: str) -> Settings:
        with self._lock:
            return Settings(**asdict(self._settings[provider]))

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "faults": [asdict(f) for f in self._faults],
                "settings": {p: asdict(s) for p, s in self._settings.items()},
            }

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._settings = {p: Settings() for p in PROVIDERS}


def _fault(provider: str, spec: dict[str, object]) -> Fault:
    times = spec.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times == 0 or times < -1:
        raise ValueError("times must be a positive integer, or -1 for 'until reset'")
    status = spec.get("status")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise ValueError("status must be an HTTP error status (400-599)")
    retry_after = spec.get("retry_after")
    if retry_after is not None and (not isinstance(retry_after, int | float) or retry_after < 0):
        raise ValueError("retry_after must be a non-negative number of seconds")
    hang_s = spec.get("hang_s", 60.0)
    if not isinstance(hang_s, int | float) or hang_s <= 0:
        raise ValueError("hang_s must be a positive number of seconds")
    if spec.get("fail_prediction") and provider != "replicate":
        raise ValueError("fail_prediction only applies to replicate")
    endpoint, message = spec.get("endpoint"), spec.get("message")
    return Fault(
        provider=provider,
        times=times,
        endpoint=None if endpoint is None else str(endpoint),
        status=status,
        retry_after=None if retry_after is None else float(retry_after),
        message=None if message is None else str(message),
        hang=bool(spec.get("hang")),
        hang_s=float(hang_s),
        malformed=bool(spec.get("malformed")),
        fail_prediction=bool(spec.get("fail_prediction")),
    )
