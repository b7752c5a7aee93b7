"""``facelens video INPUT... --gallery G [--out annotated.mp4] [--timeline t.json] [--every K] [--json] [--ray A]``
and ``facelens video enroll TIMELINE unknown-N --name NAME --gallery G``.

Several INPUTs (or ``--ray``) run one video per task (:mod:`facelens.distributed.video`): on Ray, one Ray task per
video; without it, one after another. ``--out``, ``--timeline`` and ``--thumbnails`` then name folders, each video
writing ``STEM.mp4``, ``STEM.json`` and ``STEM_faces/`` there.

An argument that is not a subcommand name goes to ``run``, so ``facelens video CLIP`` works (the root CLI mounts
this app as ``video``). ``--json`` prints JSON lines: the appear/identify/disappear events when shown, then the
timeline as the last line.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from facelens.cli.options import (
    DEFAULT_DETECTOR, Adapt, Collection, Detector, Embedder, Json, Liveness, OptionalGallery, Ray, Where, parse_where, ray_runner,
)  # fmt: skip
from facelens.cli.output import FAILED, USAGE, default_command_group, emit, err, exit_code, fail, message
from facelens.cli.output import out as stdout
from facelens.errors import FacelensError

app = typer.Typer(
    cls=default_command_group("run"),
    help="Faces in videos and streams: who appears when (`facelens video CLIP`), enrol an unknown (`enroll`).",
    no_args_is_help=True,
)


@app.command("run")
def run_cmd(
    sources: Annotated[
        list[str], typer.Argument(metavar="INPUT...", help="Video files, image folders/patterns, a stream URL or a "
                                  "webcam index (several: video files or folders, one task each).")
    ],
    gallery: OptionalGallery = None,
    collection: Collection = "default",
    where: Where = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write an annotated video (.mp4 or .avi).")] = None,
    timeline: Annotated[
        Path | None, typer.Option("--timeline", "-t", help="Write the timeline (.json, or .csv for the rows only).")
    ] = None,
    every: Annotated[
        int | None, typer.Option("--every", min=1, help="Detect every K frames (default: adapt to load).")
    ] = None,
    thumbnails: Annotated[
        Path | None, typer.Option(help="Folder for face thumbnails (default: TIMELINE_faces/ next to --timeline).")
    ] = None,
    as_json: Json = False,
    events: Annotated[
        bool | None,
        typer.Option("--events/--no-events", help="Appear/disappear events as JSON lines (default: live sources)."),
    ] = None,
    fpir: Annotated[float | None, typer.Option(help="Target rate of strangers given a name.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Fixed similarity threshold instead of --fpir.")] = None,
    detector: Detector = DEFAULT_DETECTOR,
    embedder: Embedder = None,
    liveness: Liveness = False,
    analyze: Annotated[
        bool,
        typer.Option("--analyze", help="Expression on every frame: smoothed per track and person, a summary and "
                     "episodes (onset, apex, offset) in the timeline, drawn on --out."),
    ] = False,
    adapt: Adapt = None,
    expression_model: Annotated[
        str | None, typer.Option("--expression-model", help="Expression model of --analyze, by name.")
    ] = None,
    blink_signal: Annotated[
        str | None,
        typer.Option("--blink-signal", help="Eye signal of the per-track blink count of --analyze/--liveness: "
                     "blendshapes (default when ai-edge-litert is installed), ear or eye_state."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a stream to answer.")] = 10.0,
    fps: Annotated[float | None, typer.Option(help="Frame rate of an image sequence.")] = None,
    ray: Ray = None,
) -> None:
    """Track and name the faces in a video or stream; print who appeared when. Exit 1 when the video cannot be
    read to its end (the timeline then covers it up to there)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from facelens.video.process import process_video

    options = {"every": every, "where": None, "liveness": liveness, "analyze": analyze, "adapt": adapt,
               "expression_model": expression_model, "fpir": fpir, "threshold": threshold, "detector": detector,
               "blink_signal": blink_signal, "timeout": timeout, "fps": fps, "embedder": embedder}
    if len(sources) > 1 or ray is not None:
        _run_many(sources, gallery, collection, where, out, timeline, thumbnails, options, as_json, events, ray)
        return
    source = sources[0]

    if thumbnails is None and timeline is not None:
        thumbnails = timeline.parent / f"{timeline.stem}_faces"
    store = None
    try:
        filters = parse_where(where)
        if gallery is not None:
            from facelens.gallery import open_gallery

            store = open_gallery(gallery, create=False, collection=collection)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    try:
        run = process_video(
            source,
            store,
            every,
            where=filters or None,
            liveness=liveness,
            analyze=analyze,
            adapt=adapt,
            expression_model=expression_model,
            blink_signal=blink_signal,
            out=out,
            timeline=timeline,
            thumbnails=thumbnails,
            fpir=fpir,
            threshold=threshold,
            detector=detector,
            embedder=embedder,
            timeout=timeout,
            fps=fps,
        )
    except (FacelensError, ValueError) as exc:
        if store is not None:
            store.close()
        _failed(source, exc, as_json)
    show_events = run.source.live if events is None else events
    total = run.source.frame_count
    columns = [
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:.1f} fps · every {task.fields[every]} · {task.fields[people]}"),
        TimeElapsedColumn(),
    ]
    seen: set[str] = set()
    emitted = 0
    try:
        with Progress(*columns, console=err, transient=False, redirect_stdout=False, redirect_stderr=False) as progress:
            task = progress.add_task(Path(str(source)).name or str(source), total=total, fps=0.0, every="-", people="")
            started = None
            for count, frame in enumerate(run, 1):
                started = started or time.perf_counter()
                seen.update(f.person for f in frame.faces if f.person)
                elapsed = time.perf_counter() - started
                if show_events:
                    for event in frame.events:
                        emit(event)
                emitted += len(frame.events)
                progress.update(
                    task,
                    advance=1,
                    fps=count / elapsed if elapsed > 0 else 0.0,
                    every=frame.every,
                    people=", ".join(sorted(seen))[:60],
                )
    except FacelensError as exc:
        _failed(source, exc, as_json)
    except KeyboardInterrupt:
        where = f"; timeline up to here in {timeline}" if timeline is not None else ""
        err.print(f"interrupted after {run.timeline.frames if run.timeline else 0} frames{where}", markup=False)
        raise typer.Exit(130) from None
    finally:
        if store is not None:
            store.close()
    result = run.timeline
    assert result is not None
    if show_events:  # tracks still open when the source ended
        for event in run.events[emitted:]:
            emit(event)
    if as_json:
        emit(result.to_dict())
    else:
        _print_timeline(result, liveness, analyze)
        stats = result.stats
        err.print(
            f"{stats.get('fps', 0):.1f} frames/s, {stats.get('detections')} detections, {stats.get('embeddings')} embeddings"
        )
    if out is not None:
        err.print(f"annotated video: {out}", markup=False, highlight=False)
    if timeline is not None:
        err.print(f"timeline: {timeline}", markup=False, highlight=False)
    if not result.complete:
        err.print(f"error: {result.error} (timeline covers the video up to there)", markup=False, highlight=False)
        raise typer.Exit(FAILED)


