"""``facelens gallery …``: inspect and edit galleries, move faces in and out, and copy between backends.

The gallery is named with ``-g/--gallery`` as in every other command, or as the first argument
(``facelens gallery list ./people``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from facelens.cli.options import Collection, Json, OptionalGallery, Where, parse_where
from facelens.cli.output import USAGE, emit, err, fail, out, progress_bar
from facelens.errors import FacelensError

app = typer.Typer(help="Inspect and edit galleries (folders or postgresql:// URLs), import, export, copy.",
                  no_args_is_help=True)

def _split(option: str | None, args: list[str] | None, names: tuple[str, ...]) -> tuple[str, list[str]]:
    """(gallery, the command's own arguments): the gallery is ``-g`` or else the first argument."""
    args = list(args or [])
    if option is None:
        if not args:
            raise FacelensError("name the gallery: -g/--gallery LOCATION (or as the first argument)")
        option, args = args[0], args[1:]
    if len(args) != len(names):
        expected = " ".join(n.upper() for n in names) or "no other argument"
        raise FacelensError(f"expected {expected} after the gallery, got {' '.join(args) or 'nothing'}")
    return option, args


def _open(gallery: str, collection: str, create: bool = False):
    from facelens.gallery import open_gallery

    return open_gallery(gallery, create=create, collection=collection)


def _table(*columns: str):
    from rich.table import Table

    return Table(*columns)


@app.command("list")
def gallery_list(
    args: Annotated[Optional[list[str]], typer.Argument(metavar="[GALLERY]", show_default=False)] = None,
    gallery: OptionalGallery = None,
    collection: Collection = "default",
    where: Where = None,
    json_out: Json = False,
) -> None:
    """People in the gallery and their face counts."""
    try:
        location, _ = _split(gallery, args, ())
        with _open(location, collection) as store:
            people = store.people(where=parse_where(where))
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    if json_out:
        for p in people:
            emit(p.to_dict())
        return
    table = _table("name", "faces", "metadata")
    for p in people:
        table.add_row(p.name, str(p.face_count), json.dumps(p.metadata) if p.metadata else "")
    out.print(table)


@app.command("remove")
def gallery_remove(
    args: Annotated[list[str], typer.Argument(metavar="[GALLERY] NAME")],
    gallery: OptionalGallery = None,
    collection: Collection = "default",
    json_out: Json = False,
) -> None:
    """Remove a person and all their faces."""
    try:
        location, (name,) = _split(gallery, args, ("name",))
        with _open(location, collection) as store:
            count = store.remove(name)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    emit({"removed": name, "faces": count}) if json_out else err.print(f"removed {name} ({count} faces)")


@app.command("erase")
def gallery_erase(
    args: Annotated[list[str], typer.Argument(metavar="[GALLERY] NAME")],
    gallery: OptionalGallery = None,
    collection: Collection = "default",
    audit_log: Annotated[
        Optional[Path], typer.Option(help="Service audit log to scrub (default: GALLERY/audit.jsonl if present).")
    ] = None,
    audit_images: Annotated[
        Optional[Path], typer.Option(help="Folder of the service's kept probe images (its --audit-images).")
    ] = None,
    json_out: Json = False,
) -> None:
    """Erase a person everywhere: faces, vectors (index rebuilt, storage compacted so no deleted bytes remain),
    and the probe images and name in the service's audit log, which keeps only the fact of the erasure."""
    from facelens.service.audit import AuditLog

    try:
        location, (name,) = _split(gallery, args, ("name",))
        with _open(location, collection) as store:
            result = store.erase(name)
        if audit_log is None and not str(location).startswith(("postgres://", "postgresql://")):
            default = Path(location) / "audit.jsonl"
            audit_log = default if default.is_file() else None
        if audit_log is not None or audit_images is not None:
            audit = AuditLog(audit_log, audit_images)
            entry = audit.erase("cli", collection, name, faces_removed=result["faces_removed"])
            result["audit"] = {k: entry[k] for k in ("records_scrubbed", "images_deleted")}
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    if json_out:
        emit(result)
    else:
        err.print(f"erased {name}: {result['faces_removed']} faces, index rebuilt, storage compacted"
                  + (f", {result['audit']['records_scrubbed']} audit records scrubbed" if "audit" in result else ""))


@app.command("rename")
def gallery_rename(
    args: Annotated[list[str], typer.Argument(metavar="[GALLERY] OLD NEW")],
    gallery: OptionalGallery = None,
    collection: Collection = "default",
    json_out: Json = False,
) -> None:
    """Rename a person."""
    try:
        location, (old, new) = _split(gallery, args, ("old", "new"))
        with _open(location, collection) as store:
            store.rename(old, new)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    emit({"renamed": old, "to": new}) if json_out else err.print(f"renamed {old} to {new}")


@app.command("stats")
def gallery_stats(
    args: Annotated[Optional[list[str]], typer.Argument(metavar="[GALLERY]", show_default=False)] = None,
    gallery: OptionalGallery = None,
    collection: Collection = "default",
    json_out: Json = False,
) -> None:
    """Size, model and the current open-set threshold."""
    try:
        location, _ = _split(gallery, args, ())
        with _open(location, collection) as store:
            stats = store.stats()
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    if json_out:
        emit(stats)
        return
    table = _table("key", "value")
    for key, value in stats.items():
        table.add_row(key, str(value))
    out.print(table)


@app.command("collections")
def gallery_collections(
    args: Annotated[Optional[list[str]], typer.Argument(metavar="[GALLERY]", show_default=False)] = None,
    gallery: OptionalGallery = None,
    json_out: Json = False,
) -> None:
    """Collections (tenants) in a gallery, each with its model and size."""
    from facelens.gallery import list_collections

    rows = []
    try:
        location, _ = _split(gallery, args, ())
        for name in list_collections(location):
            with _open(location, name) as store:
                rows.append({"collection": name, "model_id": store.model_id, "people": store.person_count(),
                             "faces": store.face_count()})
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    if json_out:
        for row in rows:
            emit(row)
        return
    table = _table("collection", "model", "people", "faces")
    for row in rows:
        table.add_row(row["collection"], row["model_id"], str(row["people"]), str(row["faces"]))
    out.print(table)


@app.command("drop")
def gallery_drop(
    args: Annotated[list[str], typer.Argument(metavar="[GALLERY] COLLECTION", help="The collection to delete.")],
    gallery: OptionalGallery = None,
    yes: bool = typer.Option(False, "--yes", help="Confirm."),
    json_out: Json = False,
) -> None:
    """Delete a whole collection (people, faces, index)."""
    from facelens.gallery import drop_collection

    try:
        location, (collection,) = _split(gallery, args, ("collection",))
        if not yes:
            raise FacelensError(f"this deletes collection {collection!r} and all its faces; add --yes to confirm")
        count = drop_collection(location, collection)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    emit({"dropped": collection, "faces": count}) if json_out else err.print(f"dropped {collection} ({count} faces)")


@app.command("reindex")
def gallery_reindex(
    args: Annotated[Optional[list[str]], typer.Argument(metavar="[GALLERY]", show_default=False)] = None,
    gallery: OptionalGallery = None,
    collection: Collection = "default",
    json_out: Json = False,
) -> None:
    """Rebuild the vector index from the store of record."""
    try:
        location, _ = _split(gallery, args, ())
        with _open(location, collection) as store:
            result = store.reindex()
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    emit(result) if json_out else err.print(f"reindexed {result['faces']} faces ({result['index']})")


@app.command("import")
def gallery_import(
    args: Annotated[
        list[str],
        typer.Argument(metavar="[GALLERY] FILE...", help=".jsonl, .npz or .parquet files of name, embedding, metadata."),
    ],
    gallery: OptionalGallery = None,
    collection: Collection = "default",
    model_id: Optional[str] = typer.Option(None, help="Model of the embeddings when the file does not record it."),
    json_out: Json = False,
) -> None:
    """Add faces embedded elsewhere (each person whole in one transaction)."""
    from facelens.gallery.transfer import import_file, read_rows

    try:
        if gallery is None:
            if len(args) < 2:
                raise FacelensError("give the gallery (-g or first argument) and at least one FILE")
            gallery, args = args[0], args[1:]
        with _open(gallery, collection, create=True) as store:
            for path in map(Path, args):
                total = len(read_rows(path).names)
                with progress_bar(total) as progress:
                    task = progress.add_task(f"importing {path.name}", total=total)
                    added = import_file(store, path, model_id=model_id, on_progress=lambda n: progress.advance(task, n))
                emit({"file": str(path), "added": added}) if json_out else err.print(f"{path}: {added} faces added")
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)


