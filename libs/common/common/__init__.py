"""Infrastructure every service shares, and nothing else: settings, bus, contracts, errors,
logging and telemetry. It never imports a service."""

from common.settings import CommonSettings

__all__ = ["CommonSettings"]
