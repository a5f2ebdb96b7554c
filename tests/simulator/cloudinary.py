"""Cloudinary's Upload API as the `cloudinary` SDK speaks it: signed image upload and destroy.

Mounted at `/cloudinary`:
`CLOUDINARY_URL=cloudinary://sim-key:sim-secret@sim-cloud?upload_prefix=http://HOST:PORT/cloudinary` (the SDK
posts to `{upload_prefix}/v1_1/{cloud}/image/{action}`). Key, secret and cloud name are the Simulator's
(`sim-key`, `sim-secret`, `sim-cloud` unless overridden); the signature is checked with
`cloudinary.utils.api_sign_request` (SHA-1 or SHA-256, signature version 2 or 1) and a bad one gets
401 `{"error": {"message": ...}}`, as does a timestamp more than an hour off.

`file` may be an uploaded file, a `data:` URI, or an http(s) URL on 127.0.0.1/localhost that the
simulator fetches (other hosts are refused: no network here). The stored image is served at
`GET /cloudinary/assets/{public_id}.{format}` (plain http; `secure_url` is the same URL). `folder` and
`public_id` give `folder/public_id`. Endpoint names in the call log: `upload`, `destroy`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from cloudinary.utils import SIGNATURE_SHA1, SIGNATURE_SHA256, api_sign_request, api_string_to_sign
from PIL import Image, UnidentifiedImageError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.simulator.forms import Form, parse_form
from tests.simulator.wire import iso, now, origin

if TYPE_CHECKING:
    from tests.simulator.app import Simulator

PROVIDER = "cloudinary"
UNSIGNED = frozenset({"file", "api_key", "signature", "cloud_name", "resource_type"})
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
STALE_AFTER_S = 3600
_MEDIA = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp", "bmp": "image/bmp"}


def error(status: int, message: str) -> JSONResponse:
    """Cloudinary's error shape: `{"error": {"message": ...}}`."""
    return JSONResponse({"error": {"message": message}}, status_code=status)


@dataclass
class Asset:
    public_id: str
    version: int
    format: str
    width: int
    height: int
    data: bytes
    created: float
    tags: list[str] = field(default_factory=list)
    original_filename: str = "file"

    def to_json(self, base: str, api_key: str) -> dict[str, Any]:
        url = f"{base}/cloudinary/assets/{self.public_id}.{self.format}"
        folder, _, _ = self.public_id.rpartition("/")
        return {
            "asset_id": hashlib.md5(self.public_id.encode()).hexdigest(),
            "public_id": self.public_id,
            "version": self.version,
            "version_id": hashlib.md5(f"{self.public_id}{self.version}".encode()).hexdigest(),
            "signature": hashlib.sha1(self.data).hexdigest(),
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "resource_type": "image",
            "created_at": iso(self.created).split(".")[0] + "Z",
            "tags": self.tags,
            "bytes": len(self.data),
            "type": "upload",
            "etag": hashlib.md5(self.data).hexdigest(),
            "placeholder": False,
            "url": url,
            "secure_url": url,
            "folder": folder,
            "asset_folder": folder,
            "original_filename": self.original_filename,
            "api_key": api_key,
        }


def _signature_problem(sim: Simulator, form: Form) -> str | None:
    api_key, signature = form.text("api_key"), form.text("signature")
    if not api_key:
        return "Must supply api_key"
    if api_key != sim.cloudinary_key:
        return f"Invalid api_key {api_key}"
    to_sign = {k: v for k, v in form.fields.items() if k not in UNSIGNED}
    algorithm = SIGNATURE_SHA256 if len(signature) == 64 else SIGNATURE_SHA1
    expected = {api_sign_request(to_sign, sim.cloudinary_secret, algorithm, version) for version in (2, 1)}
    if signature not in expected:
        return f"Invalid Signature {signature}. String to sign - '{api_string_to_sign(to_sign)}'."
    timestamp = form.text("timestamp")
    if not timestamp.isdigit():
        return "Missing required parameter - timestamp"
    if abs(now() - int(timestamp)) > STALE_AFTER_S:
        return f"Stale request - reported time is {timestamp} which is more than 1 hour ago"
    return None


