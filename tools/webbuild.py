"""Build the web console (web/ -> web/dist) when it is missing or older than its sources.

    python tools/webbuild.py          # what `make run` does first: never fails, says why it skipped
    python tools/webbuild.py --strict # fail when npm is missing or the build fails

`make web` always builds (npm ci && npm run build); this is the lazy variant.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
DIST_INDEX = WEB / "dist" / "index.html"
SOURCES = ("index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts", "src")


class WebBuildError(RuntimeError):
    pass


def newest_source(web: Path = WEB) -> float:
    newest = 0.0
    for name in SOURCES:
        path = web / name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
        newest = max([newest, *(p.stat().st_mtime for p in files)])
    return newest


def is_stale(web: Path = WEB) -> bool:
    index = web / "dist" / "index.html"
    return not index.is_file() or index.stat().st_mtime < newest_source(web)


def build(web: Path = WEB) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise WebBuildError("npm is not installed (Debian: apt-get install nodejs npm)")
    install = [[npm, "ci", "--no-audit", "--no-fund"]] if _lock_changed(web) else []
    for step in [*install, [npm, "run", "build"]]:
        done = subprocess.run(step, cwd=web, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise WebBuildError(f"{' '.join(step[1:])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def _lock_changed(web: Path) -> bool:
    """node_modules missing, or installed from an older lockfile."""
    installed = web / "node_modules" / ".package-lock.json"
    return not installed.is_file() or installed.stat().st_mtime < (web / "package-lock.json").stat().st_mtime


def npm_test(web: Path = WEB) -> subprocess.CompletedProcess[str]:
    """The console's own unit tests (Vitest), installed from the lockfile first when needed."""
    npm = shutil.which("npm")
    if npm is None:
        raise WebBuildError("npm is not installed (Debian: apt-get install nodejs npm)")
    if _lock_changed(web):
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=web, capture_output=True, check=True)
    return subprocess.run([npm, "test"], cwd=web, capture_output=True, text=True, check=False, timeout=300)


def ensure_built(web: Path = WEB) -> None:
    if is_stale(web):
        build(web)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strict", action="store_true", help="fail instead of serving the API without the console")
    args = parser.parse_args()
    try:
        if is_stale():
            print("building the web console (web/dist)…", file=sys.stderr)
            build()
    except WebBuildError as exc:
        if args.strict:
            print(exc, file=sys.stderr)
            return 1
        print(f"web console not built ({exc}); serving the API only", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
