"""Multipart uploads streamed to a temp file under the service's home, counted against a size limit."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from service.errors import InvalidInput, TooLarge

MAX_FIELDS = 20
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _check_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the upload is {int(declared)} bytes; the limit is {limit} (DATA_DEBUGGER_MAX_UPLOAD_BYTES)")


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise TooLarge(f"the upload is over the limit of {limit} bytes (DATA_DEBUGGER_MAX_UPLOAD_BYTES)")
        yield chunk


async def receive_upload(request: Request, limit: int, folder: Path) -> tuple[Path, str, dict[str, str]]:
    """Parse a multipart body: the one `file` part goes to `folder/<random>/<its name>`; returns (path, the
    client's file name, the other fields). The caller removes path.parent when done."""
    _check_length(request, limit)
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidInput("the body must be multipart/form-data with a `file` part and the form fields")
    parser = MultiPartParser(request.headers, _limited(request, limit), max_files=1, max_fields=MAX_FIELDS)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidInput(f"malformed multipart body: {exc.message}") from exc
    fields: dict[str, str] = {}
    upload: UploadFile | None = None
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key != "file":
                raise InvalidInput(f"form part {key!r} is a file; send the data file as the `file` part")
            upload = value
        else:
            fields[key] = value
    if upload is None:
        raise InvalidInput("form.file is missing: attach the data file as the `file` part")
    name = Path(upload.filename or "upload").name
    # The file keeps its own name (in a folder of its own): readers derive default ids from the file stem,
    # so uploading the same file twice must give the same ids.
    safe = _UNSAFE.sub("_", name)[:120].lstrip(".") or "upload.dat"
    target = folder / uuid.uuid4().hex / safe
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        upload.file.seek(0)
        shutil.copyfileobj(upload.file, out, length=1 << 20)
    await upload.close()
    return target, name, fields
