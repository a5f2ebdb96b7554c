"""Import contracts (import-linter, configured in pyproject.toml): the services never import
each other, and libs/common never imports a service. They share contracts, not code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(config: Path, *, pythonpath: list[Path] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"PYTHONPATH": os.pathsep.join(map(str, pythonpath))} if pythonpath else {})}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_services_keep_their_import_contracts() -> None:
    result = lint(ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_service_importing_another_breaks_the_contract(tmp_path: Path) -> None:
    """The same contracts over a copy of the layout where chat imports the ledger's code."""
    for package in ("common", "gateway", "chat", "imagegen", "credits"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "credits" / "book.py").write_text("BALANCE = 0\n")
    (tmp_path / "chat" / "handlers.py").write_text("from credits.book import BALANCE\n")
    config = tmp_path / "pyproject.toml"
    contracts = (ROOT / "pyproject.toml").read_text().split("[tool.importlinter]", 1)[1]
    config.write_text("[tool.importlinter]" + contracts)

    result = lint(config, pythonpath=[tmp_path])

    assert result.returncode != 0
    assert "services never import each other BROKEN" in result.stdout
    assert "chat.handlers -> credits.book" in result.stdout
