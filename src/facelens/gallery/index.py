"""Vector indexes for the folder gallery: exact numpy search for small galleries, faiss HNSW for large ones.

Both answer face-level cosine top-k over L2-normalised vectors (inner product) and take an optional set of allowed
face ids (metadata filters). The HNSW graph cannot delete in place, so removals are tombstones excluded at search
time through a faiss ID selector; the index is rebuilt when tombstones pass a quarter of it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from facelens.errors import GalleryError

log = logging.getLogger(__name__)

#: Below this many faces exact search is used: it is exact and, measured with `python benchmarks/gallery.py`,
#: as fast as HNSW single queries up to about this size on two cores.
EXACT_LIMIT = 20_000
#: HNSW graph degree and build/search beam widths, from `python benchmarks/gallery.py` on face-like data at 1M faces:
#: efConstruction 100 reached recall@10 0.982 at efSearch 256; 200 (twice the build time) reaches 0.990 at 256 and
#: 0.993 at 320 (0.983 at 192), p50 1.4 ms at 320 on two shared cores. At 200k faces, efConstruction 200 gave the
#: recall of 100 at two thirds of the efSearch.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 320
TOMBSTONE_LIMIT = 0.25


class FaceIndex(Protocol):
    kind: str

    def __len__(self) -> int: ...
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...
    def remove(self, ids: np.ndarray) -> None: ...
    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...


def _empty(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)


def exact_top_k(queries: np.ndarray, ids: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-k by one matrix product and a partial sort (the reference every index is measured against)."""
    scores, out_ids = _empty(len(queries), k)
    n = len(ids)
    if n == 0 or len(queries) == 0:
        return scores, out_ids
    k_eff = min(k, n)
    sims = queries @ vectors.T
    part = np.argpartition(-sims, k_eff - 1, axis=1)[:, :k_eff] if k_eff < n else np.tile(np.arange(n), (len(queries), 1))
    part_scores = np.take_along_axis(sims, part, axis=1)
    order = np.argsort(-part_scores, axis=1)
    top = np.take_along_axis(part, order, axis=1)
    scores[:, :k_eff] = np.take_along_axis(part_scores, order, axis=1)
    out_ids[:, :k_eff] = ids[top]
    return scores, out_ids


class ExactIndex:
    """Brute-force search over an in-memory matrix: exact, and the fastest choice for small galleries."""

    kind = "exact"

    def __init__(self, dim: int, ids: np.ndarray | None = None, vectors: np.ndarray | None = None) -> None:
        self.dim = dim
        self.ids = np.zeros(0, np.int64) if ids is None else np.asarray(ids, np.int64)
        self.vectors = np.zeros((0, dim), np.float32) if vectors is None else np.asarray(vectors, np.float32)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids = np.concatenate([self.ids, np.asarray(ids, np.int64)])
        self.vectors = np.concatenate([self.vectors, np.asarray(vectors, np.float32).reshape(-1, self.dim)])

    def remove(self, ids: np.ndarray) -> None:
        keep = ~np.isin(self.ids, ids)
        self.ids, self.vectors = self.ids[keep], self.vectors[keep]

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if allowed is None:
            return exact_top_k(queries, self.ids, self.vectors, k)
        keep = np.isin(self.ids, allowed)
        return exact_top_k(queries, self.ids[keep], self.vectors[keep], k)


class HnswIndex:
    """faiss ``IndexHNSWFlat`` (inner product) under an id map, with tombstones for removed faces."""

    kind = "hnsw"

    def __init__(self, dim: int, index: object | None = None, tombstones: np.ndarray | None = None) -> None:
        import faiss

        self.dim = dim
        if index is None:
            graph = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index = faiss.IndexIDMap2(graph)
        self.index = index  # the id map is what is saved; searches go to the graph inside it (see search)
        self._graph = faiss.downcast_index(index.index)
        self.labels = faiss.vector_to_array(index.id_map).astype(np.int64)  # graph position -> face id
        self.tombstones: set[int] = set() if tombstones is None else {int(t) for t in tombstones}
        self._live: object | None = None  # cached selector of the live graph positions (None: rebuild)
        self.ef_search = HNSW_EF_SEARCH
        self.mapped = False  # True when loaded memory-mapped (read-only: reload before adding)

    def __len__(self) -> int:
        return int(self.index.ntotal) - len(self.tombstones)

    @property
    def dead_share(self) -> float:
        return len(self.tombstones) / max(int(self.index.ntotal), 1)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self.mapped:
            raise GalleryError("memory-mapped index is read-only; reload it before adding")
        ids = np.asarray(ids, np.int64)
        revived = self.tombstones.intersection(ids.tolist())
        if revived:  # an id cannot come back in SQLite (AUTOINCREMENT-like ids), but stay correct if it does
            raise GalleryError(f"face ids {sorted(revived)[:5]} were removed and cannot be re-added to the graph")
        self.index.add_with_ids(np.ascontiguousarray(vectors, np.float32), ids)
        self.labels = np.concatenate([self.labels, ids])
        self._live = None

    def remove(self, ids: np.ndarray) -> None:
        self.tombstones.update(int(i) for i in np.asarray(ids).ravel())
        self._live = None

    def _live_selector(self) -> object:
        """Graph positions not tombstoned, as a bitmap (built once per change, not per query)."""
        import faiss

        if self._live is None:
            alive = ~np.isin(self.labels, np.fromiter(self.tombstones, np.int64, len(self.tombstones)))
            bits = np.packbits(alive, bitorder="little")
            self._live = faiss.IDSelectorBitmap(bits)
            self._live._bits = bits  # faiss keeps a raw pointer to the bitmap
        return self._live

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Search the HNSW graph itself and map positions to face ids here: faiss's IndexIDMap does that mapping in
        an OpenMP loop that, for one query on busy cores, waits for a second thread and cost 5-10x the search."""
        import faiss

        if self.index.ntotal == 0:
            return _empty(len(queries), k)
        selectors, keep = [], []
        if self.tombstones:
            selectors.append(self._live_selector())
        if allowed is not None:  # face ids: translated to graph positions only for the nodes the search visits
            batch = faiss.IDSelectorBatch(np.asarray(allowed, np.int64))
            selectors.append(faiss.IDSelectorTranslated(self.index.id_map, batch))
            keep.append(batch)
        params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        if selectors:
            params.sel = selectors[0] if len(selectors) == 1 else faiss.IDSelectorAnd(*selectors)
            params._keep = selectors + keep  # keep the Python objects alive while faiss holds raw pointers
        scores, positions = self._graph.search(np.ascontiguousarray(queries, np.float32), k, params=params)
        found = positions >= 0
        ids = np.where(found, self.labels[np.where(found, positions, 0)], -1)
        scores = np.where(found, scores, -np.inf).astype(np.float32)
        return scores, ids

    def live_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Ids and vectors of the live faces (for rebuilding without tombstones or switching to exact)."""
        vectors = self._graph.reconstruct_n(0, int(self.index.ntotal))
        keep = ~np.isin(self.labels, np.fromiter(self.tombstones, np.int64)) if self.tombstones else slice(None)
        return self.labels[keep], vectors[keep]

    def save(self, path: Path) -> None:
        import faiss

        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, dim: int, tombstones: list[int], mmap: bool = True) -> "HnswIndex":
        import faiss

        flags = faiss.IO_FLAG_MMAP_IFC if mmap else 0
        index = faiss.read_index(str(path), flags)
        if index.d != dim:
            raise GalleryError(f"index {path} holds {index.d}-D vectors, the gallery {dim}-D")
        out = cls(dim, index=index, tombstones=np.asarray(tombstones, np.int64))
        out.mapped = mmap
        return out


