"""The gallery interface: it stores and searches vectors and never runs a model. Backends (folder = SQLite +
vectors, PostgreSQL + pgvector) implement a few storage primitives; writes of embedded faces, identity-level search
and the open-set threshold for the gallery's size live here once, so every backend gives the same answers (the
decision itself is :func:`facelens.decide.open_set_names`, made by the engine's identify task). Enrolment from images and
identification of images are :func:`facelens.enroll` / :func:`facelens.identify` (the engine embeds, this stores).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from facelens.decide import DEFAULT_FPIR, ThresholdPolicy
from facelens.errors import GalleryError, ModelMismatchError

#: People written per transaction by bulk imports (each person whole inside one transaction).
BULK_PEOPLE = 2000
#: Cosine similarity above which two embeddings are taken for the same face (the same photo, re-encoded or
#: resized, or a near-identical shot): a "not this person" mark on a library face applies to a probe this close
#: to it. Measured with dlib ResNet on the 1,926 LFW DevTest photos: 2.2 % of the 3,553 same-person pairs of
#: different photos reach it (the mark then follows the person's near-duplicates, which is the intent).
SAME_FACE = 0.98


@dataclass(frozen=True)
class Person:
    name: str
    face_count: int
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FaceRecord:
    """One enrolled face. ``embedding`` is omitted (None) where a listing does not need it."""

    face_id: int
    name: str
    source: str
    content_hash: str
    box: list[float]
    score: float
    added_at: float
    embedding: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("embedding")
        return out


@dataclass(frozen=True)
class Candidate:
    """A gallery identity scored against a probe face: ``score`` is cosine similarity (identity level)."""

    name: str
    score: float
    face_id: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": round(self.score, 4), "face_id": self.face_id}


@dataclass(frozen=True)
class NewFaces:
    """One person's faces to add in one transaction: vectors [n, dim] and per-face fields (source, box...)."""

    name: str
    vectors: np.ndarray
    faces: Sequence[dict[str, Any]]
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:  # every write of faces passes here: nothing unchecked reaches a store
        _check_metadata(self.metadata)


