"""``process_video``: the core pipeline per sampled frame, a tracker in between, identity per track, a timeline.

    run = facelens.process_video("clip.mp4", gallery="./people", out="annotated.mp4")
    for frame in run:                      # FrameResult per frame: tracked faces, names, events
        ...
    run.timeline.save("timeline.json")     # who appeared when (also the generator's return value)

    timeline = facelens.process_video("clip.mp4", gallery="./people").run()   # the same, in one call

Detection runs every k-th frame; k adapts to the measured cost so that processing keeps ``speed`` × real time
(``every=K`` fixes it). Decoding (the source's thread) and grey conversion, cut detection and detection (a prefetch
thread, see :class:`Prefetch`) run ahead of the loop that follows, embeds and draws, so the stages overlap on two
cores. Between detections faces are followed (see ``tracking``); a track's best faces (by
``facelens.analyze.quality``) are embedded and vote on its identity (see ``identity``). A source that fails or ends
early still gives the timeline up to that point, with ``complete=False`` and the reason in ``error``.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from facelens.detect import DEFAULT_DETECTOR
from facelens.errors import FacelensError
from facelens.io.video import OPEN_TIMEOUT, Frame, FrameSource, VideoWriter, open_source
from facelens.types import DetectedFace, Face
from facelens.video.identity import BEST_FACES, UnknownPeople, keep_best, tally
from facelens.video.timeline import Timeline, TrackRecord, people_of
from facelens.video.tracking import MAX_GAP, MIN_HITS, Sample, Track, Tracker

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger(__name__)

#: Default processing speed target for files, in multiples of real time (live sources use 1).
FILE_SPEED = 2.0
#: Detection runs at least twice and at most ten times per second of video when ``every`` adapts.
MIN_DETECT_RATE, MAX_DETECT_RATE = 2.0, 10.0
#: A track is re-embedded at most this often (seconds of video), and only when the face is among its best.
EMBED_INTERVAL = 1.0
#: Longer side of stored thumbnails, pixels.
THUMB_SIDE = 160
#: Bhattacharyya distance between consecutive frames' grey histograms above which the shot changed and the detector
#: runs at once. Measured on short_hamilton_clip.mp4: its three cuts score 0.23-0.39, every other frame pair <= 0.06
#: (95th percentile 0.047).
CUT_DISTANCE = 0.15
#: Frames made ready (grey, cut flag, detections) ahead of the loop.
PREFETCH = 4


class ShotCuts:
    """Flags the first frame of a new shot (a cut), so faces of the new shot are detected without waiting k frames."""

    def __init__(self, threshold: float = CUT_DISTANCE) -> None:
        self.threshold = threshold
        self._last: np.ndarray | None = None

    def is_cut(self, gray: np.ndarray) -> bool:
        small = cv2.resize(gray, (160, 90), interpolation=cv2.INTER_AREA)
        hist = cv2.calcHist([small], [0], None, [32], [0, 256])
        hist = cv2.normalize(hist, hist).flatten()
        last, self._last = self._last, hist
        return last is not None and cv2.compareHist(last, hist, cv2.HISTCMP_BHATTACHARYYA) > self.threshold


@dataclass(frozen=True)
class Prepared:
    """A frame made ready off the main loop: its grey image, whether a shot starts here, and the detector's faces
    when the frame was due for detection (None otherwise), with the seconds the detector took."""

    frame: Frame
    gray: np.ndarray = field(repr=False)
    cut: bool
    detections: list[DetectedFace] | None
    detect_seconds: float = 0.0


_DONE = object()


class Prefetch:
    """Runs ahead of the frame loop in one thread: takes decoded frames from the source (which decodes in its own
    thread), converts them to grey, flags shot cuts and runs the detector on the frames due by the cadence, into a
    bounded queue. Detection (onnxruntime, OpenCV: the GIL is released) then overlaps the loop's following,
    embedding and drawing on the other core. The loop still detects at once, itself, after it loses a face."""

    def __init__(
        self, source: FrameSource, detect: Callable[[np.ndarray], list[DetectedFace]], cadence: Cadence, size: int = PREFETCH
    ) -> None:
        self.source, self.detect, self.cadence = source, detect, cadence
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, size))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=f"prefetch {source.name}", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        cuts = ShotCuts()
        since: int | None = None  # frames since this thread last detected
        try:
            for frame in self.source:
                gray = cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)
                cut = cuts.is_cut(gray)
                detections, seconds = None, 0.0
                if cut or self.cadence.due(since):
                    started = time.perf_counter()
                    detections = self.detect(frame.image)
                    seconds = time.perf_counter() - started
                    since = 0
                else:
                    since = (since or 0) + 1
                if not self._put(Prepared(frame, gray, cut, detections, seconds)):
                    return
        except BaseException as exc:  # noqa: BLE001  (handed to the loop, which raises it in its own thread)
            self._put(exc)
            return
        finally:
            self.source.close()
        self._put(_DONE)

    def __iter__(self) -> Iterator[Prepared]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop reading ahead and release the source (also when the loop stops early)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)  # it stops at its next frame
            if self._thread.is_alive():  # waiting on a stalled source: closing it ends the wait
                self.source.close()
                self._thread.join(timeout=5.0)
        self.source.close()


@dataclass(frozen=True)
class TrackedFace:
    """A face in one frame: its track, box, person label (gallery name, ``unknown-N``, or None while undecided),
    gallery name (None unless identified), identity confidence, and whether a detector found it in this frame."""

    track: int
    box: np.ndarray
    person: str | None
    name: str | None
    confidence: float
    detected: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "track": self.track,
            "box": [round(float(v), 1) for v in self.box],
            "person": self.person,
            "name": self.name,
            "confidence": round(self.confidence, 4),
            "detected": self.detected,
        }


@dataclass(frozen=True)
class FrameResult:
    """One processed frame: where it is, the faces tracked in it, and the appear/identify/disappear events."""

    index: int
    time: float
    faces: list[TrackedFace]
    detected: bool  # the detector ran on this frame
    every: int  # current detection interval in frames
    events: list[dict[str, Any]] = field(default_factory=list)
    image: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.index,
            "time": round(self.time, 3),
            "detected": self.detected,
            "every": self.every,
            "faces": [f.to_dict() for f in self.faces],
            "events": self.events,
        }


class Cadence:
    """Which frames to run the detector on. Fixed (``every``) or adaptive: from the measured cost of detection
    frames (d) and follow-only frames (f), the smallest k with (d + (k−1)·f)/k within the per-frame budget
    1 / (fps × speed), clamped to detecting 2…10 times per second of video."""

    def __init__(self, every: int | None, fps: float, speed: float) -> None:
        fps = fps or 25.0
        self.fixed = every
        self.min_every = max(1, round(fps / MAX_DETECT_RATE))
        self.max_every = max(self.min_every, round(fps / MIN_DETECT_RATE))
        self.budget = 1.0 / (fps * speed)
        self.every = every or self.min_every
        self.detect_cost: float | None = None
        self.follow_cost: float | None = None
        self.lost = False  # a followed face was lost: detect on the next frame

    def soon(self) -> None:
        """Detect on the next frame (a followed face was lost)."""
        self.lost = True

    def due(self, since: int | None) -> bool:
        """Whether a frame ``since`` frames after the last detection (None: none yet) is due for detection."""
        return since is None or since + 1 >= self.every

    def record(self, detected: bool, seconds: float) -> None:
        if detected:
            self.lost = False
            self.detect_cost = seconds if self.detect_cost is None else 0.7 * self.detect_cost + 0.3 * seconds
        else:
            self.follow_cost = seconds if self.follow_cost is None else 0.8 * self.follow_cost + 0.2 * seconds
        if self.fixed or self.detect_cost is None:
            return
        d, f = self.detect_cost, self.follow_cost or 0.0
        k = self.max_every if self.budget <= f else math.ceil(max(d - f, 0.0) / (self.budget - f))
        self.every = int(min(max(k, self.min_every), self.max_every))


def _thumbnail(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    pad_x, pad_y = 0.25 * (x2 - x1), 0.25 * (y2 - y1)
    h, w = image.shape[:2]
    crop = image[int(max(0, y1 - pad_y)) : int(min(h, y2 + pad_y)), int(max(0, x1 - pad_x)) : int(min(w, x2 + pad_x))]
    if crop.size == 0:
        return np.zeros((1, 1, 3), np.uint8)
    scale = THUMB_SIDE / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)


def _safe_name(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label) or "person"


class VideoRun:
    """A video being processed: iterate for :class:`FrameResult` per frame; ``timeline`` once done (the
    generator's return value too); ``run()`` processes everything and returns the timeline. The source is opened
    on construction, so a missing file or an unreachable stream raises :class:`facelens.errors.VideoError` at once."""

    def __init__(
        self,
        source: str | os.PathLike | int | Iterable[np.ndarray] | FrameSource,
        gallery: Any = None,
        every: int | None = None,
        *,
        out: str | os.PathLike | None = None,
        timeline: str | os.PathLike | None = None,
        thumbnails: str | os.PathLike | None = None,
        fpir: float | None = None,
        threshold: float | None = None,
        speed: float | None = None,
        detector: str = DEFAULT_DETECTOR,
        pipeline: Any = None,
        min_hits: int = MIN_HITS,
        max_gap: float = MAX_GAP,
        fps: float | None = None,
        timeout: float = OPEN_TIMEOUT,
        reconnect: int = 5,
        keep_images: bool = False,
    ) -> None:
        from facelens.decide import profile
        from facelens.pipeline import get_pipeline

        if every is not None and every < 1:
            raise ValueError(f"every must be >= 1 (or None to adapt), got {every}")
        self._own_gallery = isinstance(gallery, (str, os.PathLike))
        if self._own_gallery:
            from facelens.gallery import open_gallery

            gallery = open_gallery(gallery, create=False)
        self.gallery = gallery
        try:
            if pipeline is None:  # the gallery's own embedder, whatever the default
                from facelens.embed import DEFAULT_EMBEDDER, embedder_for_model

                embedder = embedder_for_model(gallery.model_id) if gallery is not None else DEFAULT_EMBEDDER
                pipeline = get_pipeline(detector=detector, embedder=embedder)
            self.pipeline = pipeline
            if gallery is not None:
                gallery.check_model(self.pipeline.model_id)
                if threshold is None:
                    threshold = gallery.open_set_threshold(fpir) if fpir else gallery.open_set_threshold()
            self.threshold = threshold
            self.reid_threshold = profile(self.pipeline.model_id).verify_threshold
            self.source = open_source(source, fps=fps, timeout=timeout, reconnect=reconnect)
        except BaseException:
            self.close()
            raise
        self.every = every
        self.speed = speed or (1.0 if self.source.live else FILE_SPEED)
        self.out, self.timeline_path = out, timeline
        self.thumbnails = Path(thumbnails) if thumbnails else None
        self.min_hits, self.max_gap = min_hits, max_gap
        self.keep_images = keep_images
        self.timeline: Timeline | None = None
        self.events: list[dict[str, Any]] = []
        self._started = False
        self._generator: Generator[FrameResult, None, Timeline] | None = None

    # -- public -------------------------------------------------------------------------------------
    def __iter__(self) -> Generator[FrameResult, None, Timeline]:
        if self._started:
            raise FacelensError("a VideoRun can be iterated once; call process_video again")
        self._started = True
        self._generator = self._frames()
        return (yield from self._generator)

    def run(self, on_frame: Any = None) -> Timeline:
        """Process the whole source (``on_frame(result)`` per frame, e.g. for progress) and return the timeline."""
        for result in self:
            if on_frame is not None:
                on_frame(result)
        assert self.timeline is not None
        return self.timeline

    def close(self) -> None:
        """Stop processing (the timeline so far is kept in ``timeline``) and release the source and gallery."""
        generator = getattr(self, "_generator", None)
        if generator is not None:
            self._generator = None
            generator.close()
        source = getattr(self, "source", None)
        if source is not None:
            source.close()
        if self._own_gallery and self.gallery is not None:
            self.gallery.close()
            self.gallery = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop -----------------------------------------------------------------------------------
    def _frames(self) -> Generator[FrameResult, None, Timeline]:
        src = self.source
        tracker = Tracker(self.reid_threshold, min_hits=self.min_hits, max_gap=self.max_gap)
        unknowns = UnknownPeople(self.reid_threshold)
        cadence = Cadence(self.every, src.fps, self.speed)
        writer: VideoWriter | None = None
        frames, last_time, error = 0, 0.0, None
        started = time.perf_counter()
        detections_run = embeddings_run = 0
        prefetch = Prefetch(src, self.pipeline.detect, cadence)
        try:
            for item in prefetch:
                tick = time.perf_counter()
                frame, gray = item.frame, item.gray
                image = frame.image
                events: list[dict[str, Any]] = []
                detections, detect_seconds = item.detections, item.detect_seconds
                if detections is None and cadence.lost:  # a face was lost on the last frame: look again now
                    detect_started = time.perf_counter()
                    detections = self.pipeline.detect(image)
                    detect_seconds = time.perf_counter() - detect_started
                    tick += detect_seconds  # counted once, below
                detect = detections is not None
                detected_ids: set[int] = set()
                if detect:
                    detections_run += 1
                    embeddings_run += self._detect_frame(
                        image, gray, detections, frame.index, frame.time, tracker, unknowns, events, detected_ids
                    )
                elif not tracker.follow(gray, frame.index, frame.time):
                    cadence.soon()
                faces = [
                    TrackedFace(t.id, t.box.copy(), t.label, t.name, t.confidence, t.id in detected_ids)
                    for t in tracker.tracks
                    if t.shown
                ]
                if self.out is not None:
                    if writer is None:
                        writer = VideoWriter(self.out, src.fps or 25.0, (image.shape[1], image.shape[0]))
                    writer.write(annotate(image, faces))
                frames += 1
                last_time = frame.time
                cadence.record(detect, time.perf_counter() - tick + detect_seconds)
                self.events.extend(events)
                yield FrameResult(
                    frame.index, frame.time, faces, detect, cadence.every, events, image if self.keep_images else None
                )
        except FacelensError as exc:
            error = str(exc)
            log.warning("video stopped: %s", exc)
        except BaseException as exc:  # the caller stopped early (break, close, Ctrl-C): keep what was seen
            error = f"stopped after {frames} frames ({exc.__class__.__name__})"
            raise
        finally:
            prefetch.close()
            for track in tracker.finish():
                self.events.append(self._event("disappear", track, track.last_frame, track.last_time))
            if writer is not None:
                writer.close()
            elapsed = time.perf_counter() - started
            stats = {
                "seconds": round(elapsed, 3),
                "fps": round(frames / elapsed, 2) if elapsed > 0 else 0.0,
                "detections": detections_run,
                "embeddings": embeddings_run,
                "every": cadence.every,
                "dropped": src.dropped,
                "threshold": None if self.threshold is None else round(float(self.threshold), 4),
            }
            self.timeline = self._timeline(tracker, unknowns, frames, last_time, error or src.error, stats)
            if self.timeline_path is not None:
                self.timeline.save(self.timeline_path)
            self._generator = None  # finished: close() must not close this running generator
            self.close()
        return self.timeline

    def _detect_frame(
        self,
        image: np.ndarray,
        gray: np.ndarray,
        detections: list[DetectedFace],
        index: int,
        now: float,
        tracker: Tracker,
        unknowns: UnknownPeople,
        events: list[dict[str, Any]],
        detected_ids: set[int],
    ) -> int:
        from facelens.analyze.quality import assess_quality

        pipe = self.pipeline

        def embed(indices: list[int]) -> dict[int, Face]:
            return dict(zip(indices, pipe.embed_detections(image, [detections[i] for i in indices])))

        was_confirmed = {t.id for t in tracker.tracks if t.confirmed}
        assoc = tracker.associate(gray, detections, embed, index, now)
        embedded = len(assoc.faces)
        # quality of every matched face; embed the ones that would join their track's best faces
        pending: list[tuple[Track, int, float]] = []
        for track, i in assoc.matched:
            detected_ids.add(track.id)
            quality = assess_quality(image, detections[i]).score
            if i in assoc.faces:
                pending.append((track, i, quality))
                continue
            worst = min((s.quality for s in track.samples), default=-1.0)
            due = now - track.last_embedded >= EMBED_INTERVAL
            if due and (len(track.samples) < BEST_FACES or quality > worst):
                pending.append((track, i, quality))
        extra = [i for _, i, _ in pending if i not in assoc.faces]
        faces = dict(assoc.faces)
        changed: set[int] = set()
        if extra:
            faces.update(embed(extra))
            embedded += len(extra)
        if pending:
            vectors = [faces[i].embedding for _, i, _ in pending]
            if self.gallery is not None:
                matches = self.gallery.identify_faces(
                    vectors, [detections[i].box for _, i, _ in pending], k=1, threshold=self.threshold
                )
            else:
                matches = [None] * len(pending)
            for (track, i, quality), match in zip(pending, matches):
                sample = Sample(
                    face=faces[i],
                    quality=quality,
                    time=now,
                    frame=index,
                    thumbnail=_thumbnail(image, detections[i].box),
                    name=match.name if match is not None else None,
                    similarity=match.score if match is not None else 0.0,
                )
                track.last_embedded = now
                if keep_best(track.samples, sample):
                    changed.add(track.id)
        for track in tracker.tracks:
            if track.id in changed or (track.confirmed and track.id not in was_confirmed):
                self._decide(track, unknowns, events, index, now)
        for track in tracker.tracks:
            if track.confirmed and track.id not in was_confirmed:
                events.append(self._event("appear", track, track.first_frame, track.first_time))
        for track in assoc.ended:
            events.append(self._event("disappear", track, track.last_frame, track.last_time))
        return embedded

    def _decide(self, track: Track, unknowns: UnknownPeople, events: list, index: int, now: float) -> None:
        if not track.confirmed:
            return
        vote = tally(track.samples)
        before = track.label
        if vote.name is not None:
            if track.name is None:
                unknowns.release(track)
            track.label = track.name = vote.name
        else:
            track.name = None
            track.label = unknowns.label_for(track)
        track.confidence, track.score = vote.confidence, vote.score
        if track.label != before and before is not None:
            events.append(self._event("identify", track, index, now, previous=before))

    @staticmethod
    def _event(kind: str, track: Track, index: int, at: float, **extra: Any) -> dict[str, Any]:
        out = {
            "event": kind,
            "time": round(at, 3),
            "frame": index,
            "track": track.id,
            "person": track.label,
            "confidence": round(track.confidence, 4),
        }
        out.update(extra)
        return out

    def _timeline(
        self, tracker: Tracker, unknowns: UnknownPeople, frames: int, last_time: float, error: str | None, stats: dict
    ) -> Timeline:
        src = self.source
        rows: list[TrackRecord] = []
        best: dict[str, tuple[float, np.ndarray]] = {}
        for track in sorted(tracker.reported(), key=lambda t: t.id):
            if track.label is None:  # never embedded (e.g. the video ended right after it appeared)
                continue
            thumb_path = ""
            sample = track.best_sample()
            if sample is not None and self.thumbnails is not None:
                thumb_path = str(self._save_thumb(f"track-{track.id}", sample.thumbnail))
            if sample is not None and sample.quality > best.get(track.label, (-1.0, None))[0]:
                best[track.label] = (sample.quality, sample.thumbnail)
            rows.append(
                TrackRecord(
                    person=track.label,
                    track=track.id,
                    first_seen=round(track.first_time, 3),
                    last_seen=round(track.last_time, 3),
                    frames=track.frames,
                    confidence=round(track.confidence, 4),
                    score=round(track.score, 4),
                    named=track.name is not None,
                    thumbnail=thumb_path,
                )
            )
        person_thumbs = {}
        if self.thumbnails is not None:
            person_thumbs = {label: str(self._save_thumb(label, img)) for label, (_, img) in best.items()}
        embeddings = {}
        for person in unknowns.people:
            vectors = [s.face.embedding for t in tracker.reported() if t.id in person.templates for s in t.samples]
            if vectors:
                embeddings[person.label] = np.stack(vectors)
        fps = src.fps or 0.0
        duration = frames / fps if fps and not src.live else last_time
        return Timeline(
            source=src.name,
            fps=round(fps, 3),
            frames=frames,
            duration=round(duration, 3),
            tracks=rows,
            people=people_of(rows, embeddings, person_thumbs),
            model_id=self.pipeline.model_id,
            complete=error is None,
            error=error,
            stats=stats,
        )

    def _save_thumb(self, stem: str, image: np.ndarray) -> Path:
        assert self.thumbnails is not None
        self.thumbnails.mkdir(parents=True, exist_ok=True)
        path = self.thumbnails / f"{_safe_name(stem)}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return path


def annotate(image: np.ndarray, faces: list[TrackedFace]) -> np.ndarray:
    """The frame with each tracked face's box, person label, track id and confidence drawn."""
    from facelens.draw import draw_boxes

    if not faces:
        return image
    labels = [f"{f.person or '?'} #{f.track}" + (f" {f.confidence:.2f}" if f.person else "") for f in faces]
    return draw_boxes(image, [f.box for f in faces], labels, [f.name is not None for f in faces])


def process_video(
    source: str | os.PathLike | int | Iterable[np.ndarray] | FrameSource,
    gallery: Any = None,
    every: int | None = None,
    **options: Any,
) -> VideoRun:
    """Track and name the faces of a video file, image sequence, stream URL, webcam index or iterable of frames.

    ``gallery``: a :class:`facelens.gallery.base.Gallery` or its location (None: everyone is ``unknown-N``).
    ``every``: run the detector every K frames (None: adapt to the machine's load). Options: ``out`` (annotated
    video path), ``timeline`` (JSON/CSV path), ``thumbnails`` (folder), ``fpir``/``threshold`` (open-set decision),
    ``speed`` (target multiple of real time), ``detector``, ``min_hits``, ``max_gap``, ``fps`` (for image sequences),
    ``timeout`` (stream open), ``reconnect`` (attempts after a stream drops), ``keep_images`` (keep each frame's image on its result).

    Iterate the returned :class:`VideoRun` for per-frame results; its ``timeline`` (also the generator's return
    value) is ready when iteration ends, or call ``.run()`` to get it directly.
    """
    return VideoRun(source, gallery, every, **options)