def _print_timeline(result, liveness: bool, analyze: bool) -> None:
    from rich.table import Table

    table = Table(title=f"{result.source}: {result.frames} frames, {result.duration:.1f} s")
    columns = ["person", "track", "first seen (s)", "last seen (s)", "frames", "confidence", "thumbnail"]
    blinks = analyze or liveness
    for col in (columns + (["liveness"] if liveness else []) + (["expression", "episodes"] if analyze else [])
                + (["blinks"] if blinks else [])):
        table.add_column(col)
    for row in result.tracks:
        cells = [row.person, str(row.track), f"{row.first_seen:.2f}", f"{row.last_seen:.2f}", str(row.frames),
                 f"{row.confidence:.2f}", row.thumbnail]
        if liveness:
            cells.append("-" if row.liveness is None else f"{row.liveness:.2f} {row.liveness_verdict}")
        if analyze:
            cells += [row.csv_row()["expression"] or "-", row.csv_row()["episodes"] or "-"]
        if blinks:
            record = row.blinks
            cells.append("-" if not record else f"{record['count']} in {record['measured_s']:.1f} s "
                         f"({record['signal']})")
        table.add_row(*cells)
    stdout.print(table)


def _run_many(sources: list[str], gallery: str | None, collection: str, where: list[str] | None, out: Path | None,
              timeline: Path | None, thumbnails: Path | None, options: dict, as_json: bool, events: bool | None,
              ray: str | None) -> None:
    """One video per task (on Ray with ``--ray``), each with its own outputs; a line or a table per video."""
    from facelens.distributed.video import VideoJob, process_videos

    try:
        options["where"] = parse_where(where) or None
        if gallery is not None:  # checked here, opened by each task
            from facelens.gallery import open_gallery

            open_gallery(gallery, create=False, collection=collection).close()
        stems = [Path(s).stem or Path(s).name for s in sources]
        if len(sources) > 1 and len(set(stems)) < len(stems):
            shared = ", ".join(sorted(s for s in set(stems) if stems.count(s) > 1))
            raise FacelensError(f"several inputs share a name ({shared}): their outputs would collide in one folder; "
                                "run them separately")
        jobs = []
        for source, stem in zip(sources, stems):
            if len(sources) == 1:  # --ray on one video: the paths are the files themselves
                faces = thumbnails or (timeline.parent / f"{timeline.stem}_faces" if timeline is not None else None)
                jobs.append(VideoJob(source, _str(out), _str(timeline), _str(faces)))
                continue
            faces = thumbnails / stem if thumbnails is not None else (
                timeline / f"{stem}_faces" if timeline is not None else None)
            jobs.append(VideoJob(source, _str(out and out / f"{stem}.mp4"),
                                 _str(timeline and timeline / f"{stem}.json"), _str(faces)))
        for folder in (out, timeline):
            if folder is not None and len(sources) > 1:
                folder.mkdir(parents=True, exist_ok=True)
        runner = ray_runner(ray)
    except (FacelensError, ValueError, OSError) as exc:
        fail(exc, USAGE)
    failed = usage = False
    for outcome in process_videos(jobs, gallery, collection, runner=runner, **options):
        if outcome.error is not None and outcome.timeline is None:
            usage |= outcome.usage
            failed = True
            if as_json:
                emit({"source": outcome.source, "error": outcome.error})
            err.print(f"error: {outcome.error}", markup=False, highlight=False)
            continue
        result = outcome.timeline
        if events:
            for event in outcome.events:
                emit(event)
        if as_json:
            emit(result.to_dict())
        else:
            _print_timeline(result, options["liveness"], options["analyze"])
        if not result.complete:
            failed = True
            err.print(f"error: {result.source}: {result.error} (timeline covers the video up to there)",
                      markup=False, highlight=False)
    if runner is not None:
        err.print(f"ray: {len(jobs)} videos", markup=False, highlight=False)
    if failed:
        raise typer.Exit(USAGE if usage else FAILED)


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _failed(source: str, exc: Exception, as_json: bool) -> NoReturn:
    """The source could not be read (exit 1, with its record under --json) or an option is wrong (exit 2)."""
    code = exit_code(exc) if isinstance(exc, FacelensError) else USAGE
    if as_json and code == FAILED:
        emit({"source": source, "error": message(exc)})
        raise typer.Exit(code)
    fail(exc, code)


