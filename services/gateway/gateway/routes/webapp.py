"""The web console (web/, built by Vite into WEB_DIST_DIR), served at `/` when it is built.

Only `/` (the page) and `/assets/<file>` (Vite's hashed scripts and styles) are served, so an
unknown API path still gets its problem+json 404. The page gets a policy of its own: the API's
`default-src 'none'` would block its scripts; this one allows the app's own scripts, styles and
calls to this origin, and nothing from anywhere else (no CDN, no inline script).
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from common.errors import NotFound
from gateway.deps import Settings

router = APIRouter(include_in_schema=False)

APP_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_ASSET = re.compile(r"^[A-Za-z0-9_-]{1,100}(\.[A-Za-z0-9_-]{1,20}){1,3}$")  # no way out of assets/


def _file(path: Path) -> Path:
    if not path.is_file():
        raise NotFound("the web console is not built here (make web)")
    return path


@router.get("/")
async def index(settings: Settings) -> FileResponse:
    page = _file(Path(settings.web_dist_dir) / "index.html")
    return FileResponse(
        page, media_type="text/html", headers={"Content-Security-Policy": APP_CSP, "Cache-Control": "no-cache"}
    )


@router.get("/assets/{name}")
async def asset(name: str, settings: Settings) -> FileResponse:
    if not _ASSET.match(name):
        raise NotFound("no such file")
    # Vite names each build's files by their content hash: a name never changes meaning.
    return FileResponse(
        _file(Path(settings.web_dist_dir) / "assets" / name),
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
