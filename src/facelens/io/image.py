"""Decode anything image-like into an H×W×3 RGB uint8 array (the one format every later stage takes)."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import IO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facelens.errors import ImageDecodeError

ImageInput = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], np.ndarray, Image.Image]

#: Default pixel cap (about 8k × 5k). Images over it are refused before their pixels are decoded.
DEFAULT_MAX_PIXELS = int(os.environ.get("FACELENS_MAX_PIXELS", 40_000_000))


def describe_source(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, np.ndarray):
        return f"<array {source.shape} {source.dtype}>"
    if isinstance(source, Image.Image):
        return f"<PIL {source.mode} {source.size}>"
    return f"<{type(source).__name__}>"


def _from_array(array: np.ndarray) -> np.ndarray:
    """Arrays are taken as RGB (or gray / RGBA); integer types wider than 8 bits are scaled down."""
    if array.size == 0 or array.ndim not in (2, 3):
        raise ImageDecodeError(f"array of shape {array.shape} is not an image")
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype in (np.float32, np.float64):
        scale = 255.0 if float(np.nanmax(array)) <= 1.0 else 1.0
        array = np.clip(array * scale, 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        array = array[:, :, :3]
    elif array.shape[2] != 3:
        raise ImageDecodeError(f"array with {array.shape[2]} channels is not an image")
    return np.ascontiguousarray(array)


def _to_rgb(img: Image.Image) -> np.ndarray:
    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(img, dtype=np.uint32)
        peak = 65535 if array.max() > 255 else 255
        array = (array * 255 // max(peak, 1)).astype(np.uint8)
        return _from_array(array)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def decode_image(source: ImageInput, max_pixels: int | None = None) -> np.ndarray:
    """Return the image as RGB uint8 H×W×3.

    Accepts a path, bytes, a binary file object, a numpy array (RGB, gray or RGBA) or a PIL image. EXIF orientation
    is applied. Anything unreadable, and images over ``max_pixels`` (checked from the header, before decoding),
    raise :class:`ImageDecodeError`.
    """
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    label = describe_source(source)
    if isinstance(source, np.ndarray):
        if source.ndim >= 2 and source.shape[0] * source.shape[1] > limit:
            raise ImageDecodeError(f"{label}: {source.shape[1]}x{source.shape[0]} exceeds the pixel limit {limit}")
        return _from_array(source)
    if isinstance(source, Image.Image):
        return _open_checked(source, label, limit)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageDecodeError(f"{path}: no such file")
        if path.is_dir():
            raise ImageDecodeError(f"{path}: is a directory, not an image")
        if path.stat().st_size == 0:
            raise ImageDecodeError(f"{path}: empty file")
        try:
            with open(path, "rb") as handle:
                return _decode_stream(handle, label, limit)
        except PermissionError as exc:
            raise ImageDecodeError(f"{path}: permission denied") from exc
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageDecodeError("empty bytes: not an image")
        return _decode_stream(io.BytesIO(bytes(source)), label, limit)
    if hasattr(source, "read"):
        data = source.read()
        if not data:
            raise ImageDecodeError(f"{label}: empty stream")
        return _decode_stream(io.BytesIO(data), label, limit)
    raise ImageDecodeError(f"cannot read an image from {label}")


def _decode_stream(stream: IO[bytes], label: str, limit: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Our own cap is checked below from the header; PIL's is disabled so that it does not pre-empt it.
            previous = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                img = Image.open(stream)
            finally:
                Image.MAX_IMAGE_PIXELS = previous
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(f"{label}: not a recognised image format") from exc
    except Exception as exc:
        raise ImageDecodeError(f"{label}: truncated or corrupt image header ({exc})") from exc
    return _open_checked(img, label, limit)


def _open_checked(img: Image.Image, label: str, limit: int) -> np.ndarray:
    width, height = img.size
    if width * height > limit:
        raise ImageDecodeError(
            f"{label}: {width}x{height} = {width * height:,} pixels exceeds the limit of {limit:,} "
            "(raise it with max_pixels / FACELENS_MAX_PIXELS if the image is genuine)"
        )
    if width < 1 or height < 1:
        raise ImageDecodeError(f"{label}: image has no pixels")
    try:
        img.load()
        if img.mode == "CMYK":
            img = img.convert("RGB")
        return _to_rgb(img)
    except ImageDecodeError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"{label}: truncated or corrupt image ({exc})") from exc


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def save_image(image: np.ndarray, path: str | os.PathLike) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
