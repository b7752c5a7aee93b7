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
    Embedder,
    Liveness,
    NewGalleryEmbedder,
    Output,
    Ray,
    Threshold,
    Where,
    Workers,
    expand_inputs,
    new_gallery_model,
    parse_pairs,
    parse_where,
    ray_runner,
    ray_summary,
)
from facelens.cli.output import FAILED, USAGE, emit, err, exit_code, fail, message, out, progress_bar
from facelens.errors import FacelensError


def _table(*columns: str):
    from rich.table import Table

    return Table(*columns)


def _batch(inputs: list[str], embed: bool, as_json: bool, detector: str, workers: int, largest: bool,
           liveness: bool = False, ray: str | None = None, output: Path | None = None,
           embedder: str | None = None) -> None:
    from contextlib import nullcontext

    from facelens.distributed.results import ResultWriter
    from facelens.engine import FaceAnalyzer

    try:
        sources = expand_inputs(inputs)
        tasks = ("embed",) if embed else ("detect",)
        runner = ray_runner(ray, workers)
        engine = FaceAnalyzer(detector=detector, embedder=embedder, tasks=tasks + (("liveness",) if liveness else ()),
                              select="largest" if largest else None, workers=workers or None, runner=runner)
        saved = ResultWriter(output, with_embedding=embed) if output is not None else nullcontext()
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    failed = 0
    table = _table("path", "faces", "boxes (x1,y1,x2,y2)", "error")
    with progress_bar(len(sources)) as progress, saved:
        task = progress.add_task("embedding" if embed else "detecting", total=len(sources))
        try:
            for result in engine.run(sources, progress=lambda done, total: progress.update(task, completed=done)):
                failed += result.error is not None
                if output is not None:
                    saved.add(result)
                if as_json:
                    emit(result.to_dict(with_embedding=embed))
                else:
                    boxes = "; ".join(",".join(f"{v:.0f}" for v in box) for box in result.faces.box)
                    table.add_row(result.source, str(len(result.faces)), boxes, result.error or "")
        except (FacelensError, ValueError) as exc:
            fail(exc, USAGE)
    ray_summary(runner)
    if not as_json:
        out.print(table)
    if failed:
        raise typer.Exit(FAILED)


def detect(
    images: Images,
    json_out: Json = False,
    detector: Detector = DEFAULT_DETECTOR,
    workers: Workers = 0,
    liveness: Liveness = False,
    ray: Ray = None,
    output: Output = None,
) -> None:
    """Find faces: box, score and 5 landmarks per face (and a liveness score and decision with --liveness)."""
    _batch(images, False, json_out, detector, workers, False, liveness, ray, output)


def embed(
    images: Images,
    json_out: Json = False,
    detector: Detector = DEFAULT_DETECTOR,
    workers: Workers = 0,
    largest: Annotated[bool, typer.Option("--largest", help="Only the largest face of each image.")] = False,
    embedder: Embedder = None,
    ray: Ray = None,
    output: Output = None,
) -> None:
    """Embed every face (L2-normalised; the default embedder SFace, 128-D, unless --embedder)."""
    _batch(images, True, json_out, detector, workers, largest, ray=ray, output=output, embedder=embedder)


