"""The folder gallery's vector index: HNSW against exact search, persistence, catching up with other writers,
repair of a missing/stale/corrupt index, schema upgrade, filters and collections."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from facelens.errors import GalleryError, ModelMismatchError, NotFoundError
from facelens.gallery import drop_collection, list_collections, open_gallery
from facelens.gallery.index import exact_top_k
from facelens.gallery.local import LocalGallery


def _load_face_space():
    """benchmarks/synthetic_faces.py (test and benchmark code), loaded by path: putting benchmarks/ on sys.path
    would let its scripts shadow packages for every later test (benchmarks/ray.py hid Ray from tests/distributed)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "synthetic_faces.py"
    spec = importlib.util.spec_from_file_location("facelens_benchmarks_synthetic_faces", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module.FaceSpace


FaceSpace = _load_face_space()


@pytest.fixture(scope="session")
def face_space(devtest):
    """FaceSpace fitted on dlib embeddings of the DevTest images, as benchmarks/gallery.py does (its per-face spread
    is LFW's under dlib; the default MobileFaceNet spreads its genuine pairs differently)."""
    from facelens.engine import models
    from facelens.evaluate.embeddings import embed_images

    embedded = embed_images(devtest.images(), pipeline=models(embedder="dlib_onnx"))
    keys = list(embedded.vectors)
    labels = np.array([Path(k).parent.name for k in keys])
    vectors = np.stack([embedded.vectors[k] for k in keys])
    return FaceSpace.fit(vectors, labels), vectors, labels


def _similarities(vectors, labels):
    sims = vectors @ vectors.T
    same = labels[:, None] == labels[None, :]
    upper = np.triu_indices(len(vectors), 1)
    return sims[upper][same[upper]], sims[upper][~same[upper]]


def test_synthetic_faces_spread_like_lfw(face_space):
    space, vectors, labels = face_space
    real_genuine, real_impostor = _similarities(vectors.astype(np.float64), labels)
    faces = space.sample(400, 5, seed=1).reshape(-1, 128).astype(np.float64)
    genuine, impostor = _similarities(faces, np.repeat(np.arange(400), 5))
    print(f"genuine {genuine.mean():.4f}±{genuine.std():.4f} (LFW {real_genuine.mean():.4f}±{real_genuine.std():.4f}); "
          f"impostor {impostor.mean():.4f}±{impostor.std():.4f} (LFW {real_impostor.mean():.4f}±{real_impostor.std():.4f})")
    assert abs(genuine.mean() - real_genuine.mean()) < 0.01 and abs(genuine.std() - real_genuine.std()) < 0.005
    assert abs(impostor.mean() - real_impostor.mean()) < 0.01 and abs(impostor.std() - real_impostor.std()) < 0.01


def test_hnsw_and_exact_agree_on_lfw(lfw_split, tmp_path):
    by_person, vectors = lfw_split
    names, gallery_vectors, probes, truth = [], [], [], []
    for name, images in sorted(by_person.items()):
        known = [vectors[p] for p in images if p in vectors]
        names += [name] * 5
        gallery_vectors += known[:5]
        probes += known[5:]
        truth += [name] * len(known[5:])
    exact = LocalGallery(tmp_path / "exact")
    hnsw = LocalGallery(tmp_path / "hnsw", exact_limit=10)
    for g in (exact, hnsw):
        g.add_embeddings(names, np.stack(gallery_vectors))
    assert exact.index_kind() == "exact" and hnsw.index_kind() == "hnsw"
    top_exact = [c[0].name for c in exact.search(np.stack(probes), k=5)]
    top_hnsw = [c[0].name for c in hnsw.search(np.stack(probes), k=5)]
    assert top_hnsw == top_exact
    assert np.mean(np.array(top_exact) == np.array(truth)) > 0.95


def test_recall_on_synthetic_100k(face_space, tmp_path):
    """20,000 people x 5 faces; queries are new faces of enrolled people plus strangers."""
    space = face_space[0]
    faces = space.sample(20_000, 6, seed=7)
    stored = faces[:, :5].reshape(-1, 128)
    queries = np.concatenate([faces[:800, 5], space.sample(200, 1, seed=8)[:, 0]])
    gallery = LocalGallery(tmp_path / "big")
    started = time.perf_counter()
    gallery.add_embeddings([f"p{i}" for i in range(20_000) for _ in range(5)], stored)
    assert gallery.index_kind() == "hnsw"
    built = time.perf_counter() - started
    scores, ids = gallery._search_faces(queries, 10)
    all_ids = np.arange(1, len(stored) + 1)  # face ids are assigned in insertion order
    _, exact_ids = exact_top_k(queries, all_ids, stored, 10)
    recall10 = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact_ids)])
    recall1 = np.mean(ids[:, 0] == exact_ids[:, 0])
    print(f"100k faces: build+insert {built:.1f}s, recall@1 {recall1:.4f}, recall@10 {recall10:.4f}")
    assert recall1 >= 0.99 and recall10 >= 0.97


