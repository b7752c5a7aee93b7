"""Comparing galleries face by face (shared by the Ray tests): same people, same images, vectors bit for bit."""

from __future__ import annotations

from collections import Counter

import numpy as np

from facelens.gallery import open_gallery


def gallery_faces(location, collection: str = "default") -> dict[tuple[str, str], tuple[list[float], np.ndarray]]:
    """(person, content hash) -> (box, embedding) of every face; fails on a duplicated face."""
    with open_gallery(str(location), create=False, collection=collection) as store:
        faces = store.faces(with_embeddings=True)
    keys = Counter((f.name, f.content_hash) for f in faces)
    assert max(keys.values(), default=1) == 1, f"duplicated faces: {[k for k, n in keys.items() if n > 1]}"
    return {(f.name, f.content_hash): (list(f.box), np.asarray(f.embedding)) for f in faces}


def assert_same(local: dict, other: dict) -> None:
    assert sorted(other) == sorted(local)  # same people, same images, same face count
    for key, (box, vector) in local.items():
        assert other[key][0] == box
        assert np.array_equal(other[key][1], vector), f"{key}: vectors differ"  # bit for bit
