"""``facelens detect | embed | verify | enroll | identify | models``: recognition on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from facelens.cli.options import (
    DEFAULT_DETECTOR,
    Analyze,
    Collection,
    Detector,
    Fpir,
    Gallery,
    Images,
    Json,
    Liveness,
    Threshold,
    Where,
    Workers,
    expand_inputs,
    parse_pairs,
    parse_where,
)
from facelens.cli.output import FAILED, USAGE, emit, err, exit_code, fail, message, out, progress_bar
from facelens.errors import FacelensError


def _table(*columns: str):
    from rich.table import Table

    return Table(*columns)


def _batch(inputs: list[str], embed: bool, as_json: bool, detector: str, workers: int, largest: bool) -> None:
    from facelens.batch import run_batch

    try:
        sources = expand_inputs(inputs)
    except FacelensError as exc:
        fail(exc)
    failed = 0
    table = _table("path", "faces", "boxes (x1,y1,x2,y2)", "error")
    with progress_bar(len(sources)) as progress:
        task = progress.add_task("embedding" if embed else "detecting", total=len(sources))
        try:
            for item in run_batch(sources, embed=embed, workers=workers, largest_only=largest, detector=detector):
                progress.advance(task)
                failed += item.error is not None
                if as_json:
                    emit({"path": item.source, "faces": item.faces, "error": item.error})
                else:
                    boxes = "; ".join(",".join(f"{v:.0f}" for v in f["box"]) for f in item.faces)
                    table.add_row(item.source, str(len(item.faces)), boxes, item.error or "")
        except (FacelensError, ValueError) as exc:
            fail(exc, USAGE)
    if not as_json:
        out.print(table)
    if failed:
        raise typer.Exit(FAILED)


def detect(
    images: Images,
    json_out: Json = False,
    detector: Detector = DEFAULT_DETECTOR,
    workers: Workers = 0,
) -> None:
    """Find faces: box, score and 5 landmarks per face."""
    _batch(images, False, json_out, detector, workers, False)


def embed(
    images: Images,
    json_out: Json = False,
    detector: Detector = DEFAULT_DETECTOR,
    workers: Workers = 0,
    largest: Annotated[bool, typer.Option("--largest", help="Only the largest face of each image.")] = False,
) -> None:
    """Embed every face (dlib ResNet 128-D, L2-normalised)."""
    _batch(images, True, json_out, detector, workers, largest)


def verify(
    image_a: Annotated[str, typer.Argument(help="First image.")],
    image_b: Annotated[str, typer.Argument(help="Second image.")],
    json_out: Json = False,
    threshold: Annotated[
        Optional[float], typer.Option("--threshold", help="Cosine similarity threshold (default: measured on LFW).")
    ] = None,
    select: Annotated[str, typer.Option(help="Face to use when an image has several: largest, best, only.")] = "largest",
    detector: Detector = DEFAULT_DETECTOR,
    liveness: Liveness = False,
    fmr: Annotated[Optional[float], typer.Option(help="Threshold as a target false-match rate, e.g. 1e-3.")] = None,
) -> None:
    """Are the faces in two images the same person? Exit 0 for a match, 1 for no match or an unreadable image."""
    import facelens

    try:
        result = facelens.verify(
            image_a, image_b, threshold=threshold, select=select, detector=detector, liveness=liveness, fmr=fmr
        )
    except (FacelensError, ValueError) as exc:
        code = exit_code(exc) if isinstance(exc, FacelensError) else USAGE
        if json_out and code == FAILED:
            emit({"a": image_a, "b": image_b, "is_match": False, "error": message(exc)})
            raise typer.Exit(code) from None
        fail(exc, code)
    if json_out:
        emit({"a": image_a, "b": image_b, **result.to_dict(), "error": None})
    else:
        table = _table("match", "similarity", "distance", "threshold", "faces in A / B")
        table.add_row(
            "[green]yes[/]" if result.is_match else "[red]no[/]",
            f"{result.similarity:.4f}",
            f"{result.distance:.4f}",
            f"{result.threshold:.4f}",
            f"{result.faces_in_a} / {result.faces_in_b}",
        )
        out.print(table)
    raise typer.Exit(0 if result.is_match else FAILED)


def enroll(
    name: Annotated[Optional[str], typer.Argument(help="Person's name (with images).")] = None,
    images: Annotated[
        Optional[list[str]],
        typer.Argument(help="Images of that person: files, folders, @LIST.txt or -.", metavar="[INPUTS]..."),
    ] = None,
    gallery: Annotated[
        str, typer.Option("--gallery", "-g", help="Gallery folder (created if missing) or postgresql:// URL.")
    ] = ...,  # type: ignore[assignment]
    collection: Collection = "default",
    from_folders: Annotated[
        Optional[Path], typer.Option(help="Root folder with one sub-folder of images per person.")
    ] = None,
    metadata: Annotated[
        Optional[list[str]],
        typer.Option("--metadata", "-m", help="Person metadata KEY=VALUE (repeatable; values parse as JSON)."),
    ] = None,
    json_out: Json = False,
    detector: Detector = DEFAULT_DETECTOR,
    min_quality: Annotated[
        Optional[float], typer.Option(help="Refuse faces whose quality score (0-1) is below this.")
    ] = None,
) -> None:
    """Add people to a gallery, one face (the largest) per image. Exit 1 when an image was skipped."""
    from facelens.gallery import open_gallery
    from facelens.pipeline import get_pipeline

    try:
        meta = parse_pairs(metadata, "--metadata")
        jobs: list[tuple[str, list[str]]] = []
        if from_folders is not None:
            if not from_folders.is_dir():
                raise FacelensError(f"{from_folders}: not a folder")
            for folder in sorted(p for p in from_folders.iterdir() if p.is_dir()):
                jobs.append((folder.name, expand_inputs([str(folder)])))
        elif name and images:
            jobs.append((name, expand_inputs(list(images))))
        else:
            raise FacelensError("give a NAME and IMAGES, or --from-folders ROOT")
        pipeline = get_pipeline(detector=detector)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    total = sum(len(j[1]) for j in jobs)
    skipped = 0
    results = []
    try:
        with open_gallery(gallery, collection=collection) as store, progress_bar(total) as progress:
            task = progress.add_task("enrolling", total=total)
            for person, paths in jobs:
                result = store.enroll(
                    person, paths, metadata=meta, pipeline=pipeline, min_quality=min_quality,
                    on_progress=lambda: progress.advance(task),
                )
                skipped += len(result.skipped)
                results.append(result)
                if json_out:
                    emit(result.to_dict())
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    if not json_out:
        table = _table("person", "faces added", "skipped (reason)")
        for r in results:
            table.add_row(r.name, str(len(r.added)), "; ".join(f"{s['source']}: {s['reason']}" for s in r.skipped))
        out.print(table)
    if skipped:
        raise typer.Exit(FAILED)


def identify(
    images: Images,
    gallery: Gallery = ...,  # type: ignore[assignment]
    collection: Collection = "default",
    where: Where = None,
    json_out: Json = False,
    k: Annotated[int, typer.Option("--top-k", help="Candidates per face.")] = 3,
    threshold: Threshold = None,
    fpir: Fpir = 0.01,
    detector: Detector = DEFAULT_DETECTOR,
    annotate: Annotated[
        Optional[Path], typer.Option(help="Write images with boxes and names drawn to this folder.")
    ] = None,
    liveness: Liveness = False,
    analyze: Analyze = False,
) -> None:
    """Name the faces in images (open set: 'unknown' below the threshold). Exit 1 when an input failed."""
    import facelens
    from facelens.gallery import open_gallery

    try:
        sources = expand_inputs(images)
        filters = parse_where(where)
        store = open_gallery(gallery, create=False, collection=collection)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    failed = 0
    table = _table("path", "box", "name", "score", "threshold")
    with store, progress_bar(len(sources)) as progress:
        task = progress.add_task("identifying", total=len(sources))
        for source in sources:
            progress.advance(task)
            try:
                matches = facelens.identify(
                    source, store, k=k, threshold=threshold, fpir=fpir, detector=detector, liveness=liveness,
                    analyze=analyze, where=filters,
                )
            except (FacelensError, ValueError) as exc:
                if not isinstance(exc, FacelensError) or exit_code(exc) == USAGE:
                    fail(exc, USAGE)  # a missing model or a bad option fails every input alike
                failed += 1
                if json_out:
                    emit({"path": source, "faces": [], "error": message(exc)})
                else:
                    table.add_row(source, "", "", "", message(exc))
                continue
            if json_out:
                emit({"path": source, "faces": [m.to_dict() for m in matches], "error": None})
            for m in matches:
                table.add_row(source, ",".join(f"{v:.0f}" for v in m.box), m.label, f"{m.score:.4f}", f"{m.threshold:.4f}")
            if annotate is not None:
                from facelens.draw import draw_matches
                from facelens.io.image import decode_image, save_image

                drawn = draw_matches(decode_image(source), matches)
                save_image(drawn, annotate / (Path(source).stem + ".png"))
    if not json_out:
        out.print(table)
    if failed:
        raise typer.Exit(FAILED)


def models(
    json_out: Json = False,
    fetch: Annotated[
        Optional[list[str]],
        typer.Option("--fetch", help="Download this model's files into the cache now (repeatable; 'all' for every one)."),
    ] = None,
) -> None:
    """Registered model files and where each resolves locally (nothing is downloaded unless --fetch)."""
    import facelens.analyze.models  # noqa: F401
    import facelens.liveness.models  # noqa: F401
    import facelens.models.catalog  # noqa: F401
    from facelens.models.registry import describe, registered, resolve

    if fetch:
        names = [s.name for s in registered()] if "all" in fetch else fetch
        for name in names:
            try:
                paths = resolve(name)
            except FacelensError as exc:
                fail(exc, USAGE)
            for path in paths.values():
                err.print(f"{name}: {path}", markup=False, highlight=False)
    rows = describe()
    if json_out:
        for row in rows:
            emit(row)
        return
    table = _table("model", "task", "file", "local path")
    for row in rows:
        table.add_row(row["model"], row["task"], row["file"], row["path"] or "[yellow]not local[/]")
    out.print(table)