def _blob_gallery(path: Path, n_people: int = 300, exact_limit: int = 100, seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n_people * 2, 128)).astype(np.float32)
    gallery = LocalGallery(path, exact_limit=exact_limit)
    gallery.add_embeddings([f"p{i // 2}" for i in range(len(vectors))], vectors)
    return gallery, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_index_persists_catches_up_and_repairs(tmp_path):
    path = tmp_path / "persist"
    gallery, vectors = _blob_gallery(path)
    assert gallery.index_kind() == "hnsw"
    expected = [c[0].name for c in gallery.search(vectors[:50], k=1)]
    gallery.close()
    manifest = json.loads((path / "index" / "1.json").read_text())
    assert (path / "index" / manifest["file"]).exists()

    reopened = LocalGallery(path, exact_limit=100)
    assert [c[0].name for c in reopened.search(vectors[:50], k=1)] == expected
    assert reopened._index.mapped  # memory-mapped on open

    # another writer (a second object, as another process would be) adds and removes; the first catches up
    other = LocalGallery(path, exact_limit=100)
    other.add_embeddings(["newcomer"], vectors[:1] * -1)
    other.remove("p0")
    hits = reopened.search(np.stack([-vectors[0], vectors[0]]), k=1)
    assert hits[0][0].name == "newcomer" and hits[1][0].name != "p0"
    reopened.close()
    other.close()

    # damage: a corrupt index file, then a missing one; both rebuilt from the store with the same answers
    index_file = path / "index" / json.loads((path / "index" / "1.json").read_text())["file"]
    index_file.write_bytes(b"garbage" * 1000)
    repaired = LocalGallery(path, exact_limit=100)
    assert repaired.search(-vectors[:1], k=1)[0][0].name == "newcomer" and repaired.face_count() == 599
    repaired.close()
    for f in (path / "index").iterdir():
        f.unlink()
    rebuilt = LocalGallery(path, exact_limit=100)
    assert rebuilt.search(vectors[2:3], k=1)[0][0].name == "p1"
    # a stale manifest (index older than the log) is caught up, and one that disagrees with the store rebuilt
    assert rebuilt.reindex() == {"collection": "default", "faces": 599, "index": "hnsw"}
    rebuilt.close()
    info = json.loads((path / "index" / "1.json").read_text())
    info["live"] = info["ntotal"] = 5
    (path / "index" / "1.json").write_text(json.dumps(info))
    assert LocalGallery(path, exact_limit=100).search(vectors[2:3], k=1)[0][0].name == "p1"


def test_many_removals_rebuild_the_graph(tmp_path):
    gallery, vectors = _blob_gallery(tmp_path / "tomb")
    for i in range(0, 200):
        gallery.remove(f"p{i}")
    hits = gallery.search(vectors[400:401], k=3)
    assert hits[0][0].name == "p200"
    assert gallery._index.dead_share <= 0.25 and len(gallery._index) == gallery.face_count() == 200