def verify(
    image_a: Annotated[str, typer.Argument(help="First image.")],
    image_b: Annotated[str, typer.Argument(help="Second image.")],
    json_out: Json = False,
    threshold: Annotated[
        Optional[float], typer.Option("--threshold", help="Cosine similarity threshold (default: measured on LFW).")
    ] = None,
    select: Annotated[str, typer.Option(help="Face to use when an image has several: largest, best, only, centre.")] = "largest",
    detector: Detector = DEFAULT_DETECTOR,
    liveness: Liveness = False,
    fmr: Annotated[Optional[float], typer.Option(help="Threshold as a target false-match rate, e.g. 1e-3.")] = None,
    embedder: Embedder = None,
) -> None:
    """Are the faces in two images the same person? Exit 0 for a match, 1 for no match or an unreadable image."""
    import facelens

    try:
        result = facelens.verify(
            image_a, image_b, threshold=threshold, select=select, detector=detector, liveness=liveness, fmr=fmr,
            embedder=embedder,
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
    select: Annotated[
        str,
        typer.Option(help="Which face of a photo: single (refuse photos of several people of similar size), "
                          "largest, best (detector score), only or centre (nearest the image centre)."),
    ] = "single",
    embedder: NewGalleryEmbedder = None,
    ray: Ray = None,
) -> None:
    """Add people to a gallery, one face per image. Exit 1 when an image was skipped (an image already enrolled
    for that person is not a failure, so re-running an enrolment exits 0)."""
    import facelens
    from facelens.detect import get_detector
    from facelens.gallery import open_gallery

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
        get_detector(detector)  # an unknown detector is a usage error before anything is read
        model_id = new_gallery_model(embedder)
        runner = ray_runner(ray)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    total = sum(len(j[1]) for j in jobs)
    failed = 0
    try:
        with open_gallery(gallery, collection=collection, model_id=model_id) as store, progress_bar(total) as progress:
            task = progress.add_task("enrolling", total=total)
            results = facelens.enroll_people(
                store, jobs, metadata=meta, min_quality=min_quality, detector=detector, select=select,
                progress=lambda done, _total: progress.update(task, completed=done), runner=runner,
            )
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    ray_summary(runner)
    for result in results:
        # an image already enrolled for this person is not a failure: re-running an enrolment is safe
        failed += sum(not s["reason"].startswith("already enrolled") for s in result.skipped)
        if json_out:
            emit(result.to_dict())
    if not json_out:
        table = _table("person", "faces added", "skipped (reason)")
        for r in results:
            table.add_row(r.name, str(len(r.added)), "; ".join(f"{s['source']}: {s['reason']}" for s in r.skipped))
        out.print(table)
    if failed:
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
    min_quality: Annotated[
        Optional[float], typer.Option(help="Leave faces whose quality score (0-1) is below this unknown.")
    ] = None,
    ray: Ray = None,
    output: Output = None,
) -> None:
    """Name the faces in images (open set: 'unknown' below the threshold). Exit 1 when an input failed."""
    from contextlib import nullcontext

    from facelens.decide import ThresholdPolicy
    from facelens.distributed.results import ResultWriter
    from facelens.engine import FaceAnalyzer
    from facelens.gallery import open_gallery

    try:
        sources = expand_inputs(images)
        filters = parse_where(where)
        runner = ray_runner(ray)
        store = open_gallery(gallery, create=False, collection=collection)
        saved = ResultWriter(output) if output is not None else nullcontext()
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    failed = 0
    table = _table("path", "box", "name", "score", "threshold")
    with store, progress_bar(len(sources)) as progress, saved:
        task = progress.add_task("identifying", total=len(sources))
        try:
            tasks = ("identify",) + (("liveness",) if liveness else ()) + (("analyze",) if analyze else ())
            engine = FaceAnalyzer(detector=detector, tasks=tasks, gallery=store, k=k, where=filters, runner=runner,
                                  policy=ThresholdPolicy.for_identify(threshold, fpir, min_quality),
                                  keep_images=annotate is not None)
            store.check_model(engine.model_id)
            results = engine.run(sources, progress=lambda done, total: progress.update(task, completed=done))
            for result in results:
                if output is not None:
                    saved.add(result)
                if result.error is not None:
                    failed += 1
                    if not json_out:
                        table.add_row(result.source, "", "", "", result.error)
                if json_out:
                    emit(result.to_dict())
                for face in result.faces:
                    score, limit = face.identity_score, face.threshold
                    table.add_row(result.source, ",".join(f"{v:.0f}" for v in face.box), face.label or "",
                                  "" if score is None else f"{score:.4f}", "" if limit is None else f"{limit:.4f}")
                if annotate is not None and result.image is not None:
                    from facelens.draw import draw_faces
                    from facelens.io.image import save_image

                    save_image(draw_faces(result.image, result.faces), annotate / (Path(result.source).stem + ".png"))
        except (FacelensError, ValueError) as exc:
            fail(exc, USAGE)  # a missing model or a bad option fails every input alike
    ray_summary(runner)
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