@dataclass
class EnrollResult:
    name: str
    added: list[int] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"source": ..., "reason": ...}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def content_hash(image: np.ndarray) -> str:
    """Hash of decoded pixels, so the same photo re-enrolled from another path or format is recognised."""
    digest = hashlib.sha256()
    digest.update(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()[:32]


def new_collection_model(model_id: str | None, dim: int | None) -> tuple[str, int]:
    """The model id and vector size a new collection records: the default embedder's unless told, and the size
    that model's vectors have (128, the historical default, for a model this facelens does not know)."""
    from facelens.embed import DEFAULT_MODEL_ID, MODELS

    model_id = model_id or DEFAULT_MODEL_ID
    if dim is None:
        dim = next((m.dim for m in MODELS.values() if m.model_id == model_id), 128)
    return model_id, int(dim)


class Gallery(ABC):
    """People, their faces and a vector index, for one embedding model.

    Subclasses implement the storage primitives (the methods starting with ``_``) transactionally.
    """

    location: str
    collection: str = "default"
    model_id: str
    identity_score: str = "max"  # "max" (best face) or "mean_top_m"
    top_m: int = 3

    # -- storage primitives -------------------------------------------------------------------------
    @abstractmethod
    def _insert_people(self, batch: Sequence[NewFaces]) -> list[list[int]]:
        """Add each person's faces (creating the person if new) in one transaction; return the new face ids."""

    @abstractmethod
    def _search_faces(self, vectors: np.ndarray, k: int, where: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Face-level nearest neighbours by cosine similarity among people matching ``where`` (metadata equality;
        a list value means "any of"): (scores [n, k], face ids [n, k]; -1 where fewer)."""

    @abstractmethod
    def _names_of(self, face_ids: Iterable[int]) -> dict[int, str]: ...

    @abstractmethod
    def _hash_exists(self, name: str, digest: str) -> bool: ...

    @abstractmethod
    def _add_person(self, name: str, metadata: dict[str, Any]) -> None: ...

    @abstractmethod
    def _update_person(self, name: str, metadata: dict[str, Any]) -> None: ...

    @abstractmethod
    def _delete_person(self, name: str) -> int: ...

    @abstractmethod
    def _delete_face(self, face_id: int) -> None: ...

    @abstractmethod
    def _rename(self, old: str, new: str) -> None: ...

    @abstractmethod
    def people(self, where: dict[str, Any] | None = None) -> list[Person]: ...

    @abstractmethod
    def faces(
        self, name: str | None = None, with_embeddings: bool = False, after_id: int = 0, limit: int | None = None
    ) -> list[FaceRecord]:
        """Faces in id order (``after_id``/``limit`` page through large galleries)."""

    @abstractmethod
    def face_count(self) -> int: ...

    @abstractmethod
    def close(self) -> None: ...

    def reindex(self) -> dict[str, Any]:
        """Rebuild the vector index from the store of record (backends with a separate index override this)."""
        return {"faces": self.face_count(), "index": "exact"}

    # -- shared behaviour ---------------------------------------------------------------------------
    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def person_count(self) -> int:
        return len(self.people())

    def check_model(self, model_id: str) -> None:
        if model_id != self.model_id:
            raise ModelMismatchError(
                f"gallery {self.location} holds embeddings of model {self.model_id!r}; "
                f"these come from {model_id!r}. Use the gallery's model or create a new gallery"
            )

    def add_embeddings(
        self,
        names: Sequence[str],
        vectors: np.ndarray,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        model_id: str | None = None,
        on_progress: Any = None,
        content_hashes: Sequence[str] | None = None,
    ) -> list[int]:
        """Add faces embedded elsewhere (one row per face; a person's metadata is the union of its rows').

        Each person's faces go in one transaction (people are written in batches), so an interrupted import
        leaves whole people or none. ``content_hashes`` (one per row) are stored for later duplicate checks.
        Returns the new face ids in input order.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(names) != len(vectors):
            raise GalleryError(f"expected one {self.dim}-D vector per name, got {vectors.shape} for {len(names)} names")
        if model_id is not None:
            self.check_model(model_id)
        if vectors.shape[1] != self.dim:
            raise ModelMismatchError(f"gallery vectors are {self.dim}-D; got {vectors.shape[1]}-D")
        if not np.isfinite(vectors).all():
            raise GalleryError("embeddings contain NaN or infinity")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if np.any(norms < 1e-12):
            raise GalleryError("embeddings contain an all-zero vector")
        # normalise only rows that are not unit length already, so stored vectors round-trip bit-identical
        vectors = np.where(np.abs(norms - 1) > 1e-6, vectors / norms, vectors).astype(np.float32)
        groups: dict[str, list[int]] = {}
        for index, name in enumerate(names):
            groups.setdefault(_check_name(name), []).append(index)
        items = list(groups.items())
        ids = np.zeros(len(names), np.int64)
        for start in range(0, len(items), BULK_PEOPLE):
            chunk = items[start : start + BULK_PEOPLE]
            batch = []
            for name, rows in chunk:
                meta: dict[str, Any] = {}
                for row in rows:
                    meta.update(_check_metadata(metadata[row] if metadata is not None else None))
                faces = [{"source": "", "content_hash": content_hashes[row] if content_hashes is not None else "",
                          "box": [], "score": 0.0} for row in rows]
                batch.append(NewFaces(name, vectors[rows], faces, meta or None))
            for (_, rows), new_ids in zip(chunk, self._insert_people(batch)):
                ids[rows] = new_ids
            if on_progress:
                on_progress(sum(len(rows) for _, rows in chunk))
        return ids.tolist()

    @property
    def dim(self) -> int:
        return 128

    def add_faces(
        self,
        name: str,
        vectors: np.ndarray,
        faces: Sequence[dict[str, Any]],
        metadata: dict[str, Any] | None = None,
        model_id: str | None = None,
    ) -> list[int]:
        """Add one person's faces, already embedded, in one transaction (all or none); creates the person if new.

        ``faces`` holds per-face fields: ``source``, ``content_hash``, ``box``, ``score``. Returns the new face ids.
        """
        name = _check_name(name)
        metadata = _check_metadata(metadata) or None
        if model_id is not None:
            self.check_model(model_id)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(faces), -1) if len(faces) else np.zeros((0, self.dim))
        if not len(faces):
            return []
        if vectors.shape[1] != self.dim:
            raise ModelMismatchError(f"gallery vectors are {self.dim}-D; got {vectors.shape[1]}-D")
        if not np.isfinite(vectors).all():
            raise GalleryError("embeddings contain NaN or infinity")
        return self._insert_people([NewFaces(name, vectors, list(faces), metadata)])[0]

    def has_image(self, name: str, digest: str) -> bool:
        """Whether ``name`` already has a face from an image with this content hash (see :func:`content_hash`)."""
        return self._hash_exists(_check_name(name), digest)

    def search(self, vectors: np.ndarray, k: int = 5, where: dict[str, Any] | None = None) -> list[list[Candidate]]:
        """Top-k identities per query vector, scored at identity level (see ``identity_score``), among people
        whose metadata matches ``where`` (e.g. ``{"site": "paris"}``; a list value means any of its values)."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if vectors.shape[1] != self.dim:
            raise ModelMismatchError(f"gallery vectors are {self.dim}-D; got {vectors.shape[1]}-D queries")
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        depth = max(k * max(self.top_m, 4), 32)
        scores, ids = self._search_faces(vectors, depth, where or None)
        owners = self._owners_of({i for i in ids.ravel().tolist() if i >= 0})
        ranked = [self._rank_identities(row, row_ids, owners, k) for row, row_ids in zip(scores.tolist(), ids.tolist())]
        names = self._owner_names({owner for row in ranked for owner, _, _ in row})
        return [[Candidate(names[o], score, face_id) for o, score, face_id in row if o in names] for row in ranked]

    def _owners_of(self, face_ids: Iterable[int]) -> dict[int, Any]:
        """Face id -> the key of its person (here the name; a backend may use a cheaper key and name only the
        top-k people through ``_owner_names``). Faces removed meanwhile are left out."""
        return self._names_of(face_ids)

    def _owner_names(self, owners: Iterable[Any]) -> dict[Any, str]:
        return {owner: owner for owner in owners}

    def _rank_identities(
        self, scores: list[float], ids: list[int], owners: dict[int, Any], k: int
    ) -> list[tuple[Any, float, int]]:
        """One query's face hits grouped into identity scores: (owner, score, best face id), best first. Plain
        Python lists: iterating numpy scalars cost more than the vector search itself for one query."""
        per_person: dict[Any, list] = {}  # owner -> [best face id, best score, scores...] in order of first hit
        for score, face_id in sorted(zip(scores, ids), key=lambda hit: -hit[0]):
            owner = owners.get(face_id)
            if owner is None:  # -1 (fewer hits than asked) or a face removed since the index answered
                continue
            hits = per_person.get(owner)
            if hits is None:
                per_person[owner] = [face_id, score, score]
            else:
                if score == hits[1] and face_id > hits[0]:  # equal best scores: the newest face, as ever
                    hits[0] = face_id
                hits.append(score)
        if self.identity_score == "mean_top_m":
            ranked = [(o, float(np.mean(h[2 : 2 + self.top_m])), h[0]) for o, h in per_person.items()]
            ranked.sort(key=lambda c: c[1], reverse=True)
        else:  # people in order of their best face: already ranked
            ranked = [(o, h[1], h[0]) for o, h in per_person.items()]
        return ranked[:k]

    def open_set_threshold(self, fpir: float = DEFAULT_FPIR) -> float:
        """Similarity a probe must reach so that strangers are named at rate ``fpir`` for this gallery's size."""
        return ThresholdPolicy(fpir=fpir).threshold(self.model_id, self.face_count())

    def add_person(self, name: str, metadata: dict[str, Any] | None = None) -> Person:
        """Create a person with no faces yet (enrolment also creates people implicitly)."""
        name = _check_name(name)
        self._add_person(name, _check_metadata(metadata))
        return self.person(name)

    @abstractmethod
    def person(self, name: str) -> Person:
        """One person (``NotFoundError`` if absent)."""

    def update_person(self, name: str, metadata: dict[str, Any]) -> Person:
        """Replace a person's metadata."""
        self._update_person(name, _check_metadata(metadata))
        return self.person(name)

    def remove(self, name: str) -> int:
        """Remove a person and all their faces; returns how many faces went."""
        self._forget_library_faces(name)  # their photo-library detections (embeddings) go too, never to come back
        return self._delete_person(name)

    def remove_face(self, face_id: int) -> None:
        self._delete_face(face_id)

    def erase(self, name: str) -> dict[str, Any]:
        """Remove a person so that nothing of their faces can be read back from the storage (right to erasure):
        the rows go, the vector index is rebuilt without them (no tombstones), and the backend compacts its
        files (see ``_purge``). ``remove`` only deletes; this also leaves no deleted bytes behind."""
        removed = self._delete_person(name)
        return {"name": name, "faces_removed": removed, **self._purge()}

    def _purge(self) -> dict[str, Any]:
        """Make deleted rows unrecoverable from the store's files (backends override: vacuum, checkpoint)."""
        return {"index": self.reindex()}

    def rename(self, old: str, new: str) -> None:
        self._rename(old, _check_name(new))

    def stats(self) -> dict[str, Any]:
        people = self.people()
        return {
            "location": self.location,
            "collection": self.collection,
            "model_id": self.model_id,
            "people": len(people),
            "faces": self.face_count(),
            "open_set_threshold": round(self.open_set_threshold(), 4) if people else None,
            "fpir": DEFAULT_FPIR,
        }

    # -- the photo library: detections, clusters and constraints (see facelens.gallery.library) ----------
    def _library(self, write: bool = True) -> Any:
        """A context manager yielding ``(connection, LibrarySQL)``, inside one transaction when ``write``."""
        raise GalleryError(f"{type(self).__name__} galleries keep no photo library (clustering needs a folder or "
                           "PostgreSQL gallery)")

    def _library_exists(self) -> bool:
        """Whether this store has library tables yet (reads and removals skip the library when not)."""
        return False

    def _drop_faces(self, conn: Any, face_ids: list[int]) -> None:
        """Delete gallery faces inside a library transaction (the backend's index follows). Only reached inside
        :meth:`_library`, which refuses a store without a library before this."""
        raise GalleryError(f"{type(self).__name__} galleries keep no photo library")

    def _forget_library_faces(self, name: str) -> None:
        """Delete the library detections that became this person's faces (the photos stay known, so they are not
        processed again and the faces do not return)."""
        if self._library_exists():
            with self._library() as (conn, sql):
                sql.forget_person(conn, name)

    def library_photos(self) -> dict[str, Any]:
        """Path -> :class:`~facelens.gallery.library.PhotoState` of every photo the library has processed."""
        with self._library(write=False) as (conn, sql):
            return sql.photos(conn)

    def library_put(self, photos: Sequence[Any]) -> list[list[int]]:
        """Store processed photos and their detections in one transaction (a changed photo's old detections and
        the gallery faces they became go); returns the new detection ids per photo."""
        with self._library() as (conn, sql):
            return sql.put_photos(conn, photos, now(), self._drop_faces)

    def library_touch(self, path: str, mtime: float, size: int) -> None:
        """Record a new modification time for a photo whose bytes did not change."""
        with self._library() as (conn, sql):
            sql.touch(conn, path, mtime, size)

    def library_forget(self, paths: Sequence[str]) -> int:
        """Forget photos (deleted from disk): their detections, constraints and gallery faces."""
        with self._library() as (conn, sql):
            return sql.forget_photos(conn, paths, self._drop_faces)

    def detections(self, with_embeddings: bool = False, person: str | None = None,
                   ids: Sequence[int] | None = None) -> list[Any]:
        """The library's detections (:class:`~facelens.gallery.library.Detection`), all, one person's, or by id."""
        with self._library(write=False) as (conn, sql):
            person_id = None
            if person is not None:
                person_id = sql.person_ids(conn).get(person)
                if person_id is None:
                    from facelens.errors import NotFoundError

                    raise NotFoundError(f"no person named {person!r} in gallery {self.collection!r}")
            return sql.detections(conn, with_embeddings, person_id, ids)

    def set_detection_state(self, detection_ids: Sequence[int], state: str) -> None:
        """Mark detections ``pending`` / ``removed`` / ``low_quality``; the gallery faces they were go."""
        from facelens.gallery.library import LOW_QUALITY, PENDING, REMOVED

        if state not in (PENDING, REMOVED, LOW_QUALITY):
            raise GalleryError(f"unknown detection state {state!r}")
        found = self.detections(ids=detection_ids)
        with self._library() as (conn, sql):
            faces = [d.face_id for d in found if d.face_id is not None]
            if faces:
                self._drop_faces(conn, faces)
            sql.set_state(conn, [d.detection_id for d in found], state)

    def assign_detections(self, name: str, detections: Sequence[Any], metadata: dict[str, Any] | None = None) -> list[int]:
        """Make library detections (with embeddings) faces of ``name``: the new faces and their links in one
        transaction, then the faces they were before (if any) go. Returns the new face ids."""
        if not detections:
            return []
        vectors = np.stack([d.embedding for d in detections])
        faces = [{"source": d.path, "content_hash": "", "box": d.box, "score": d.score,
                  "detection_id": d.detection_id} for d in detections]
        new_ids = self.add_faces(name, vectors, faces, metadata)
        old = [d.face_id for d in detections if d.face_id is not None]
        if old:
            with self._library() as (conn, _):
                self._drop_faces(conn, old)
        return new_ids

    def add_constraint(self, kind: str, a: int, b: int) -> None:
        """Store a cannot-link constraint (``not_person``: detection a, person id b; ``different``: people a, b)."""
        with self._library() as (conn, sql):
            sql.add_constraint(conn, kind, a, b, now())

    def constraints(self) -> list[tuple[str, int, int]]:
        with self._library(write=False) as (conn, sql):
            return sql.constraints(conn)

    def person_ids(self) -> dict[str, int]:
        """Name -> the person's stable id (constraints refer to people by id, so they survive renames)."""
        with self._library(write=False) as (conn, sql):
            return sql.person_ids(conn)

    def excluded_names(self, vectors: np.ndarray) -> list[set[str]]:
        """Per probe vector, the names it must never get: those of people a user said a library face showing
        the same face (cosine >= SAME_FACE) is not. Empty sets when there are no such constraints."""
        vectors = np.atleast_2d(np.asarray(vectors, np.float32))
        out: list[set[str]] = [set() for _ in vectors]
        if not self._library_exists():
            return out
        with self._library(write=False) as (conn, sql):
            marked, names = sql.not_person_vectors(conn)
        if not names:
            return out
        rows, cols = np.nonzero(vectors @ marked.T >= SAME_FACE)
        for row, col in zip(rows.tolist(), cols.tolist()):
            out[row].add(names[col])
        return out

    def drop_excluded(self, vectors: np.ndarray, ranked: list[list[Candidate]]) -> list[list[Candidate]]:
        """Search results without the candidates each probe was marked "not this person" for."""
        excluded = self.excluded_names(vectors)
        return [[c for c in row if c.name not in banned] if banned else row for row, banned in zip(ranked, excluded)]

    def cluster(self, **options: Any) -> Any:
        """Cluster the library's pending faces (already detected and embedded): see :func:`facelens.cluster.cluster_pending`."""
        from facelens.cluster import cluster_pending

        return cluster_pending(self, **options)


def _check_name(name: str) -> str:
    name = str(name).strip()
    if not name or len(name) > 256 or any(ch in name for ch in "\0\n\r"):
        raise GalleryError(f"invalid person name {name!r}")
    return name


#: Person metadata limits: a JSON object of at most this many bytes (as compact JSON) and this nesting depth.
METADATA_MAX_BYTES = 16 * 1024
METADATA_MAX_DEPTH = 8


def check_metadata(metadata: Any) -> dict[str, Any]:
    """Person metadata as every door must give it: a JSON object (string keys; strings, numbers, booleans, null,
    lists and objects as values), nested at most METADATA_MAX_DEPTH deep and METADATA_MAX_BYTES long. Checked without
    recursion, so hostile nesting is refused with a clear error instead of exhausting the stack."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise GalleryError(f"metadata must be a JSON object, got {type(metadata).__name__}")
    stack: list[tuple[Any, int]] = [(metadata, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > METADATA_MAX_DEPTH:
                raise GalleryError(f"metadata is nested more than {METADATA_MAX_DEPTH} levels deep")
            for key, item in value.items():
                if not isinstance(key, str):
                    raise GalleryError(f"metadata keys must be strings, got {type(key).__name__}")
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            if depth > METADATA_MAX_DEPTH:
                raise GalleryError(f"metadata is nested more than {METADATA_MAX_DEPTH} levels deep")
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise GalleryError("metadata numbers must be finite")
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            raise GalleryError(f"metadata values must be JSON values, got {type(value).__name__}")
    size = len(json.dumps(metadata, separators=(",", ":")).encode())
    if size > METADATA_MAX_BYTES:
        raise GalleryError(f"metadata is {size:,} bytes as JSON; the limit is {METADATA_MAX_BYTES:,}")
    return metadata


_check_metadata = check_metadata


def parse_key_values(items: Sequence[str] | None, what: str = "filter") -> dict[str, Any] | None:
    """``KEY=VALUE`` items as a dict (a repeated key collects a list, meaning "any of"); values are JSON when they
    parse, else strings. The one parser of metadata and filters given as text, for the CLI and the service."""
    if not items:
        return None
    pairs: dict[str, Any] = {}
    for item in items:
        key, sep, raw = str(item).partition("=")
        if not sep or not key:
            raise GalleryError(f"{what} expects KEY=VALUE, got {item!r}")
        try:
            value = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            value = raw
        if key in pairs:
            previous = pairs[key]
            pairs[key] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            pairs[key] = value
    return pairs


def matches(metadata: dict[str, Any], where: dict[str, Any] | None) -> bool:
    """Whether person metadata satisfies a filter: equality per key, a list value meaning any of its values."""
    for key, wanted in (where or {}).items():
        value = metadata.get(key)
        if isinstance(wanted, list) and not isinstance(value, list):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


def now() -> float:
    return time.time()
