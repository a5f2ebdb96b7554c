from __future__ import annotations

from common.settings import CommonSettings


class ImagegenSettings(CommonSettings):
    service_name: str = "imagegen"
