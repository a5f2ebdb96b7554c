"""The web console (web/, built by Vite into WEB_DIST_DIR), served at `/` when it is built.

Only `/` (the page) and `/assets/<file>` (Vite's hashed scripts and styles) are served, so an
unknown API path still gets its problem+json 404. The page gets a policy of its own: the API's
`default-src 'none'` would block its scripts; this one allows the app's own scripts, styles and
calls to this origin, and nothing from anywhere else (no CDN, no inline script).

With CLERK_PUBLISHABLE_KEY set, the page is told so in `<meta>` tags (no inline script, so the
policy stays as strict), and its policy lets the bundled clerk-js call Clerk's Frontend API
(CLERK_PROXY_URL's origin, or the host the key names) and nothing else.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from common.errors import NotFound
from gateway.deps import Settings

router = APIRouter(include_in_schema=False)

APP_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
CLERK_META = ("aisaas:clerk-publishable-key", "aisaas:clerk-proxy-url")
_ASSET = re.compile(r"^[A-Za-z0-9_-]{1,100}(\.[A-Za-z0-9_-]{1,20}){1,3}$")  # no way out of assets/


def _file(path: Path) -> Path:
    if not path.is_file():
        raise NotFound("the web console is not built here (make web)")
    return path


def app_csp(frontend_api: str | None) -> str:
    """The page's policy. When Clerk signs in, clerk-js may also call the Frontend API's origin
    and start its timer worker from a `blob:` URL it makes itself (Clerk's documented `worker-src`);
    it loads no script, style or image from elsewhere in the console's headless use."""
    if not frontend_api:
        return APP_CSP
    return APP_CSP.replace("connect-src 'self'", f"connect-src 'self' {frontend_api}; worker-src 'self' blob:")


def with_clerk(page: str, publishable_key: str, proxy_url: str | None) -> str:
    """The page with what its clerk-js needs, as `<meta>` tags before `</head>`."""
    values = (publishable_key, proxy_url)
    tags = "".join(
        f'<meta name="{name}" content="{html.escape(value, quote=True)}" />'
        for name, value in zip(CLERK_META, values, strict=True)
        if value
    )
    return page.replace("</head>", tags + "</head>", 1)


@router.get("/", response_model=None)
async def index(settings: Settings) -> FileResponse | HTMLResponse:
    page = _file(Path(settings.web_dist_dir) / "index.html")
    headers = {"Content-Security-Policy": app_csp(settings.clerk_frontend_api), "Cache-Control": "no-cache"}
    if settings.clerk_publishable_key is None:
        return FileResponse(page, media_type="text/html", headers=headers)
    text = with_clerk(page.read_text(), settings.clerk_publishable_key, settings.clerk_proxy_url)
    return HTMLResponse(text, headers=headers)


@router.get("/assets/{name}")
async def asset(name: str, settings: Settings) -> FileResponse:
    if not _ASSET.match(name):
        raise NotFound("no such file")
    # Vite names each build's files by their content hash: a name never changes meaning.
    return FileResponse(
        _file(Path(settings.web_dist_dir) / "assets" / name),
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
