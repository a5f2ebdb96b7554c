"""Files of imagegen's local storage (the offline default), served from IMAGE_DATA_DIR.

No token is asked for: an <img> sends none. The file names are random image ids, so a URL is
as private as a Cloudinary one: whoever has it can show the picture.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from common.contracts.images import LOCAL_FILES_PATH
from common.errors import NotFound
from gateway.deps import Settings

router = APIRouter(tags=["images"])

_FOLDER = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_FILE = re.compile(r"^[0-9a-f-]{36}\.(png|jpg|webp|gif)$")


def local_path(data_dir: Path, url: str) -> Path | None:
    """The file a local-storage URL (`/files/images/<folder>/<file>`) names; None for anything else."""
    if not url.startswith(LOCAL_FILES_PATH + "/"):
        return None
    folder, _, name = url.removeprefix(LOCAL_FILES_PATH + "/").partition("/")
    if not (_FOLDER.match(folder) and _FILE.match(name)):  # no way out of the directory
        return None
    return data_dir / folder / name


@router.get(f"{LOCAL_FILES_PATH}/{{folder}}/{{name}}", include_in_schema=False)
async def local_file(folder: str, name: str, settings: Settings) -> FileResponse:
    path = local_path(Path(settings.image_data_dir), f"{LOCAL_FILES_PATH}/{folder}/{name}")
    if path is None or not path.is_file():
        raise NotFound("no such file")
    return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})
