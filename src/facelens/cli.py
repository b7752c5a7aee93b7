"""``facelens`` command line: tables for people, ``--json`` lines for machines, one-line errors (``--debug`` for more)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from facelens.cli_support import emit, err, out, progress_bar
from facelens.detect import DEFAULT_DETECTOR, DETECTOR_HELP
from facelens.errors import FacelensError

app = typer.Typer(help="Face recognition and analysis: detect, embed, verify, enroll, identify.", no_args_is_help=True)

_STATE = {"debug": False}

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    _STATE["debug"] = debug


_emit = emit
_progress = progress_bar


def _expand(inputs: list[Path]) -> list[str]:
    """Images given directly, and the images inside any folder given (sorted), in argument order."""
    paths: list[str] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            paths += [str(p) for p in found] if found else [str(item)]
        else:
            paths.append(str(item))
    return paths


def _batch(inputs: list[Path], embed: bool, as_json: bool, detector: str, workers: int, largest: bool) -> None:
    from facelens.batch import run_batch

    sources = _expand(inputs)
    failed = 0
    rows = []
    with _progress(len(sources)) as progress:
        task = progress.add_task("embedding" if embed else "detecting", total=len(sources))
        for item in run_batch(sources, embed=embed, workers=workers, largest_only=largest, detector=detector):
            progress.advance(task)
            failed += item.error is not None
            if as_json:
                _emit({"path": item.source, "faces": item.faces, "error": item.error})
            else:
                rows.append(item)
    if not as_json:
        table = Table("path", "faces", "boxes (x1,y1,x2,y2)", "error")
        for item in rows:
            boxes = "; ".join(",".join(f"{v:.0f}" for v in f["box"]) for f in item.faces)
            table.add_row(item.source, str(len(item.faces)), boxes, item.error or "")
        out.print(table)
    if failed:
        raise typer.Exit(1)


@app.command()
def detect(
    images: list[Path] = typer.Argument(..., help="Images or folders of images."),
    json_out: bool = typer.Option(False, "--json", help="JSON lines on stdout."),
    detector: str = typer.Option(DEFAULT_DETECTOR, help=DETECTOR_HELP),
    workers: int = typer.Option(0, help="Processes (0 = one per core)."),
) -> None:
    """Find faces: box, score and 5 landmarks per face."""
    _batch(images, False, json_out, detector, workers, False)


@app.command()
def embed(
    images: list[Path] = typer.Argument(..., help="Images or folders of images."),
    json_out: bool = typer.Option(False, "--json", help="JSON lines on stdout (schema in README)."),
    detector: str = typer.Option(DEFAULT_DETECTOR, help=DETECTOR_HELP),
    workers: int = typer.Option(0, help="Processes (0 = one per core)."),
    largest: bool = typer.Option(False, help="Only the largest face of each image."),
) -> None:
    """Embed every face (dlib ResNet 128-D, L2-normalised)."""
    _batch(images, True, json_out, detector, workers, largest)


@app.command()
def verify(
    image_a: Path,
    image_b: Path,
    json_out: bool = typer.Option(False, "--json"),
    threshold: Optional[float] = typer.Option(None, help="Cosine similarity threshold (default: measured on LFW)."),
    select: str = typer.Option("largest", help="Face to use when an image has several: largest, best, only."),
    detector: str = typer.Option(DEFAULT_DETECTOR),
    liveness: bool = typer.Option(False, help="Refuse presentation attacks (spoofs never match)."),
    fmr: Optional[float] = typer.Option(None, help="Threshold as a target false-match rate, e.g. 1e-3."),
) -> None:
    """Are the faces in two images the same person? Exit 0 for a match, 1 for no match."""
    import facelens

    result = facelens.verify(
        image_a, image_b, threshold=threshold, select=select, detector=detector, liveness=liveness, fmr=fmr
    )
    if json_out:
        _emit(result.to_dict())
    else:
        table = Table("match", "similarity", "distance", "threshold", "faces in A / B")
        table.add_row(
            "[green]yes[/]" if result.is_match else "[red]no[/]",
            f"{result.similarity:.4f}",
            f"{result.distance:.4f}",
            f"{result.threshold:.4f}",
            f"{result.faces_in_a} / {result.faces_in_b}",
        )
        out.print(table)
    raise typer.Exit(0 if result.is_match else 1)


@app.command()
def enroll(
    gallery: str = typer.Option(..., "--gallery", "-g", help="Gallery folder (created if missing) or postgresql:// URL."),
    collection: str = typer.Option("default", "--collection", "-c", help="Collection (tenant) in the gallery."),
    name: Optional[str] = typer.Argument(None, help="Person's name (with images)."),
    images: Optional[list[Path]] = typer.Argument(None, help="Images of that person."),
    from_folders: Optional[Path] = typer.Option(None, help="Root folder with one sub-folder of images per person."),
    json_out: bool = typer.Option(False, "--json"),
    min_quality: Optional[float] = typer.Option(None, help="Refuse faces whose quality score (0-1) is below this."),
) -> None:
    """Add people to a gallery, one face (the largest) per image."""
    from facelens.gallery import open_gallery

    jobs: list[tuple[str, list[str]]] = []
    if from_folders is not None:
        if not from_folders.is_dir():
            raise FacelensError(f"{from_folders}: not a folder")
        for folder in sorted(p for p in from_folders.iterdir() if p.is_dir()):
            jobs.append((folder.name, _expand([folder])))
    elif name and images:
        jobs.append((name, _expand(list(images))))
    else:
        raise FacelensError("give a NAME and IMAGES, or --from-folders ROOT")
    total = sum(len(j[1]) for j in jobs)
    skipped = 0
    with open_gallery(gallery, collection=collection) as store, _progress(total) as progress:
        task = progress.add_task("enrolling", total=total)
        results = []
        for person, paths in jobs:
            result = store.enroll(person, paths, on_progress=lambda: progress.advance(task), min_quality=min_quality)
            skipped += len(result.skipped)
            results.append(result)
            if json_out:
                _emit(result.to_dict())
    if not json_out:
        table = Table("person", "faces added", "skipped (reason)")
        for r in results:
            table.add_row(r.name, str(len(r.added)), "; ".join(f"{s['source']}: {s['reason']}" for s in r.skipped))
        out.print(table)
    if skipped:
        raise typer.Exit(1)


@app.command()
def identify(
    images: list[Path] = typer.Argument(..., help="Images or folders of images."),
    gallery: str = typer.Option(..., "--gallery", "-g", help="Gallery folder or postgresql:// URL."),
    collection: str = typer.Option("default", "--collection", "-c", help="Collection (tenant) in the gallery."),
    where: Optional[list[str]] = typer.Option(None, "--where", help="Only people whose metadata has KEY=VALUE."),
    json_out: bool = typer.Option(False, "--json"),
    k: int = typer.Option(3, "--top-k", help="Candidates per face."),
    threshold: Optional[float] = typer.Option(None, help="Fixed similarity threshold instead of --fpir."),
    fpir: float = typer.Option(0.01, help="Target rate of strangers given a name (sets the threshold by gallery size)."),
    annotate: Optional[Path] = typer.Option(None, help="Write images with boxes and names drawn to this folder."),
    liveness: bool = typer.Option(False, help="Spoofed faces are never named."),
    analyze: bool = typer.Option(False, "--analyze", help="Add expression, age/gender and quality per face."),
) -> None:
    """Name the faces in images (open set: 'unknown' below the threshold)."""
    import facelens
    from facelens.gallery import open_gallery
    from facelens.io.image import decode_image

    sources = _expand(list(images))
    failed = 0
    table = Table("path", "box", "name", "score", "threshold")
    from facelens.gallery.cli import parse_where

    filters = parse_where(where)
    with open_gallery(gallery, create=False, collection=collection) as store, _progress(len(sources)) as progress:
        task = progress.add_task("identifying", total=len(sources))
        for source in sources:
            progress.advance(task)
            try:
                matches = facelens.identify(
                    source, store, k=k, threshold=threshold, fpir=fpir, liveness=liveness, analyze=analyze,
                    where=filters,
                )
            except FacelensError as exc:
                failed += 1
                if json_out:
                    _emit({"path": source, "faces": [], "error": str(exc)})
                else:
                    table.add_row(source, "", "", "", str(exc))
                continue
            if json_out:
                _emit({"path": source, "faces": [m.to_dict() for m in matches], "error": None})
            for m in matches:
                table.add_row(source, ",".join(f"{v:.0f}" for v in m.box), m.label, f"{m.score:.4f}", f"{m.threshold:.4f}")
            if annotate is not None:
                from facelens.draw import draw_matches
                from facelens.io.image import save_image

                drawn = draw_matches(decode_image(source), matches)
                save_image(drawn, annotate / (Path(source).stem + ".png"))
    if not json_out:
        out.print(table)
    if failed:
        raise typer.Exit(1)


@app.command()
def models(json_out: bool = typer.Option(False, "--json")) -> None:
    """Registered model files and where each resolves locally (nothing is downloaded)."""
    import facelens.analyze.models  # noqa: F401
    import facelens.liveness.models  # noqa: F401
    import facelens.models.catalog  # noqa: F401
    from facelens.models.registry import describe

    rows = describe()
    if json_out:
        for row in rows:
            _emit(row)
        return
    table = Table("model", "task", "file", "local path")
    for row in rows:
        table.add_row(row["model"], row["task"], row["file"], row["path"] or "[yellow]not local[/]")
    out.print(table)


def _mount() -> None:
    from facelens.analyze.cli import app as analyze_app
    from facelens.evaluate.cli import app as eval_app
    from facelens.gallery.cli import app as gallery_app
    from facelens.liveness.cli import app as liveness_app
    from facelens.service.cli import keys_app, serve
    from facelens.video.cli import app as video_app

    app.add_typer(gallery_app, name="gallery")
    app.add_typer(analyze_app, name="analyze")
    app.add_typer(liveness_app, name="liveness")
    app.add_typer(eval_app, name="eval")
    app.add_typer(video_app, name="video")
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")


_mount()


def main() -> None:
    """Console entry point: typed errors become one line on stderr and exit code 2."""
    debug = "--debug" in sys.argv or os.environ.get("FACELENS_DEBUG")
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except FacelensError as exc:
        if debug:
            raise
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        # click usage errors and the like carry their own exit code
        code = getattr(exc, "exit_code", None)
        if code is not None:
            if hasattr(exc, "show"):
                exc.show()
            sys.exit(code)
        err.print(f"[red]error:[/] {exc.__class__.__name__}: {exc}", highlight=False)
        sys.exit(2)
