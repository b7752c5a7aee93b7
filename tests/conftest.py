"""Shared fixtures: where test data and models are, and one session-wide pipeline (models load once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("FACELENS_TEST_DATA", ROOT.parent / "shared" / "data")).resolve()
MODEL_DIR = Path(os.environ.get("FACELENS_MODEL_DIR", ROOT.parent / "shared" / "models")).resolve()
os.environ.setdefault("FACELENS_MODEL_DIR", str(MODEL_DIR))
os.environ.setdefault("FACELENS_OFFLINE", "1")  # tests never download


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


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.exists():
        pytest.skip(f"test data folder {DATA_DIR} not found (set FACELENS_TEST_DATA)")
    return DATA_DIR


@pytest.fixture(scope="session")
def pipeline():
    from facelens.pipeline import get_pipeline

    return get_pipeline()


@pytest.fixture(scope="session")
def lfw_dir(data_dir):
    path = data_dir / "identity" / "lfw"
    if not (path / "pairsDevTest.txt").is_file():
        pytest.skip(f"LFW DevTest pairs not found under {path} (set FACELENS_TEST_DATA)")
    return path


@pytest.fixture(scope="session")
def devtest(lfw_dir):
    from facelens.evaluate.protocols import read_pairs

    return read_pairs(lfw_dir / "pairsDevTest.txt", lfw_dir)


@pytest.fixture(scope="session")
def devtest_embeddings(devtest, pipeline):
    from facelens.evaluate.embeddings import embed_images

    return embed_images(devtest.images(), pipeline=pipeline)


@pytest.fixture(scope="session")
def devtest_scored(devtest, devtest_embeddings):
    from facelens.evaluate.verification import score_pairs

    return score_pairs(devtest, devtest_embeddings)


@pytest.fixture(scope="session")
def embedding_cache(devtest_embeddings, tmp_path_factory):
    """The session's embeddings as an .npz, so CLI tests reuse them through --cache."""
    path = tmp_path_factory.mktemp("evalcache") / "devtest.npz"
    devtest_embeddings.save(path)
    return path
