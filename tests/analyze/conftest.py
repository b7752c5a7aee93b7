"""Expression probabilities of the staged FER2013 / CK+ crops, computed once per session."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

CKPLUS_TO_FER = {"anger": "angry", "sadness": "sad"}  # other CK+ folders already use FER2013 names; contempt has none


def _load(root: Path, pattern: str) -> tuple[list[Path], list[str]]:
    files = sorted(root.glob(pattern))
    return files, [CKPLUS_TO_FER.get(f.parent.name, f.parent.name) for f in files]


@pytest.fixture(scope="session")
def expression_dir(data_dir: Path) -> Path:
    path = data_dir / "expression"
    if not path.is_dir():
        pytest.skip(f"{path} not found (set FACELENS_TEST_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def fer_set(expression_dir: Path):
    from facelens.analyze.expression import get_expression_model, whole_crop

    files, labels = _load(expression_dir / "fer2013_sample", "*/*.jpg")
    crops = [whole_crop(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)) for f in files]
    return files, np.array(labels), crops, get_expression_model("mini_xception").probabilities(crops)


@pytest.fixture(scope="session")
def ck_set(expression_dir: Path):
    from facelens.analyze.expression import get_expression_model, whole_crop

    files, labels = _load(expression_dir / "ckplus48", "*/*.png")
    crops = [whole_crop(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)) for f in files]
    return files, np.array(labels), crops, get_expression_model("mini_xception").probabilities(crops)
