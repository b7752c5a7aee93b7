"""Enrolment into PostgreSQL written by the Ray actors: each actor writes the faces of the chunk it computed, in one
transaction per chunk, so with many nodes the gallery writes run in parallel rather than through the driver.

The decisions are the driver's own (:func:`facelens.api._enrol_refusal`: no face, several faces of similar size,
low quality, the same image twice for a person); the gallery's "already holds it" check is the write itself
(:meth:`PostgresGallery.add_faces_once`, keyed by person, content hash and box), so a chunk retried after its actor
died after writing adds nothing twice: a face found already written *from the same source* is this very image's
(reported added, with its id); one from another source is the same photo under another name (reported skipped, as
the driver's check says). A folder gallery is never written here: only the driver writes it.

What differs from the driver's writes: a person whose images span several chunks is written chunk by chunk, not in
one transaction, so an interrupted run may leave part of a person enrolled (a re-run adds the rest).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from facelens.distributed.resume import ALREADY_ENROLLED
from facelens.result import ImageResult

_STORES: dict[tuple[str, str], Any] = {}
_STORES_LOCK = threading.Lock()


def _store(url: str, collection: str) -> Any:
    """This process's handle on the gallery (opened once per actor; connections are pooled per URL)."""
    with _STORES_LOCK:
        key = (url, collection)
        if key not in _STORES:
            from facelens.gallery.postgres import PostgresGallery

            _STORES[key] = PostgresGallery(url, create=False, collection=collection)
        return _STORES[key]


@dataclass(frozen=True)
class GalleryWrite:
    """The sink an actor applies to each enrolment chunk (see :meth:`RayRunner.chunks_with_sink`): tags are one
    (person, source label) per image; the answer one ("added", face id) or ("skipped", reason) per image."""

    url: str
    collection: str
    metadata: dict[str, Any] | None = None
    min_quality: float | None = None

    def __call__(self, results: list[ImageResult], tags: Sequence[tuple[str, str]]) -> list[tuple[str, Any]]:
        from facelens.api import _enrol_refusal
        from facelens.gallery.base import NewFaces

        outcome: list[tuple[str, Any]] = [("skipped", "")] * len(results)
        seen: dict[str, set[str]] = {}
        rows: dict[str, list[tuple[int, np.ndarray, dict[str, Any]]]] = {}
        for i, (found, (name, label)) in enumerate(zip(results, tags)):
            found = _labelled(found, label)
            reason = _enrol_refusal(found, self.min_quality, seen.setdefault(name, set()), None, name)
            if reason is not None:
                outcome[i] = ("skipped", reason)
                continue
            face = found.faces[0]
            seen[name].add(found.content_hash or "")
            rows.setdefault(name, []).append((i, face.embedding, {
                "source": found.source, "content_hash": found.content_hash or "",
                "box": [round(float(v), 1) for v in face.box], "score": face.score,
            }))
        if not rows:
            return outcome
        people = list(rows.items())
        batch = [NewFaces(name, np.stack([v for _, v, _ in faces]), [f for _, _, f in faces], self.metadata)
                 for name, faces in people]
        for (_, faces), written in zip(people, _store(self.url, self.collection).add_faces_once(batch)):
            for (i, _, face), (face_id, earlier_source) in zip(faces, written):
                same = earlier_source is None or earlier_source == face["source"]  # new, or this image's retry
                outcome[i] = ("added", face_id) if same else ("skipped", ALREADY_ENROLLED)
        return outcome


def _labelled(found: ImageResult, label: str) -> ImageResult:
    if found.source == label:
        return found
    return replace(found, source=label, error=found.error.replace(found.source, label) if found.error else None)


def enrol_on_workers(runner: Any, engine: Any, store: Any, jobs: list[tuple[str, list[Any]]], owners: list[int],
                     images: list[Any], labels: list[str], done: dict[int, str], results: list[Any],
                     metadata: dict[str, Any] | None, min_quality: float | None,
                     progress: Callable[[int, int | None], None] | None) -> list[Any]:
    """:func:`facelens.enroll_people`'s run when the actors write: the images not ``done`` go out in the engine's
    chunks with a :class:`GalleryWrite`; ``results`` (one EnrollResult per person) are filled in input order."""
    from facelens.engine import _batched

    todo = [i for i in range(len(images)) if i not in done]
    size = max(1, min(engine.chunk_size, -(-len(todo) // runner.actors()))) if todo else engine.chunk_size
    batches = list(_batched(todo, size))
    sink = GalleryWrite(store.url, store.collection, metadata, min_quality)
    tags = [[(jobs[owners[i]][0], labels[i]) for i in batch] for batch in batches]
    outcome: dict[int, tuple[str, Any]] = {i: ("skipped", reason) for i, reason in done.items()}
    finished = len(done)
    chunks = runner.chunks_with_sink(engine.plan(1), ([images[i] for i in batch] for batch in batches), sink, tags)
    for index, chunk, written in chunks:
        for i, found, answer in zip(batches[index], chunk, written or [None] * len(chunk)):
            outcome[i] = answer if answer is not None else ("skipped", _labelled(found, labels[i]).error
                                                             or "the chunk failed")
        finished += len(chunk)
        if progress is not None:
            progress(finished, len(images))
    for i, owner in enumerate(owners):
        kind, value = outcome[i]
        if kind == "added":
            results[owner].added.append(value)
        else:
            results[owner].skipped.append({"source": labels[i], "reason": value})
    runner.stats.skipped = len(done)
    return results


__all__ = ["GalleryWrite", "enrol_on_workers"]
