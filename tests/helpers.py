"""Helpers the tests import: where test data and models are, skipping with a clear message when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("FACELENS_TEST_DATA", ROOT.parent / "shared" / "data")).resolve()
MODEL_DIR = Path(os.environ.get("FACELENS_MODEL_DIR", ROOT.parent / "shared" / "models")).resolve()


def need_data(*parts: str) -> Path:
    """Path under the test data folder, or skip the test with a message saying what is missing."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"test data {path} not found (set FACELENS_TEST_DATA to the shared data folder)")
    return path


def need_model(*parts: str) -> Path:
    path = MODEL_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"model file {path} not found (set FACELENS_MODEL_DIR to the shared models folder)")
    return path
