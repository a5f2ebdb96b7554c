"""The documentation stays true where a test can tell: the settings table names every setting
the services read, the API's routes table lists exactly the gateway's routes, and every link
of the README and docs/ leads somewhere in the repository (or to PyPI or an RFC)."""

import re
from pathlib import Path

import pytest
from fastapi.routing import iter_route_contexts

from chat.settings import ChatSettings
from credits.settings import CreditsSettings
from gateway.app import create_app
from gateway.settings import GatewaySettings
from imagegen.settings import ImagegenSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SETTINGS = (DOCS / "settings.md").read_text()
API = (DOCS / "api.md").read_text()
LINK = re.compile(r"\]\(([^)\s]+)\)")
OUTSIDE = ("https://pypi.org/", "https://www.rfc-editor.org/")


@pytest.mark.parametrize("settings", [GatewaySettings, ChatSettings, CreditsSettings, ImagegenSettings])
def test_every_setting_is_documented(settings: type) -> None:
    missing = [name.upper() for name in settings.model_fields if f"`{name.upper()}`" not in SETTINGS]
    assert not missing, f"docs/settings.md lacks {missing}"


def documented_routes(text: str) -> set[tuple[str, str]]:
    """(method, path) of every row of the "Routes" table: a row may list several of each."""
    table = text.split("\n## Routes\n", 1)[1].split("\n## ", 1)[0]
    routes = set()
    for row in table.splitlines():
        cells = row.split(" | ")
        if not row.startswith("| `") or len(cells) < 3:
            continue
        methods, paths = (re.findall(r"`([^`]+)`", cell) for cell in cells[:2])
        routes |= {(method, path) for method in methods for path in paths}
    return routes


def served_routes(tmp_path: Path) -> set[tuple[str, str]]:
    settings = GatewaySettings(environment="development", dev_issuer_key_file=tmp_path / "key.pem")
    routes = set()
    for route in iter_route_contexts(create_app(settings).routes):
        path = re.sub(r"{(\w+):\w+}", r"{\1}", route.path)  # `{thread_id:uuid}` is `{thread_id}` to a client
        methods = set(route.methods or ())
        routes |= {(method, path) for method in methods - ({"HEAD"} if "GET" in methods else set())}
    return routes


def test_the_routes_table_lists_exactly_the_gateways_routes(tmp_path: Path) -> None:
    documented, served = documented_routes(API), served_routes(tmp_path)
    assert len(served) > 30
    assert not served - documented, f"docs/api.md lacks {sorted(served - documented)}"
    assert not documented - served, f"docs/api.md lists routes the gateway lacks: {sorted(documented - served)}"


def test_a_route_missing_from_the_table_is_found(tmp_path: Path) -> None:
    without_chat = API.replace("| `POST` | `/v1/chat` |", "| `POST` | `/v1/chats` |")
    assert documented_routes(without_chat) != served_routes(tmp_path)


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_every_link_leads_somewhere(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if target.startswith("http"):
            assert target.startswith(OUTSIDE), f"{page.name} links outside the repository: {target}"
            continue
        path = target.split("#", 1)[0]
        assert not path or (page.parent / path).resolve().exists(), f"{page.name}: {target} does not exist"
        assert (page.parent / path).resolve().is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