@app.command("enroll")
def enroll_cmd(
    timeline: Annotated[Path, typer.Argument(help="Timeline JSON written by `facelens video --timeline`.")],
    label: Annotated[str, typer.Argument(help="Anonymous person in it, e.g. unknown-2.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Name to enrol them under.")],
    gallery: Annotated[
        str, typer.Option("--gallery", "-g", help="Gallery folder or postgresql:// URL (created if absent).")
    ],
    collection: Collection = "default",
    as_json: Json = False,
) -> None:
    """Add an anonymous person from a video's timeline to a gallery under a name (their best faces' embeddings)."""
    from facelens.gallery import open_gallery
    from facelens.video.timeline import Timeline

    try:
        record = Timeline.load(timeline)
        try:
            person = record.person(label)
        except KeyError as exc:
            raise FacelensError(str(exc.args[0])) from None
        if not person.embeddings:
            raise FacelensError(
                f"{label} in {timeline} carries no embeddings (only anonymous people in a JSON timeline do)"
            )
        with open_gallery(gallery, model_id=record.model_id or None, collection=collection) as store:
            ids = store.add_embeddings(
                [name] * len(person.embeddings), person.embeddings, model_id=record.model_id or None
            )
    except FacelensError as exc:
        fail(exc, USAGE)
    result = {"name": name, "from": label, "faces_added": len(ids), "face_ids": ids, "gallery": str(gallery)}
    if as_json:
        emit(result)
    else:
        err.print(f"enrolled {label} as {name}: {len(ids)} faces added to {gallery}", markup=False, highlight=False)
