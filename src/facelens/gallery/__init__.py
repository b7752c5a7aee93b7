"""Galleries by location: a folder path (SQLite + vectors, the embedded default)."""

from __future__ import annotations

from pathlib import Path

from facelens.gallery.base import Candidate, EnrollResult, FaceRecord, Gallery, Match, Person


def open_gallery(location: str | Path, model_id: str | None = None, create: bool = True) -> Gallery:
    """Open (or create) the gallery at ``location``.

    ``model_id`` is recorded when the gallery is created; an existing gallery built with another model refuses it.
    """
    location = str(location)
    from facelens.gallery.local import LocalGallery

    return LocalGallery(location, model_id=model_id, create=create)


__all__ = ["Candidate", "EnrollResult", "FaceRecord", "Gallery", "Match", "Person", "open_gallery"]