def build_index(dim: int, ids: np.ndarray, vectors: np.ndarray, exact_limit: int = EXACT_LIMIT) -> FaceIndex:
    """The right index for this many faces, filled."""
    if len(ids) < exact_limit:
        return ExactIndex(dim, ids, vectors)
    index = HnswIndex(dim)
    for start in range(0, len(ids), 100_000):
        index.add(ids[start : start + 100_000], vectors[start : start + 100_000])
    return index


class IndexFiles:
    """The persisted HNSW index of one collection: ``index/<cid>.json`` names the current ``.faiss`` file, the
    ``.people.npy`` file beside it (the person of each graph position, so a search names faces without asking the
    store) and the change-log position they reflect. Files first, manifest second (atomic rename), so a crash leaves
    either the old set or the new one; a missing, unreadable or mismatched index is simply rebuilt from the store."""

    def __init__(self, folder: Path, collection_id: int) -> None:
        self.folder = folder / "index"
        self.manifest = self.folder / f"{collection_id}.json"
        self.collection_id = collection_id

    def read(self, dim: int) -> tuple[HnswIndex, int, int, np.ndarray | None] | None:
        """(index, change seq, live count, person per graph position or None) or None when absent or unusable
        (logged). The persons are None when their file is absent or does not fit (the store is asked instead)."""
        try:
            info = json.loads(self.manifest.read_text())
            path = self.folder / info["file"]
            index = HnswIndex.load(path, dim, info.get("tombstones", []))
            if int(index.index.ntotal) != int(info["ntotal"]):
                raise GalleryError(f"{path} holds {index.index.ntotal} vectors, its manifest says {info['ntotal']}")
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - any damage means "rebuild from the store of record"
            log.warning("gallery index %s unusable (%s); rebuilding from the store", self.manifest, exc)
            return None
        people = None
        if info.get("people"):
            try:
                people = np.load(self.folder / info["people"])
                if people.shape != (int(info["ntotal"]),) or people.dtype != np.int64:
                    raise GalleryError(f"holds {people.shape} {people.dtype}, expected ({info['ntotal']},) int64")
            except Exception as exc:  # noqa: BLE001 - only a shortcut: the store has the same answer
                log.warning("gallery index people file %s unusable (%s); reading them from the store", info["people"], exc)
                people = None
        return index, int(info["seq"]), int(info["live"]), people

    def write(self, index: HnswIndex, seq: int, people: np.ndarray) -> None:
        """Save the index and ``people`` (the person id of each graph position)."""
        self.folder.mkdir(exist_ok=True)
        name = f"{self.collection_id}-{seq}-{os.getpid()}"
        index.save(self.folder / f"{name}.faiss")
        tmp = self.folder / f"{name}.people.tmp{os.getpid()}.npy"
        np.save(tmp, np.asarray(people, np.int64))
        os.replace(tmp, self.folder / f"{name}.people.npy")
        info = {"file": f"{name}.faiss", "people": f"{name}.people.npy", "seq": seq, "ntotal": int(index.index.ntotal),
                "live": len(index), "tombstones": sorted(index.tombstones)}
        tmp = self.manifest.with_name(self.manifest.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, self.manifest)
        for old in self._files():
            if old.name not in (info["file"], info["people"]):
                try:
                    old.unlink()  # a reader holding it mapped keeps its pages until it closes (POSIX)
                except OSError:
                    pass

    def _files(self) -> list[Path]:
        """This collection's saved files (not other writers' unfinished temporaries)."""
        cid = self.collection_id
        return [*self.folder.glob(f"{cid}-*.faiss"), *self.folder.glob(f"{cid}-*.people.npy")]

    def remove(self) -> None:
        for path in [self.manifest, *self._files()]:
            path.unlink(missing_ok=True)
