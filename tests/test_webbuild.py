"""`make run` builds the web console only when web/dist is missing or older than web/'s sources."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import webbuild

pytestmark = pytest.mark.unit


def _web(tmp_path: Path) -> Path:
    web = tmp_path / "web"
    (web / "src").mkdir(parents=True)
    (web / "src" / "main.ts").write_text("export {}")
    (web / "package.json").write_text("{}")
    return web


def _age(path: Path, seconds: float) -> None:
    stat = path.stat()
    os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


def test_a_missing_build_is_stale(tmp_path: Path) -> None:
    assert webbuild.is_stale(_web(tmp_path))


def test_a_build_newer_than_every_source_is_not_stale_until_a_source_changes(tmp_path: Path) -> None:
    web = _web(tmp_path)
    (web / "dist").mkdir()
    (web / "dist" / "index.html").write_text("<!doctype html>")
    for source in (web / "src" / "main.ts", web / "package.json"):
        _age(source, 60)
    assert not webbuild.is_stale(web)
    (web / "src" / "main.ts").write_text("export const changed = 1")
    _age(web / "dist" / "index.html", 30)
    assert webbuild.is_stale(web)


def test_without_npm_the_build_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # the machine's PATH, not our code, is what changes
    with pytest.raises(webbuild.WebBuildError, match="npm is not installed"):
        webbuild.build(_web(tmp_path))
