"""Embeddings for evaluation: one per image (its largest face, or the one ``select`` names: ``centre`` for LFW,
whose labelled face is the centred one), computed once by the engine on every core.

Images that cannot be decoded or hold no detectable face are *failures to enrol* (FTE). They are kept, with
their reason, so every report can say how many there were and how their pairs were scored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facelens.errors import FacelensError

log = logging.getLogger(__name__)

#: Similarity given to a pair in which either image failed to enrol: the lowest possible cosine similarity,
#: so a genuine pair is a false non-match at every threshold and an impostor pair a correct rejection.
FTE_SCORE = -1.0


@dataclass
class EmbeddingSet:
    """Embeddings keyed by image path, plus the images that failed to enrol and why."""

    model_id: str
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    select: str = "largest"  # which face of each image (facelens.engine.SELECTIONS)

    def __contains__(self, key: str) -> bool:
        return key in self.vectors or key in self.failures

    def get(self, key: str) -> np.ndarray | None:
        return self.vectors.get(key)

    def pair_scores(self, pairs: Iterable[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarity per pair and a mask of pairs with a failure to enrol (scored ``FTE_SCORE``)."""
        scores, fte = [], []
        for a, b in pairs:
            va, vb = self.vectors.get(a), self.vectors.get(b)
            if va is None or vb is None:
                scores.append(FTE_SCORE)
                fte.append(True)
            else:
                scores.append(float(np.dot(va, vb)))
                fte.append(False)
        return np.asarray(scores, dtype=np.float64), np.asarray(fte, dtype=bool)

    def save(self, path: str | Path) -> None:
        """Cache to an ``.npz`` (paths, vectors, failures) so a later run skips the embedding."""
        keys = list(self.vectors)
        np.savez_compressed(
            path,
            model_id=self.model_id,
            select=self.select,
            keys=np.array(keys, dtype=str),
            vectors=np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, 0), np.float32),
            failed=np.array(list(self.failures), dtype=str),
            reasons=np.array(list(self.failures.values()), dtype=str),
        )

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingSet:
        with np.load(path, allow_pickle=False) as data:
            out = cls(str(data["model_id"]), select=str(data["select"]) if "select" in data.files else "largest")
            out.vectors = {str(k): v for k, v in zip(data["keys"], data["vectors"])}
            out.failures = {str(k): str(r) for k, r in zip(data["failed"], data["reasons"])}
        return out


def _engine(pipeline=None, workers: int | None = None, select: str = "largest"):
    """The engine for evaluation: one face of each image (``select``); detector/embedder from ``pipeline`` if given."""
    from facelens.engine import FaceAnalyzer

    options = {}
    if pipeline is not None:
        options = {"detector": pipeline.detector_name, "embedder": pipeline.embedder_name}
        options.update({k: v for k, v in pipeline.detector_options.items() if k in ("min_face_size", "upsample", "landmarks68")})
        if pipeline.max_pixels is not None:
            options["max_pixels"] = pipeline.max_pixels
    return FaceAnalyzer(tasks=("embed",), select=select, workers=workers, **options)


def _outcome(result) -> tuple[np.ndarray | None, str | None]:
    if result.error is not None:
        return None, result.error
    if not len(result.faces):
        return None, "no face detected"
    return result.faces.embedding[0].astype(np.float32), None


def embed_one(source, pipeline=None, select: str = "largest") -> tuple[np.ndarray | None, str | None]:
    """Embedding of one face (``select``, default the largest) in ``source`` (path or RGB array), or (None, reason)
    on failure to enrol."""
    return _outcome(_engine(pipeline, workers=1, select=select).run_one(source))


def embed_images(
    paths: Iterable[str],
    pipeline=None,
    into: EmbeddingSet | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    select: str | None = None,
) -> EmbeddingSet:
    """Embed every path not already in ``into`` (each image once), through the engine on every core; when
    ``into`` holds them all, no model is loaded (another tool's embeddings can be evaluated). ``select``: which
    face of each image (default ``into``'s, else the largest)."""
    paths = list(paths)
    if into is not None and select is not None and into.select != select:
        raise FacelensError(f"cached embeddings are of the {into.select} face of each image, not the {select} one")
    select = into.select if into is not None else (select or "largest")
    if into is not None and all(p in into for p in paths):
        return into
    engine = _engine(pipeline, workers, select)
    model_id = engine.model_id
    out = into if into is not None else EmbeddingSet(model_id, select=select)
    if out.model_id != model_id:
        raise FacelensError(f"cached embeddings are from {out.model_id!r}, the pipeline uses {model_id!r}")
    todo = [p for p in dict.fromkeys(paths) if p not in out]
    for path, result in zip(todo, engine.run(todo, progress=(lambda done, total: progress(done, len(todo))) if progress else None)):
        vector, reason = _outcome(result)
        if vector is None:
            out.failures[path] = reason or "failed"
            log.info("failure to enrol: %s (%s)", path, reason)
        else:
            out.vectors[path] = vector
    return out
