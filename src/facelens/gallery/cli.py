"""``facelens gallery …``: inspect and edit galleries, move faces in and out, and copy between backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from facelens.cli_support import emit, err, out, progress_bar
from facelens.errors import FacelensError

app = typer.Typer(help="Inspect and edit galleries (folders or postgresql:// URLs), import, export, copy.",
                  no_args_is_help=True)

GALLERY = typer.Argument(..., help="Gallery folder or postgresql:// URL.")
COLLECTION = typer.Option("default", "--collection", "-c", help="Collection (tenant) in the gallery.")


def parse_where(items: Optional[list[str]]) -> dict[str, Any] | None:
    """``KEY=VALUE`` filters (repeat a key for "any of"); values are JSON when they parse, else strings."""
    if not items:
        return None
    where: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise FacelensError(f"--where expects KEY=VALUE, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if key in where:
            previous = where[key]
            where[key] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            where[key] = value
    return where


def _open(gallery: str, collection: str, create: bool = False):
    from facelens.gallery import open_gallery

    return open_gallery(gallery, create=create, collection=collection)


@app.command("list")
def gallery_list(
    gallery: str = GALLERY,
    collection: str = COLLECTION,
    where: Optional[list[str]] = typer.Option(None, "--where", help="Only people whose metadata has KEY=VALUE."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """People in the gallery and their face counts."""
    with _open(gallery, collection) as store:
        people = store.people(where=parse_where(where))
    if json_out:
        for p in people:
            emit(p.to_dict())
        return
    table = Table("name", "faces", "metadata")
    for p in people:
        table.add_row(p.name, str(p.face_count), json.dumps(p.metadata) if p.metadata else "")
    out.print(table)


@app.command("remove")
def gallery_remove(gallery: str = GALLERY, name: str = typer.Argument(...), collection: str = COLLECTION) -> None:
    """Remove a person and all their faces."""
    with _open(gallery, collection) as store:
        count = store.remove(name)
    err.print(f"removed {name} ({count} faces)")


@app.command("rename")
def gallery_rename(
    gallery: str = GALLERY, old: str = typer.Argument(...), new: str = typer.Argument(...), collection: str = COLLECTION
) -> None:
    """Rename a person."""
    with _open(gallery, collection) as store:
        store.rename(old, new)
    err.print(f"renamed {old} to {new}")


@app.command("stats")
def gallery_stats(gallery: str = GALLERY, collection: str = COLLECTION, json_out: bool = typer.Option(False, "--json")) -> None:
    """Size, model and the current open-set threshold."""
    with _open(gallery, collection) as store:
        stats = store.stats()
    if json_out:
        emit(stats)
        return
    table = Table("key", "value")
    for key, value in stats.items():
        table.add_row(key, str(value))
    out.print(table)


@app.command("collections")
def gallery_collections(gallery: str = GALLERY, json_out: bool = typer.Option(False, "--json")) -> None:
    """Collections (tenants) in a gallery, each with its model and size."""
    from facelens.gallery import list_collections

    rows = []
    for name in list_collections(gallery):
        with _open(gallery, name) as store:
            rows.append({"collection": name, "model_id": store.model_id, "people": store.person_count(),
                         "faces": store.face_count()})
    if json_out:
        for row in rows:
            emit(row)
        return
    table = Table("collection", "model", "people", "faces")
    for row in rows:
        table.add_row(row["collection"], row["model_id"], str(row["people"]), str(row["faces"]))
    out.print(table)


@app.command("drop")
def gallery_drop(gallery: str = GALLERY, collection: str = typer.Argument(..., help="Collection to delete."),
                 yes: bool = typer.Option(False, "--yes", help="Confirm.")) -> None:
    """Delete a whole collection (people, faces, index)."""
    from facelens.gallery import drop_collection

    if not yes:
        raise FacelensError(f"this deletes collection {collection!r} and all its faces; add --yes to confirm")
    err.print(f"dropped {collection} ({drop_collection(gallery, collection)} faces)")


@app.command("reindex")
def gallery_reindex(gallery: str = GALLERY, collection: str = COLLECTION, json_out: bool = typer.Option(False, "--json")) -> None:
    """Rebuild the vector index from the store of record."""
    with _open(gallery, collection) as store:
        result = store.reindex()
    emit(result) if json_out else err.print(f"reindexed {result['faces']} faces ({result['index']})")


@app.command("import")
def gallery_import(
    gallery: str = GALLERY,
    files: list[Path] = typer.Argument(..., help=".jsonl, .npz or .parquet files of name, embedding, metadata."),
    collection: str = COLLECTION,
    model_id: Optional[str] = typer.Option(None, help="Model of the embeddings when the file does not record it."),
) -> None:
    """Add faces embedded elsewhere (each person whole in one transaction)."""
    from facelens.gallery.transfer import import_file, read_rows

    with _open(gallery, collection, create=True) as store:
        for path in files:
            total = len(read_rows(path).names)
            with progress_bar(total) as progress:
                task = progress.add_task(f"importing {path.name}", total=total)
                added = import_file(store, path, model_id=model_id, on_progress=lambda n: progress.advance(task, n))
            err.print(f"{path}: {added} faces added")


@app.command("export")
def gallery_export(
    gallery: str = GALLERY,
    path: Path = typer.Argument(..., help="Output .jsonl, .npz or .parquet."),
    collection: str = COLLECTION,
) -> None:
    """Write every face as (name, embedding, metadata)."""
    from facelens.gallery.transfer import export_gallery

    with _open(gallery, collection) as store, progress_bar(store.face_count()) as progress:
        task = progress.add_task("exporting", total=store.face_count())
        count = export_gallery(store, path, on_progress=lambda n: progress.advance(task, n))
    err.print(f"{path}: {count} faces")


@app.command("copy")
def gallery_copy(
    source: str = typer.Argument(..., help="Source gallery (folder or postgresql:// URL)."),
    target: str = typer.Argument(..., help="Target gallery (created; the collection must be empty)."),
    collection: str = COLLECTION,
    target_collection: Optional[str] = typer.Option(None, help="Collection in the target (default: the same)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Copy a collection to another gallery or backend, then verify counts and vectors."""
    from facelens.gallery import open_gallery
    from facelens.gallery.transfer import copy_gallery

    with _open(source, collection) as src:
        with open_gallery(target, model_id=src.model_id, collection=target_collection or collection) as dst:
            with progress_bar(src.face_count()) as progress:
                task = progress.add_task("copying", total=src.face_count())
                result = copy_gallery(src, dst, on_progress=lambda n: progress.advance(task, n))
    emit(result) if json_out else err.print(f"copied {result['people']} people, {result['faces']} faces (verified)")