def test_version_1_gallery_is_upgraded(tmp_path):
    folder = tmp_path / "v1"
    folder.mkdir()
    conn = sqlite3.connect(folder / "gallery.db")
    conn.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, metadata TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL);
        CREATE TABLE faces (id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
            embedding BLOB NOT NULL, source TEXT NOT NULL DEFAULT '', content_hash TEXT NOT NULL DEFAULT '',
            box TEXT NOT NULL DEFAULT '[]', score REAL NOT NULL DEFAULT 0, added_at REAL NOT NULL);
        INSERT INTO meta VALUES ('model_id', 'dlib_resnet_v1'), ('dim', '128'), ('schema_version', '1');
        INSERT INTO people VALUES (1, 'ann', '{"site": "x"}', 1.0), (2, 'bob', '{}', 2.0);
        """
    )
    a, b = np.eye(128, dtype=np.float32)[:2]
    conn.executemany("INSERT INTO faces (id, person_id, embedding, added_at) VALUES (?, ?, ?, 0)",
                     [(1, 1, a.tobytes()), (7, 2, b.tobytes())])
    conn.commit()
    conn.close()
    gallery = open_gallery(folder)
    assert [(p.name, p.face_count, p.metadata) for p in gallery.people()] == [("ann", 1, {"site": "x"}), ("bob", 1, {})]
    assert gallery.search(b[None], k=1)[0][0].name == "bob"
    assert gallery.add_embeddings(["cy"], a[None]) == [8]  # ids continue after the old ones


def test_filters_and_collections(tmp_path):
    location = tmp_path / "multi"
    paris = open_gallery(location, collection="paris")
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(6, 128)).astype(np.float32)
    paris.add_embeddings(["a", "b", "c"], vectors[:3], metadata=[{"site": "n"}, {"site": "s"}, {"site": "s", "vip": True}])
    assert paris.search(vectors[0:1], k=1, where={"site": "s"})[0][0].name in {"b", "c"}
    assert [c.name for c in paris.search(vectors[0:1], k=3, where={"site": ["n", "s"]})[0]][0] == "a"
    assert [c.name for c in paris.search(vectors[0:1], k=3, where={"vip": True})[0]] == ["c"]
    assert paris.search(vectors[0:1], k=3, where={"site": "nowhere"}) == [[]]
    assert [p.name for p in paris.people(where={"site": "s"})] == ["b", "c"]
    other = open_gallery(location, collection="lyon", model_id="arcface_r100")
    assert other.face_count() == 0 and other.search(vectors[:1], k=1) == [[]]
    with pytest.raises(ModelMismatchError):
        open_gallery(location, collection="lyon", model_id="dlib_resnet_v1")
    assert list_collections(location) == ["lyon", "paris"]
    assert drop_collection(location, "paris") == 3
    with pytest.raises(NotFoundError):
        drop_collection(location, "paris")
    assert list_collections(location) == ["lyon"]
    with pytest.raises(GalleryError):
        list_collections(tmp_path / "nothing-here")


def _clustered(n_people: int, faces: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """People as random centres with faces around them (neighbours well apart, as with real embeddings)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, 128))
    vectors = (centres[:, None] + 0.6 * rng.normal(size=(n_people, faces, 128))).reshape(-1, 128).astype(np.float32)
    names = [f"p{i}" for i in range(n_people) for _ in range(faces)]
    probes = (centres + 0.6 * rng.normal(size=centres.shape)).astype(np.float32)
    return names, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), probes


def _reference(vectors, names, probes, k, keep=None):
    """Top-k identities by brute force over every (kept) face: the best face's similarity per person."""
    probes = probes / np.linalg.norm(probes, axis=1, keepdims=True)
    sims = probes @ vectors.T
    if keep is not None:
        sims[:, ~keep] = -np.inf
    out = []
    for row in sims:
        best: dict[str, tuple[float, int]] = {}
        for face in np.argsort(-row):
            if not np.isfinite(row[face]) or len(best) == k:
                break
            best.setdefault(names[face], (float(row[face]), int(face) + 1))  # face ids are 1-based, in order
        out.append([(name, face_id) for name, (_, face_id) in best.items()])
    return out


