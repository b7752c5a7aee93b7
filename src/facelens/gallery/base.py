"""The gallery interface. Backends (folder = SQLite + vectors, PostgreSQL + pgvector) implement a few storage
primitives; enrolment, identification and open-set decisions live here once, so every backend gives the same answers.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from facelens.errors import FacelensError, GalleryError, ModelMismatchError
from facelens.io.image import ImageInput, describe_source

#: Default open-set false-positive identification rate (share of strangers given some enrolled name).
DEFAULT_FPIR = 0.01


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
class Match:
    """The decision for one probe face: ``name`` is None (unknown) unless the best candidate clears ``threshold``."""

    box: list[float]
    name: str | None
    score: float
    threshold: float
    candidates: list[Candidate]
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or "unknown"

    def to_dict(self) -> dict[str, Any]:
        out = {
            "box": [round(v, 1) for v in self.box],
            "name": self.name,
            "label": self.label,
            "score": round(self.score, 4),
            "threshold": round(self.threshold, 4),
            "candidates": [c.to_dict() for c in self.candidates],
        }
        out.update(self.extras)
        return out


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


class Gallery(ABC):
    """People, their faces and a vector index, for one embedding model.

    Subclasses implement the storage primitives (the methods starting with ``_``) transactionally.
    """

    location: str
    model_id: str
    identity_score: str = "max"  # "max" (best face) or "mean_top_m"
    top_m: int = 3

    # -- storage primitives -------------------------------------------------------------------------
    @abstractmethod
    def _insert(self, name: str, vectors: np.ndarray, faces: Sequence[dict[str, Any]], metadata: dict | None) -> list[int]:
        """Add faces (and the person if new) in one transaction; return the new face ids."""

    @abstractmethod
    def _search_faces(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Face-level nearest neighbours by cosine similarity: (scores [n, k], face ids [n, k]; -1 where fewer)."""

    @abstractmethod
    def _names_of(self, face_ids: Iterable[int]) -> dict[int, str]: ...

    @abstractmethod
    def _hash_exists(self, name: str, digest: str) -> bool: ...

    @abstractmethod
    def _delete_person(self, name: str) -> int: ...

    @abstractmethod
    def _delete_face(self, face_id: int) -> None: ...

    @abstractmethod
    def _rename(self, old: str, new: str) -> None: ...

    @abstractmethod
    def people(self) -> list[Person]: ...

    @abstractmethod
    def faces(self, name: str | None = None, with_embeddings: bool = False) -> list[FaceRecord]: ...

    @abstractmethod
    def face_count(self) -> int: ...

    @abstractmethod
    def close(self) -> None: ...

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
    ) -> list[int]:
        """Add faces embedded elsewhere (one row per face). Each person's faces go in one transaction."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(names) != len(vectors):
            raise GalleryError(f"expected one {self.dim}-D vector per name, got {vectors.shape} for {len(names)} names")
        if model_id is not None:
            self.check_model(model_id)
        if vectors.shape[1] != self.dim:
            raise ModelMismatchError(f"gallery vectors are {self.dim}-D; got {vectors.shape[1]}-D")
        if not np.isfinite(vectors).all():
            raise GalleryError("embeddings contain NaN or infinity")
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        ids: list[int] = []
        groups: dict[str, list[int]] = {}
        for index, name in enumerate(names):
            groups.setdefault(_check_name(name), []).append(index)
        for name, rows in groups.items():
            meta = (metadata[rows[0]] if metadata is not None else None) or None
            faces = [{"source": "", "content_hash": "", "box": [], "score": 0.0} for _ in rows]
            ids += self._insert(name, vectors[rows], faces, meta)
        return ids

    @property
    def dim(self) -> int:
        return 128

    def enroll(
        self,
        name: str,
        images: Sequence[ImageInput],
        metadata: dict[str, Any] | None = None,
        pipeline: Any = None,
        select: str = "largest",
        on_progress: Any = None,
        min_quality: float | None = None,
    ) -> EnrollResult:
        """Embed one face per image (the largest by default) and add them to ``name``.

        Images with no face, unreadable images and images already enrolled for this person are skipped with a
        reason (also faces whose quality score is below ``min_quality``, with the quality's reasons); the faces that
        are added go in one transaction, so a crash leaves either all or none of them.
        """
        from facelens.pipeline import get_pipeline

        name = _check_name(name)
        pipe = pipeline or get_pipeline()
        self.check_model(pipe.model_id)
        result = EnrollResult(name=name)
        vectors, faces = [], []
        seen: set[str] = set()
        for source in images:
            label = describe_source(source)
            try:
                face, _, found = pipe.one_face(source, select=select)
            except (FacelensError, ValueError) as exc:
                result.skipped.append({"source": label, "reason": str(exc)})
                continue
            finally:
                if on_progress:
                    on_progress()
            if min_quality is not None:
                from facelens.analyze.quality import assess_quality

                quality = assess_quality(found.image, face.detection)
                if quality.score < min_quality:
                    why = ", ".join(quality.reasons) or "low overall quality"
                    result.skipped.append({"source": label, "reason": f"quality {quality.score:.2f} < {min_quality}: {why}"})
                    continue
            digest = content_hash(found.image)
            if digest in seen or self._hash_exists(name, digest):
                result.skipped.append({"source": label, "reason": "already enrolled (same image)"})
                continue
            seen.add(digest)
            vectors.append(face.embedding)
            faces.append(
                {
                    "source": label,
                    "content_hash": digest,
                    "box": [round(float(v), 1) for v in face.box],
                    "score": float(face.detection.score),
                }
            )
        if vectors:
            result.added = self._insert(name, np.stack(vectors), faces, metadata)
        return result

    def search(self, vectors: np.ndarray, k: int = 5) -> list[list[Candidate]]:
        """Top-k identities per query vector, scored at identity level (see ``identity_score``)."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if vectors.shape[1] != self.dim:
            raise ModelMismatchError(f"gallery vectors are {self.dim}-D; got {vectors.shape[1]}-D queries")
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        if self.face_count() == 0:
            return [[] for _ in vectors]
        depth = max(k * max(self.top_m, 4), 32)
        scores, ids = self._search_faces(vectors, depth)
        names = self._names_of(int(i) for i in np.unique(ids) if i >= 0)
        out = []
        for row_scores, row_ids in zip(scores, ids):
            per_person: dict[str, list[tuple[float, int]]] = {}
            for score, face_id in zip(row_scores, row_ids):
                if face_id < 0 or int(face_id) not in names:
                    continue
                per_person.setdefault(names[int(face_id)], []).append((float(score), int(face_id)))
            ranked = []
            for name, hits in per_person.items():
                hits.sort(reverse=True)
                if self.identity_score == "mean_top_m":
                    value = float(np.mean([s for s, _ in hits[: self.top_m]]))
                else:
                    value = hits[0][0]
                ranked.append(Candidate(name=name, score=value, face_id=hits[0][1]))
            ranked.sort(key=lambda c: c.score, reverse=True)
            out.append(ranked[:k])
        return out

    def open_set_threshold(self, fpir: float = DEFAULT_FPIR) -> float:
        """Similarity a probe must reach so that strangers are named at rate ``fpir`` for this gallery's size."""
        from facelens.decide import threshold_for_fpir

        return threshold_for_fpir(self.model_id, fpir, max(self.face_count(), 1))

    def identify(
        self,
        source: ImageInput,
        k: int = 3,
        threshold: float | None = None,
        fpir: float = DEFAULT_FPIR,
        pipeline: Any = None,
    ) -> list[Match]:
        """Name every face in the image (largest first). ``threshold`` (cosine similarity) overrides ``fpir``."""
        from facelens.pipeline import get_pipeline

        pipe = pipeline or get_pipeline()
        self.check_model(pipe.model_id)
        found = pipe.process(source)
        return self.identify_faces([f.embedding for f in found.faces], [f.box for f in found.faces], k, threshold, fpir)

    def identify_faces(
        self,
        embeddings: Sequence[np.ndarray],
        boxes: Sequence[Any],
        k: int = 3,
        threshold: float | None = None,
        fpir: float = DEFAULT_FPIR,
    ) -> list[Match]:
        if not len(embeddings):
            return []
        limit = self.open_set_threshold(fpir) if threshold is None else float(threshold)
        results = []
        for box, candidates in zip(boxes, self.search(np.stack(embeddings), k)):
            best = candidates[0] if candidates else None
            accepted = best is not None and best.score >= limit
            results.append(
                Match(
                    box=[float(v) for v in box],
                    name=best.name if accepted else None,
                    score=best.score if best else 0.0,
                    threshold=limit,
                    candidates=candidates,
                )
            )
        return results

    def remove(self, name: str) -> int:
        """Remove a person and all their faces; returns how many faces went."""
        return self._delete_person(name)

    def remove_face(self, face_id: int) -> None:
        self._delete_face(face_id)

    def rename(self, old: str, new: str) -> None:
        self._rename(old, _check_name(new))

    def stats(self) -> dict[str, Any]:
        people = self.people()
        return {
            "location": self.location,
            "model_id": self.model_id,
            "people": len(people),
            "faces": self.face_count(),
            "open_set_threshold": round(self.open_set_threshold(), 4) if people else None,
            "fpir": DEFAULT_FPIR,
        }


def _check_name(name: str) -> str:
    name = str(name).strip()
    if not name or len(name) > 256 or any(ch in name for ch in "\0\n\r"):
        raise GalleryError(f"invalid person name {name!r}")
    return name


def now() -> float:
    return time.time()