async def _file_bytes(sim: Simulator, form: Form) -> tuple[bytes, str] | str:
    """The image to store and its original name, or what is wrong with the `file` parameter."""
    if "file" in form.files:
        name, data = form.files["file"]
        return data, name
    source = form.text("file")
    if not source:
        return "Missing required parameter - file"
    if source.startswith("data:"):
        meta, sep, payload = source[5:].partition(",")
        if not sep:
            return "Invalid data URI"
        try:
            data = base64.b64decode(payload, validate=True) if meta.endswith(";base64") else payload.encode()
        except binascii.Error:
            return "Invalid data URI"
        return data, "file"
    parts = urlsplit(source)
    if parts.scheme not in ("http", "https"):
        return f"Invalid image file {source[:80]}"
    if parts.hostname not in LOCAL_HOSTS:
        return f"Error in loading {source} - the simulator only fetches 127.0.0.1/localhost URLs"
    try:
        async with httpx.AsyncClient(timeout=sim.fetch_timeout_s) as client:
            response = await client.get(source)
    except httpx.HTTPError as exc:
        return f"Error in loading {source} - {exc!r}"
    if response.status_code != 200:
        return f"Error in loading {source} - {response.status_code} {response.reason_phrase}"
    return response.content, parts.path.rpartition("/")[2].rpartition(".")[0] or "file"


def _inspect(data: bytes) -> tuple[str, int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            kind = (image.format or "").lower()
            return ("jpg" if kind == "jpeg" else kind), image.width, image.height
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def routes(sim: Simulator) -> list[BaseRoute]:
    async def signed_form(request: Request, endpoint: str) -> Form | Response:
        try:
            form = parse_form(request.headers.get("content-type", ""), await request.body())
        except ValueError as exc:
            form = exc
        if reply := await sim.enter(request, PROVIDER, endpoint, error=error):
            return reply
        if isinstance(form, ValueError):
            return error(400, f"Invalid request body: {form}")
        cloud = request.path_params["cloud"]
        if cloud != sim.cloudinary_cloud:
            return error(401, f"Invalid cloud_name {cloud}")
        if request.path_params["resource_type"] not in ("image", "auto"):
            return error(400, f"Unsupported resource type {request.path_params['resource_type']}")
        if problem := _signature_problem(sim, form):
            return error(401, problem)
        return form

    async def upload(request: Request) -> Response:
        form = await signed_form(request, "upload")
        if isinstance(form, Response):
            return form
        source = await _file_bytes(sim, form)
        if isinstance(source, str):
            return error(400, source)
        data, original = source
        info = _inspect(data)
        if info is None:
            return error(400, "Invalid image file")
        folder = form.text("folder").strip("/")
        public_id = form.text("public_id").strip("/") or secrets.token_hex(10)
        if folder:
            public_id = f"{folder}/{public_id}"
        base = origin(request)
        with sim.lock:
            existing = sim.assets.get(public_id)
            if existing is not None and form.text("overwrite") in ("0", "false"):
                return JSONResponse({**existing.to_json(base, sim.cloudinary_key), "existing": True})
            version = max(int(now()), max((a.version for a in sim.assets.values()), default=0) + 1)
            tags = [t for t in form.text("tags").split(",") if t]
            fmt, width, height = info
            name = original.rpartition(".")[0] or original
            asset = Asset(public_id, version, fmt, width, height, data, now(), tags, name)
            sim.assets[public_id] = asset
        return JSONResponse(asset.to_json(base, sim.cloudinary_key))

    async def destroy(request: Request) -> Response:
        form = await signed_form(request, "destroy")
        if isinstance(form, Response):
            return form
        public_id = form.text("public_id")
        if not public_id:
            return error(400, "Missing required parameter - public_id")
        with sim.lock:
            found = sim.assets.pop(public_id, None)
        return JSONResponse({"result": "ok" if found else "not found"})

    async def asset(request: Request) -> Response:
        path = request.path_params["path"]
        with sim.lock:
            stored = sim.assets.get(path) or sim.assets.get(path.rpartition(".")[0])
        if stored is None:
            return Response(b"Resource not found", status_code=404, media_type="text/plain")
        return Response(stored.data, media_type=_MEDIA.get(stored.format, "application/octet-stream"))

    async def not_found(request: Request) -> Response:
        return error(404, f"Invalid URL {request.url.path}")

    return [
        Route("/v1_1/{cloud}/{resource_type}/upload", upload, methods=["POST"]),
        Route("/v1_1/{cloud}/{resource_type}/destroy", destroy, methods=["POST"]),
        Route("/assets/{path:path}", asset, methods=["GET"]),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
