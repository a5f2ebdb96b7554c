import importlib

import pytest

pytestmark = pytest.mark.unit

MODULES = ["common", "common.bus", "common.contracts"]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_explicit_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported)
    for symbol in exported:
        assert hasattr(module, symbol), symbol


def test_common_never_imports_a_service() -> None:
    import pathlib

    root = pathlib.Path(importlib.import_module("common").__file__).parent  # type: ignore[arg-type]
    for path in root.rglob("*.py"):
        text = path.read_text()
        for service in ("gateway", "chat", "imagegen", "credits"):
            assert f"from {service}" not in text and f"import {service}" not in text, f"{path} imports {service}"
