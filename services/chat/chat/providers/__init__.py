"""Outbound chat providers, one module each, behind the ChatProvider interface."""

from chat.providers.base import ChatProvider, ProviderAnswer, ProviderError, ProviderRequest
from chat.providers.local import LocalProvider

__all__ = ["ChatProvider", "LocalProvider", "ProviderAnswer", "ProviderError", "ProviderRequest"]