@app.command("export")
def gallery_export(
    args: Annotated[list[str], typer.Argument(metavar="[GALLERY] FILE", help="Output .jsonl, .npz or .parquet.")],
    gallery: OptionalGallery = None,
    collection: Collection = "default",
    json_out: Json = False,
) -> None:
    """Write every face as (name, embedding, metadata)."""
    from facelens.gallery.transfer import export_gallery

    try:
        location, (path,) = _split(gallery, args, ("file",))
        with _open(location, collection) as store, progress_bar(store.face_count()) as progress:
            task = progress.add_task("exporting", total=store.face_count())
            count = export_gallery(store, Path(path), on_progress=lambda n: progress.advance(task, n))
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    emit({"file": path, "faces": count}) if json_out else err.print(f"{path}: {count} faces")


@app.command("copy")
def gallery_copy(
    source: str = typer.Argument(..., help="Source gallery (folder or postgresql:// URL)."),
    target: str = typer.Argument(..., help="Target gallery (created; the collection must be empty)."),
    collection: Collection = "default",
    target_collection: Optional[str] = typer.Option(None, help="Collection in the target (default: the same)."),
    json_out: Json = False,
) -> None:
    """Copy a collection to another gallery or backend, then verify counts and vectors."""
    from facelens.gallery import open_gallery
    from facelens.gallery.transfer import copy_gallery

    try:
        with _open(source, collection) as src:
            with open_gallery(target, model_id=src.model_id, collection=target_collection or collection) as dst:
                with progress_bar(src.face_count()) as progress:
                    task = progress.add_task("copying", total=src.face_count())
                    result = copy_gallery(src, dst, on_progress=lambda n: progress.advance(task, n))
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    emit(result) if json_out else err.print(f"copied {result['people']} people, {result['faces']} faces (verified)")
