"""Liveness fixtures: each labelled source is detected and scored once per session (default detector + model)."""

from __future__ import annotations

from pathlib import Path

import pytest

SOURCES = ("minivision_silent_face", "vietmoney_fas", "dtruong46me_fas_crops")


@pytest.fixture(scope="session")
def spoof_dir(data_dir: Path) -> Path:
    path = data_dir / "spoof"
    if not path.is_dir():
        pytest.skip(f"{path} not found (set FACELENS_TEST_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def scored(spoof_dir: Path) -> dict:
    """LabelledScores per source with the pipeline's default detector and the default model."""
    from facelens.liveness.dataset import score_folder

    return {name: score_folder(spoof_dir / name) for name in SOURCES}


@pytest.fixture(scope="session")
def minivision(spoof_dir: Path) -> dict:
    """The three upstream samples decoded (RGB) with the default detector's faces: T1 live, F1 print, F2 screen replay."""
    from facelens.io.image import decode_image
    from facelens.engine import models

    det = models().detector
    out = {}
    for key, rel in (("T1", "live/image_T1.jpg"), ("F1", "spoof/image_F1.jpg"), ("F2", "spoof/image_F2.jpg")):
        image = decode_image(spoof_dir / "minivision_silent_face" / rel)
        out[key] = (image, det.detect(image))
    return out
