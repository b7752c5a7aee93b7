"""Many videos on Ray: one Ray task per video file, each running the engine's own video processing
(:func:`facelens.video.process.process_video`, unchanged) where the task lands, so an archive of videos spreads over
the cluster while each video keeps its frame order and its tracker.

A task opens the gallery itself from its location (a folder on a shared file system, or PostgreSQL), reads its video
from its path and writes its own outputs (annotated video, timeline, thumbnails) to the paths it is given; only the
timeline and the events come back to the driver. Without a runner the same function runs the videos one after
another in this process, so ``facelens video A B`` gives the same timelines with and without ``--ray``. The adaptive
detection cadence follows each machine's load; pass ``every`` for timelines that do not depend on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from facelens.errors import FacelensError


@dataclass
class VideoJob:
    """One video: its source and its own output paths (None: not written)."""

    source: str
    out: str | None = None
    timeline: str | None = None
    thumbnails: str | None = None


@dataclass
class VideoOutcome:
    """What came back for one video: its timeline and events, or the error that stopped it before any frame
    (``usage``: the error was the options', not the video's)."""

    source: str
    timeline: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    usage: bool = False


def process_one(job: VideoJob, gallery: str | None, collection: str, options: dict[str, Any]) -> VideoOutcome:
    """Process one video to its end, here (a Ray task's body, or the local loop's)."""
    from facelens.video.process import process_video

    store = None
    try:
        if gallery is not None:
            from facelens.gallery import open_gallery

            store = open_gallery(gallery, create=False, collection=collection)
        run = process_video(job.source, store, out=job.out, timeline=job.timeline, thumbnails=job.thumbnails,
                            **options)
        try:
            timeline = run.run()
        finally:
            run.close()
        return VideoOutcome(job.source, timeline, list(run.events))
    except (FacelensError, ValueError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        return VideoOutcome(job.source, error=text, usage=not isinstance(exc, FacelensError))
    finally:
        if store is not None:
            store.close()


def process_videos(jobs: Sequence[VideoJob], gallery: str | None = None, collection: str = "default",
                   runner: Any = None, **options: Any) -> Iterator[VideoOutcome]:
    """Each video's outcome, in input order: on Ray (``runner``, a :class:`RayRunner`: one task per video, a
    video whose worker dies is retried, then reported failed) or one after another here."""
    if runner is None:
        for job in jobs:
            yield process_one(job, gallery, collection, options)
        return
    from facelens.distributed import require_ray

    ray = require_ray()
    runner.start()
    remote = ray.remote(num_cpus=runner.cpus_per_worker, max_retries=runner.task_retries)(_task)
    pending = [remote.remote(job, gallery, collection, options, runner.cpus_per_worker) for job in jobs]
    for job, ref in zip(jobs, pending):
        try:
            yield ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the video's own error (not retried: it would recur)
            cause = exc.cause if exc.cause is not None else exc
            yield VideoOutcome(job.source, error=f"{job.source}: {type(cause).__name__}: {cause}")
        except Exception as exc:  # noqa: BLE001  (a worker that died on every attempt fails its video only)
            yield VideoOutcome(job.source, error=f"{job.source}: the Ray worker died on every attempt "
                                                 f"({runner.task_retries + 1}): {type(exc).__name__}")


_STARTED = False


def _task(job: VideoJob, gallery: str | None, collection: str, options: dict[str, Any], threads: int) -> VideoOutcome:
    """A Ray task: once per worker process its share of the cores (the models then stay loaded for its next
    video), then the video."""
    global _STARTED
    if not _STARTED:
        from facelens.engine import _init_worker

        _init_worker(threads)
        _STARTED = True
    return process_one(job, gallery, collection, options)


__all__ = ["VideoJob", "VideoOutcome", "process_one", "process_videos"]
