"""``facelens anonymize INPUTS... --out DIR [--method blur|pixelate|solid|mask|replace] [--keep|--only -g GALLERY]``:
cover the faces of images, folders, videos and streams; output without metadata, videos with their audio.

A folder keeps its layout under ``DIR/<folder name>/``; a file goes to ``DIR/<file name>`` (a stream to
``DIR/<stream name>.mp4``). Exit 1 when an input could not be read (the others are still written).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from facelens.cli.options import DEFAULT_DETECTOR, Collection, Detector, Json, OptionalGallery, Workers
from facelens.cli.output import FAILED, OK, USAGE, emit, err, fail, message
from facelens.cli.output import out as stdout
from facelens.errors import FacelensError
from facelens.privacy.methods import DEFAULT_MARGIN, DEFAULT_STRENGTH, METHODS

METHOD_HELP = (f"How to cover faces: {', '.join(METHODS)} (mask: an elliptical blur; replace: --replace-with IMAGE).")
STRENGTH_HELP = ("Per method: blur/mask sigma and pixelate block as a fraction of the face's size, solid/replace "
                 "opacity. Defaults (measured: re-identification <= 1 %): "
                 + ", ".join(f"{m} {s}" for m, s in DEFAULT_STRENGTH.items()) + ".")


def _plan(inputs: list[str], out: Path) -> list[tuple[str, Path, bool]]:
    """(input, output path, is video) per input: folders expanded (images and videos, sorted), streams named."""
    from facelens.cli.options import IMAGE_SUFFIXES, expand_inputs
    from facelens.io.video import VIDEO_EXTENSIONS, is_stream

    media = IMAGE_SUFFIXES | set(VIDEO_EXTENSIONS)
    plan: list[tuple[str, Path, bool]] = []
    for item in inputs:
        if is_stream(item):
            name = re.sub(r"[^A-Za-z0-9._-]+", "_", item.split("://")[-1]).strip("_") or "stream"
            plan.append((item, out / f"{'camera' + name if item.isdigit() else name}.mp4", True))
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in media)
            if not found:
                plan.append((item, out / path.name, False))  # fails as an input
            for p in found:
                plan.append((str(p), out / path.name / p.relative_to(path), p.suffix.lower() in VIDEO_EXTENSIONS))
            continue
        for p in expand_inputs([item]):
            suffix = Path(p).suffix.lower()
            target = out / Path(p).name
            if suffix == ".gif":  # animated or not, written as a still PNG of its first frame
                target = target.with_suffix(".png")
            plan.append((p, target, suffix in VIDEO_EXTENSIONS and suffix != ".gif"))
    return plan


def anonymize(
    inputs: Annotated[list[str], typer.Argument(metavar="INPUTS...", help="Images, videos, folders, stream URLs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the anonymised copies to.")],
    method: Annotated[str, typer.Option("--method", "-m", help=METHOD_HELP)] = "blur",
    strength: Annotated[Optional[float], typer.Option("--strength", help=STRENGTH_HELP)] = None,
    margin: Annotated[
        float, typer.Option("--margin", help="Fraction of the face box added on each side before covering.")
    ] = DEFAULT_MARGIN,
    replace_with: Annotated[
        Optional[Path], typer.Option("--replace-with", help="Image put over each face (method replace).")
    ] = None,
    gallery: OptionalGallery = None,
    collection: Collection = "default",
    keep: Annotated[bool, typer.Option("--keep", help="Leave the gallery's people visible; cover everyone else.")] = False,
    only: Annotated[bool, typer.Option("--only", help="Cover only the gallery's people.")] = False,
    audio: Annotated[bool, typer.Option("--audio/--no-audio", help="Copy a video's audio into the output.")] = True,
    detector: Detector = DEFAULT_DETECTOR,
    workers: Workers = 0,
    fps: Annotated[Optional[float], typer.Option(help="Frame rate of an image sequence given as a video.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a stream to answer.")] = 10.0,
    as_json: Json = False,
) -> None:
    """Cover every face (or, with a gallery, everyone but / only its people) in images and videos. Images are
    written without EXIF or other metadata; videos keep their audio (PyAV). Video faces are tracked, so a face
    stays covered between detections and for a second after it is lost."""
    from facelens.privacy import Anonymizer, Cover, People
    from facelens.privacy.media import save_clean_image

    store = None
    try:
        if keep and only:
            raise typer.BadParameter("use --keep or --only, not both")
        if (keep or only) and gallery is None:
            raise typer.BadParameter("--keep and --only need a gallery (-g GALLERY)")
        if gallery is not None and not (keep or only):
            raise typer.BadParameter("a gallery is used with --keep or --only")
        replacement = None
        if replace_with is not None:
            from facelens.io.image import decode_image

            replacement = decode_image(replace_with)
        cover = Cover(method, strength, margin, replacement=replacement)
        people = None
        if gallery is not None:
            from facelens.gallery import open_gallery

            store = open_gallery(gallery, create=False, collection=collection)
            people = People(store, "keep" if keep else "only")
        anonymizer = Anonymizer(cover, detector=detector, people=people, workers=workers or None)
        plan = _plan(inputs, out)
    except typer.BadParameter as exc:
        if store is not None:
            store.close()
        fail(exc, USAGE)
    except (FacelensError, ValueError) as exc:
        if store is not None:
            store.close()
        fail(exc, USAGE)

    failed = False
    rows: list[tuple[str, str, str]] = []
    try:
        images = [(source, target) for source, target, video in plan if not video]
        targets = dict(images)
        for outcome in anonymizer.images([s for s, _ in images]):
            target = targets.get(outcome.source)
            record = {"source": outcome.source, "output": None, **outcome.to_dict()}
            if outcome.error is None:
                save_clean_image(outcome.image, target)
                record["output"] = str(target)
            failed |= outcome.error is not None
            _report(record, as_json, rows, f"{outcome.faces} faces, {outcome.covered} covered")
        for source, target, video in plan:
            if not video:
                continue
            try:
                result = anonymizer.video(source, target, audio=audio, fps=fps, timeout=timeout)
            except FacelensError as exc:
                if "PyAV" in str(exc):  # the command cannot keep audio here at all: not about this input
                    fail(exc, USAGE)
                failed = True
                _report({"source": source, "output": None, "error": message(exc)}, as_json, rows, "")
                continue
            failed |= result.error is not None
            _report(result.to_dict(), as_json, rows,
                    f"{result.frames} frames, {result.tracks} tracks, {len(result.kept_tracks)} kept, "
                    f"audio {'kept' if result.audio else 'none'}, {result.fps:.1f} frames/s")
    finally:
        if store is not None:
            store.close()
    if not as_json:
        from rich.table import Table

        table = Table(title=f"anonymised with {cover.method} (strength {cover.strength}) into {out}")
        for column in ("input", "output", "result"):
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        stdout.print(table)
    raise typer.Exit(FAILED if failed else OK)


def _report(record: dict, as_json: bool, rows: list, summary: str) -> None:
    if as_json:
        emit(record)
    elif record.get("error"):
        err.print(f"error: {record['error']}", markup=False, highlight=False)
        rows.append((record["source"], "-", "failed"))
    else:
        rows.append((record["source"], str(record["output"]), summary))