def test_graph_search_gives_exact_identities(tmp_path):
    """The HNSW path (graph searched directly, ids mapped here, names through the people map) and the exact path
    return the same top-k identities, best faces and scores as brute force; also with mean-of-top-m scoring."""
    names, vectors, probes = _clustered(600, 4, seed=11)
    exact = LocalGallery(tmp_path / "exact")
    graph = LocalGallery(tmp_path / "graph", exact_limit=100)
    for g in (exact, graph):
        g.add_embeddings(names, vectors)
    assert exact.index_kind() == "exact" and graph.index_kind() == "hnsw"
    expected = _reference(vectors, names, probes, 5)
    for g in (exact, graph):
        found = g.search(probes, k=5)
        assert [[(c.name, c.face_id) for c in row] for row in found] == expected
    for a, b in zip(exact.search(probes, k=5), graph.search(probes, k=5)):
        assert [c.score for c in a] == pytest.approx([c.score for c in b], abs=1e-6)
    exact.identity_score = graph.identity_score = "mean_top_m"
    mean_exact, mean_graph = exact.search(probes, k=5), graph.search(probes, k=5)
    assert [[c.name for c in row] for row in mean_graph] == [[c.name for c in row] for row in mean_exact]
    face_sims = {int(i) + 1: v for i, v in enumerate(vectors)}
    probe = probes[0] / np.linalg.norm(probes[0])
    top = mean_graph[0][0]
    own = sorted((float(probe @ face_sims[i]) for i, n in enumerate(names, 1) if n == top.name), reverse=True)
    assert top.score == pytest.approx(np.mean(own[:3]), abs=1e-5)
    # a reopened gallery names its hits from the saved people file; without it, from the store; renames show at once
    graph.close()
    reopened = LocalGallery(tmp_path / "graph", exact_limit=100)
    assert [[(c.name, c.face_id) for c in row] for row in reopened.search(probes, k=5)] == expected
    other = LocalGallery(tmp_path / "graph", exact_limit=100)
    old_name = expected[0][0][0]
    other.rename(old_name, "renamed")
    expected = [[("renamed" if n == old_name else n, f) for n, f in row] for row in expected]
    assert [[(c.name, c.face_id) for c in row] for row in reopened.search(probes, k=5)] == expected
    reopened.close()
    other.close()
    for people_file in (tmp_path / "graph" / "index").glob("*.people.npy"):
        people_file.unlink()
    without = LocalGallery(tmp_path / "graph", exact_limit=100)
    assert [[(c.name, c.face_id) for c in row] for row in without.search(probes, k=5)] == expected


def test_graph_search_excludes_filtered_and_removed_faces(tmp_path):
    """Tombstones (removed people, below the rebuild share) and a metadata filter wide enough to search the graph
    with faiss selectors are both honoured, together and apart, with the same answers as brute force."""
    names, vectors, probes = _clustered(600, 4, seed=12)
    metadata = [{"site": "north" if int(n[1:]) % 3 else "south"} for n in names]
    gallery = LocalGallery(tmp_path / "g", exact_limit=100)
    gallery.add_embeddings(names, vectors, metadata=metadata)
    assert gallery.index_kind() == "hnsw"
    removed = {f"p{i}" for i in range(0, 600, 7)}
    for name in removed:
        gallery.remove(name)
    assert gallery.index_kind() == "hnsw" and 0 < gallery._index.dead_share <= 0.25  # searched with tombstones
    alive = np.array([n not in removed for n in names])
    north = np.array([m["site"] == "north" for m in metadata])
    assert north.sum() >= 100  # wide enough for the graph path, not the exact-subset one
    found = gallery.search(probes, k=5)
    assert [[(c.name, c.face_id) for c in row] for row in found] == _reference(vectors, names, probes, 5, alive)
    assert not removed & {c.name for row in found for c in row}
    filtered = gallery.search(probes, k=5, where={"site": "north"})
    assert [[(c.name, c.face_id) for c in row] for row in filtered] == _reference(
        vectors, names, probes, 5, alive & north
    )
    assert all(int(c.name[1:]) % 3 for row in filtered for c in row)
    # the same filter once the removals are gone from the graph (rebuilt from the store)
    gallery.reindex()
    assert gallery._index.dead_share == 0
    again = gallery.search(probes, k=5, where={"site": "north"})
    assert [[(c.name, c.face_id) for c in row] for row in again] == [[(c.name, c.face_id) for c in row] for row in filtered]
