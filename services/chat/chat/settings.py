from __future__ import annotations

from pydantic import Field

from common.settings import CommonSettings


class ChatSettings(CommonSettings):
    service_name: str = "chat"
    default_model: str = Field("local-echo-1", description="Model used when a request names none.")
