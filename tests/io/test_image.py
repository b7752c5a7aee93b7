"""Decode: every supported format and mode to RGB uint8, and one typed error for anything unreadable."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facelens.errors import ImageDecodeError
from facelens.io.image import decode_image


def _png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture()
def rgb() -> Image.Image:
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :30] = (255, 0, 0)
    arr[:, 30:] = (0, 0, 255)
    return Image.fromarray(arr)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF"])
def test_formats_decode_to_rgb(rgb, fmt):
    out = decode_image(_png_bytes(rgb, fmt))
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    assert out[20, 5, 0] > 200 and out[20, 55, 2] > 200  # left red, right blue: channel order kept


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16", "LA"])
def test_modes(rgb, mode):
    img = rgb.convert("L").convert(mode) if mode == "I;16" else rgb.convert(mode)
    out = decode_image(_png_bytes(img, "TIFF" if mode == "CMYK" else "PNG"))
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8


def test_sixteen_bit_scaled():
    arr = np.full((8, 8), 65535, np.uint16)
    out = decode_image(_png_bytes(Image.fromarray(arr)))
    assert out.max() == 255


def test_exif_orientation_applied(rgb):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    out = decode_image(_png_bytes(rgb, "JPEG", exif=exif.tobytes()))
    assert out.shape == (60, 40, 3)


def test_inputs_path_file_array_pil(tmp_path, rgb):
    path = tmp_path / "x.png"
    rgb.save(path)
    from_path = decode_image(path)
    assert np.array_equal(decode_image(str(path)), from_path)
    with open(path, "rb") as handle:
        assert np.array_equal(decode_image(handle), from_path)
    assert np.array_equal(decode_image(np.asarray(rgb)), from_path)
    assert np.array_equal(decode_image(rgb), from_path)
    assert decode_image(np.asarray(rgb.convert("L"))).shape == (40, 60, 3)


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming a huge size (the pixel data is never reached)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


def test_bad_inputs(tmp_path, rgb):
    cases = {}
    cases["missing"] = tmp_path / "nope.jpg"
    cases["directory"] = tmp_path
    (tmp_path / "empty.jpg").write_bytes(b"")
    cases["empty"] = tmp_path / "empty.jpg"
    full = _png_bytes(rgb, "JPEG")
    (tmp_path / "trunc.jpg").write_bytes(full[: len(full) // 2])
    cases["truncated"] = tmp_path / "trunc.jpg"
    (tmp_path / "text.jpg").write_text("this is not an image\n")
    cases["text"] = tmp_path / "text.jpg"
    (tmp_path / "bomb.png").write_bytes(_bomb_png(30000, 30000))
    cases["bomb"] = tmp_path / "bomb.png"
    messages = {}
    for label, path in cases.items():
        with pytest.raises(ImageDecodeError) as info:
            decode_image(path)
        messages[label] = str(info.value)
    assert "no such file" in messages["missing"]
    assert "directory" in messages["directory"]
    assert "empty" in messages["empty"]
    assert "truncated" in messages["truncated"] or "corrupt" in messages["truncated"]
    assert "not a recognised image" in messages["text"]
    assert "exceeds the limit" in messages["bomb"]
    with pytest.raises(ImageDecodeError):
        decode_image(b"")
    with pytest.raises(ImageDecodeError):
        decode_image(np.zeros((0, 3), np.uint8))


def test_pixel_cap_is_configurable(rgb):
    data = _png_bytes(rgb)
    with pytest.raises(ImageDecodeError):
        decode_image(data, max_pixels=100)
    assert decode_image(data, max_pixels=10_000).shape == (40, 60, 3)


def test_one_pixel_image_decodes():
    assert decode_image(_png_bytes(Image.new("RGB", (1, 1)))).shape == (1, 1, 3)
