"""Model specs (sha256, several builds, offline errors) and the upstream preprocessing of both passive models."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.errors import ModelIntegrityError, ModelUnavailableError
from facelens.liveness.models import (
    MINIFAS_CELEBA128,
    MINIFASNET_V1SE,
    MINIFASNET_V2,
    get_model,
    minivision_crop,
    square_reflect_crop,
)
from facelens.models.registry import resolve_file


def test_specs_resolve_to_the_shared_files_by_sha256():
    for spec in (MINIFASNET_V2, MINIFASNET_V1SE, MINIFAS_CELEBA128):
        path = resolve_file(spec.files[0], download=False)
        assert path.is_file() and path.suffix == ".onnx"


def test_minifasnet_accepts_the_yakhyo_release_build_and_downloads_from_it():
    f = MINIFASNET_V2.files[0]
    assert "b32929adc2d9c34b9486f8c4c7bc97c1b69bc0ea9befefc380e4faae4e463907" in f.sha256
    assert "4040cc4c2078ba39df8c240adf53808f6b83798546c0e8e224f75a3a7dc465bc" in f.sha256
    assert any("yakhyo/face-anti-spoofing/releases" in u for u in f.urls)
    assert "minifasnet/MiniFASNetV2.onnx" in f.alternatives


def test_a_file_with_an_unknown_sha256_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "minifasnet" / "2.7_80x80_MiniFASNetV2.onnx"
    bad.parent.mkdir()
    bad.write_bytes(b"not the model")
    monkeypatch.setenv("FACELENS_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("FACELENS_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ModelIntegrityError, match="does not match"):
        resolve_file(MINIFASNET_V2.files[0], download=False)


def test_offline_without_the_file_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FACELENS_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("FACELENS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FACELENS_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="face-antispoof-onnx"):
        resolve_file(MINIFAS_CELEBA128.files[0])


@pytest.mark.parametrize("model", ["minifasnet", "minifas_celeba128"])
def test_upstream_samples_decide_as_documented(minivision, model):
    """MODELS.md end-to-end check: F1 (print) and F2 (screen) spoof, T1 real — on our HOG detections."""
    runner = get_model(model)
    live = {k: float(runner.score(img, [faces[0].box]).live[0]) for k, (img, faces) in minivision.items()}
    assert live["T1"] > 0.9
    assert live["F1"] < 0.5 and live["F2"] < 0.5


def test_minivision_crop_shifts_at_the_border_instead_of_padding():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (200, 300, 3), np.uint8)
    box = np.array([0, 50, 40, 90], np.float32)  # touches the left border; 2.7x box = 110 px wide
    crop = minivision_crop(image, box, 2.7, size=110)
    # box 41x41 px scaled by 2.7 -> 110.7; shifted right so it starts at x=0, rows centred on the box
    expected = image[15:126, 0:111]
    import cv2

    assert np.array_equal(crop, cv2.resize(expected, (110, 110)))


def test_square_reflect_crop_pads_by_reflection_outside_the_image():
    image = np.arange(100 * 100 * 3, dtype=np.uint32).reshape(100, 100, 3).astype(np.uint8)
    crop = square_reflect_crop(image, np.array([0, 0, 40, 40], np.float32), 1.5)
    assert crop.shape == (60, 60, 3)
    # crop starts at -10: row/col 10 of the crop is image row/col 0, and row 9 mirrors image row 1
    assert np.array_equal(crop[10, 10], image[0, 0])
    assert np.array_equal(crop[9, 10], image[1, 0])
