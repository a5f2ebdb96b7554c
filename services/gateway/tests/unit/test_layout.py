"""The gateway's layers import downwards: the middleware and what it needs (http/, auth/,
ratelimit/, idempotency/) never import a route module, directly or through another module."""

from __future__ import annotations

import grimp
import pytest

pytestmark = pytest.mark.unit

LAYERS = ("gateway.http", "gateway.auth", "gateway.ratelimit", "gateway.idempotency")
ROUTES = ("gateway.routes", "gateway.openai.chat", "gateway.openai.images")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("gateway")


@pytest.mark.parametrize("layer", LAYERS)
def test_no_middleware_layer_imports_a_route_module(graph: grimp.ImportGraph, layer: str) -> None:
    for routes in ROUTES:
        chain = graph.find_shortest_chain(importer=layer, imported=routes, as_packages=True)
        assert chain is None, f"{layer} reaches {routes}: {' -> '.join(chain or ())}"


def test_the_check_sees_an_import_chain(graph: grimp.ImportGraph) -> None:
    assert graph.find_shortest_chain(importer="gateway.app", imported="gateway.routes.chat") is not None
