"""Search over a gallery too large for one index: the faces split into shards, each shard's HNSW graph held by a
Ray actor (on whichever node has the memory), every query batch sent to all shards at once and the per-shard
top-k merged by score. Each shard answers exactly what the folder gallery's index would for its faces
(:class:`facelens.gallery.index.HnswIndex`, same parameters), so the merged top-k is the single index's top-k up
to HNSW's own approximation. Measured against one index in ``benchmarks/ray.py --search`` (docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facelens.distributed import require_ray


class ShardSearcher:
    """One shard: its faces' ids and vectors, indexed once (HNSW, or exact below the folder gallery's limit)."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, threads: int = 1) -> None:
        import faiss

        from facelens.gallery.index import build_index

        faiss.omp_set_num_threads(threads)
        self.index = build_index(vectors.shape[1], np.asarray(ids, np.int64), np.asarray(vectors, np.float32))

    def size(self) -> int:
        return len(self.index)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(np.asarray(queries, np.float32), k)


def merge_top_k(parts: Sequence[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the k best (score, id) over every shard's answer (missing entries are -inf / -1)."""
    scores = np.concatenate([p[0] for p in parts], axis=1)
    ids = np.concatenate([p[1] for p in parts], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


class ShardedIndex:
    """``shards`` Ray actors, each holding the faces whose id falls in it (``id % shards``); ``search`` asks all
    of them in parallel and merges. ``threads``: faiss threads per shard actor (and the CPUs it reserves)."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, shards: int, threads: int = 1) -> None:
        ray = require_ray()
        self._ray = ray
        ids = np.asarray(ids, np.int64)
        actor = ray.remote(num_cpus=threads)(ShardSearcher)
        self.actors = [actor.remote(ids[ids % shards == s], vectors[ids % shards == s], threads)
                       for s in range(shards)]
        ray.get([a.size.remote() for a in self.actors])  # built (in parallel) before the first query

    def __len__(self) -> int:
        return sum(self._ray.get([a.size.remote() for a in self.actors]))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        batch = self._ray.put(np.asarray(queries, np.float32))
        return merge_top_k(self._ray.get([a.search.remote(batch, k) for a in self.actors]), k)

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a)
        self.actors = []


__all__ = ["ShardSearcher", "ShardedIndex", "merge_top_k"]
