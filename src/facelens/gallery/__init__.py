"""Galleries by location: a folder path (SQLite + vector index, the embedded default) or ``postgresql://…``.

One location (store) holds several named collections (tenants), each bound to one embedding model.
"""

from __future__ import annotations

from pathlib import Path

from facelens.gallery.base import Candidate, EnrollResult, FaceRecord, Gallery, Person

DEFAULT_COLLECTION = "default"


def is_postgres(location: str | Path) -> bool:
    """Whether a store location is a PostgreSQL URL (else it is a folder)."""
    return str(location).startswith(("postgresql://", "postgres://"))


def open_gallery(
    location: str | Path, model_id: str | None = None, create: bool = True, collection: str = DEFAULT_COLLECTION
) -> Gallery:
    """Open (or create) a collection of the gallery at ``location`` (a folder, or a ``postgresql://`` URL).

    ``model_id`` is recorded when the collection is created; an existing collection built with another model
    refuses it. A gallery object is safe to share between threads.
    """
    location = str(location)
    if is_postgres(location):
        from facelens.gallery.postgres import PostgresGallery

        return PostgresGallery(location, model_id=model_id, create=create, collection=collection)
    from facelens.gallery.local import LocalGallery

    return LocalGallery(location, model_id=model_id, create=create, collection=collection)


def list_collections(location: str | Path) -> list[str]:
    location = str(location)
    if is_postgres(location):
        from facelens.gallery.postgres import list_collections as pg_list

        return pg_list(location)
    from facelens.gallery.local import list_collections as local_list

    return local_list(location)


def drop_collection(location: str | Path, collection: str) -> int:
    """Delete a collection with its people and faces; returns how many faces went."""
    location = str(location)
    if is_postgres(location):
        from facelens.gallery.postgres import drop_collection as pg_drop

        return pg_drop(location, collection)
    from facelens.gallery.local import drop_collection as local_drop

    return local_drop(location, collection)


__all__ = [
    "Candidate",
    "EnrollResult",
    "FaceRecord",
    "Gallery",
    "Person",
    "drop_collection",
    "list_collections",
    "open_gallery",
]
