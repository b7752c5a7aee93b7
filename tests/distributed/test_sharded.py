"""Sharded search merges per-shard answers into the single index's answer."""

from __future__ import annotations

import numpy as np

from facelens.distributed.sharded import merge_top_k
from facelens.gallery.index import exact_top_k


def unit(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, 128)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_merged_shards_equal_one_exact_search():
    vectors, queries = unit(3000, 0), unit(50, 1)
    ids = np.arange(len(vectors), dtype=np.int64) * 7 + 3  # ids that are not positions
    parts = [exact_top_k(queries, ids[s::3], vectors[s::3], 10) for s in range(3)]
    scores, found = merge_top_k(parts, 10)
    expected_scores, expected = exact_top_k(queries, ids, vectors, 10)
    assert np.array_equal(found, expected)
    assert np.allclose(scores, expected_scores)


def test_sharded_index_on_ray_answers_as_one_index(ray_cluster):
    from facelens.distributed.sharded import ShardedIndex

    vectors, queries = unit(4000, 2), unit(40, 3)
    ids = np.arange(len(vectors), dtype=np.int64)
    index = ShardedIndex(ids, vectors, shards=2)
    try:
        assert len(index) == len(vectors)
        _, found = index.search(queries, 5)
        assert np.array_equal(found, exact_top_k(queries, ids, vectors, 5)[1])  # small shards: exact per shard
        _, few = index.search(queries, 5000)  # k beyond a shard's size: padded, then merged
        assert (few[:, : len(vectors)] >= 0).all()
    finally:
        index.close()
