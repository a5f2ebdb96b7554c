from __future__ import annotations

from common.settings import CommonSettings


class CreditsSettings(CommonSettings):
    service_name: str = "credits"
