"""The README's settings table names every setting the services read."""

from pathlib import Path

import pytest

from chat.settings import ChatSettings
from credits.settings import CreditsSettings
from gateway.settings import GatewaySettings
from imagegen.settings import ImagegenSettings

pytestmark = pytest.mark.unit

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("settings", [GatewaySettings, ChatSettings, CreditsSettings, ImagegenSettings])
def test_every_setting_is_documented(settings: type) -> None:
    missing = [name.upper() for name in settings.model_fields if f"`{name.upper()}`" not in README]
    assert not missing, f"README settings table lacks {missing}"
