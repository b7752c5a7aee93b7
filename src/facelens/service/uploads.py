"""Reading images out of requests: multipart (field ``image``, ``image_a``/``image_b``), base64 JSON, or a raw image
body. The body is refused as soon as it passes the size limit (from Content-Length when sent, else while streaming),
and each image's type is taken from its magic bytes, never from the client's Content-Type.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

#: Image formats the service accepts, by leading bytes.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
RAW_TYPES = ("image/", "application/octet-stream")


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


@dataclass(frozen=True)
class Upload:
    data: bytes
    kind: str  # jpeg, png, ... (sniffed)
    field: str
    label: str = ""  # what to call it in answers: the client's file name, else field[index]


def sniff(data: bytes) -> str | None:
    """The image format from the file's first bytes (None when it is not an image format we read)."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing it (413) before reading on when it is or becomes larger than ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        if size > limit:
            raise ApiError(413, "too_large", f"request body of {size:,} bytes exceeds the limit of {limit:,} bytes")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ApiError(413, "too_large", f"request body exceeds the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check(data: bytes, field: str, label: str = "") -> Upload:
    if not data:
        raise ApiError(422, "bad_image", f"{field}: empty upload")
    kind = sniff(data)
    if kind is None:
        raise ApiError(415, "unsupported_media_type",
                       f"{field}: not an image (JPEG, PNG, GIF, BMP, TIFF or WebP expected, judged from its content)")
    return Upload(data, kind, field, label or field)


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise ApiError(422, "bad_request", f"{field}: expected a base64 string")
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "bad_request", f"{field}: not valid base64") from None


@dataclass
class Payload:
    """Images by field name, and the other (non-file) fields of the request."""

    images: dict[str, list[Upload]]
    fields: dict[str, Any]

    def one(self, name: str) -> Upload:
        found = self.images.get(name) or []
        if not found:
            raise ApiError(422, "missing_image", f"the request has no {name!r} image (multipart field or JSON key)")
        if len(found) > 1:
            raise ApiError(422, "bad_request", f"expected one {name!r} image, got {len(found)}")
        return found[0]


async def read_payload(request: Request, names: Sequence[str], limit: int, max_files: int = 20) -> Payload:
    """Parse a request carrying the images ``names`` (a field may repeat in multipart; in JSON a field may be a
    string or, for ``images``, a list). A single-image endpoint also takes a raw ``image/*`` body."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    body = await read_body(request, limit)
    images: dict[str, list[Upload]] = {}
    fields: dict[str, Any] = {}
    if media == "multipart/form-data":

        async def stream() -> AsyncGenerator[bytes, None]:
            yield body

        try:
            form = await MultiPartParser(request.headers, stream(), max_files=max_files, max_fields=50,
                                         max_part_size=1024 * 1024).parse()
        except MultiPartException as exc:
            raise ApiError(400, "bad_request", f"malformed multipart body ({exc.message})") from None
        try:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if key in names:
                        label = value.filename or f"{key}[{len(images.get(key, []))}]"
                        images.setdefault(key, []).append(_check(await value.read(), key, label))
                else:
                    fields[key] = value
        finally:
            await form.close()
    elif media == "application/json":
        try:
            obj = json.loads(body or b"null")
        except ValueError:
            raise ApiError(400, "bad_request", "body is not valid JSON") from None
        if not isinstance(obj, dict):
            raise ApiError(422, "bad_request", "JSON body must be an object")
        for key, value in obj.items():
            if key in names:
                values = value if isinstance(value, list) else [value]
                if len(values) > max_files:
                    raise ApiError(422, "bad_request", f"at most {max_files} images per request")
                images[key] = [_check(_b64(v, key), key, f"{key}[{i}]") for i, v in enumerate(values)]
            else:
                fields[key] = value
    elif media.startswith(RAW_TYPES) and len(names) == 1:
        images[names[0]] = [_check(body, names[0])]
    else:
        raise ApiError(415, "unsupported_media_type",
                       f"send multipart/form-data (fields {', '.join(names)}) or application/json with base64 images; "
                       f"got {media or 'no content type'!r}")
    return Payload(images, fields)


def image_body(names: Sequence[str], repeated: bool = False, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """OpenAPI ``requestBody`` for an image endpoint (both encodings), for ``openapi_extra``."""

    def one(fmt: str) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "format": fmt}
        if fmt == "byte":
            schema["description"] = "base64 image (a data: URL is accepted)"
        return {"type": "array", "items": schema} if repeated else schema

    form = {n: one("binary") for n in names}
    js = {n: one("byte") for n in names}
    for key, schema in (extra or {}).items():
        form[key] = {"type": "string", "description": f"JSON text: {schema.get('description', '')}"}
        js[key] = schema
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": form, "required": list(names)}},
                "application/json": {"schema": {"type": "object", "properties": js, "required": list(names)}},
            },
        }
    }
