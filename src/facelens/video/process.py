"""``process_video``: the core pipeline per sampled frame, a tracker in between, identity per track, a timeline.

    run = facelens.process_video("clip.mp4", gallery="./people", out="annotated.mp4")
    for frame in run:                      # FrameResult per frame: tracked faces, names, events
        ...
    run.timeline.save("timeline.json")     # who appeared when (also the generator's return value)

    timeline = facelens.process_video("clip.mp4", gallery="./people").run()   # the same, in one call

Every stage is the engine's (:mod:`facelens.engine`): frames are detected by ``run_chunk``, the faces kept are
embedded, checked for liveness and analysed by ``fill_faces``, and named by :meth:`FaceAnalyzer.identify`; each
frame comes out as a :class:`FrameResult`, an :class:`~facelens.result.ImageResult` whose faces carry ``track_id``.
Detection runs every k-th frame; k adapts to the measured cost so that processing keeps ``speed`` × real time
(``every=K`` fixes it). Decoding (the source's thread) and the flow view (grey, shrunk), cut detection and detection (a prefetch
thread, see :class:`Prefetch`) run ahead of the loop that follows, embeds and draws. Between detections faces are
followed (see ``tracking``); a track's best faces (by ``facelens.analyze.quality``) are embedded and vote on its
identity (see ``identity``); with ``analyze`` its expression is followed over time (see ``expressions``). A source
that fails or ends early still gives the timeline up to that point, with ``complete=False`` and the reason in
``error``.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from facelens.detect import DEFAULT_DETECTOR
from facelens.engine import FaceAnalyzer, Plan, fill_faces, run_chunk
from facelens.errors import FacelensError
from facelens.io.video import OPEN_TIMEOUT, Frame, FrameSource, VideoWriter, open_source
from facelens.result import Faces, ImageResult, _column
from facelens.types import DetectedFace, Face
from facelens.video.identity import BEST_FACES, UnknownPeople, keep_best, tally
from facelens.video.timeline import Timeline, TrackRecord, people_of
from facelens.video.tracking import MAX_GAP, MIN_HITS, FlowView, Sample, ShotCuts, Track, Tracker, flow_view

if TYPE_CHECKING:
    from typing_extensions import Self

    from facelens.video.expressions import ExpressionTrack

log = logging.getLogger(__name__)

#: Default processing speed target for files, in multiples of real time (live sources use 1).
FILE_SPEED = 2.0
#: Detection runs at least twice and at most ten times per second of video when ``every`` adapts.
MIN_DETECT_RATE, MAX_DETECT_RATE = 2.0, 10.0
#: A track is re-embedded at most this often (seconds of video), and only when the face is among its best.
EMBED_INTERVAL = 1.0
#: Longer side of stored thumbnails, pixels.
THUMB_SIDE = 160
#: Frames made ready (grey, cut flag, detections) ahead of the loop.
PREFETCH = 4


@dataclass(frozen=True)
class Prepared:
    """A frame made ready off the main loop: its grey copy as optical flow sees it, whether a shot starts here, and
    the detector's faces when the frame was due for detection (None otherwise), with the seconds the detector took."""

    frame: Frame
    flow: FlowView = field(repr=False)
    cut: bool
    detections: Faces | None
    detect_seconds: float = 0.0
    detect_cpu: float = 0.0  # CPU seconds of this thread in the detector
    prepare_cpu: float = 0.0


_DONE = object()


class Prefetch:
    """Runs ahead of the frame loop in one thread: takes decoded frames from the source (which decodes in its own
    thread), makes their flow views (grey, shrunk), flags shot cuts and runs the detector on the frames due by the cadence, into a
    bounded queue. Detectors that release the GIL (onnxruntime, OpenCV) then overlap the loop's following,
    embedding and drawing on the other core; decoding always does. The loop still detects at once, itself, after it
    loses a face."""

    def __init__(
        self,
        source: FrameSource,
        detect: Callable[[np.ndarray], Faces],
        cadence: Cadence,
        size: int = PREFETCH,
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
                cpu = time.thread_time()
                flow = flow_view(frame.image)
                cut = cuts.is_cut(frame.image)
                prepared = time.thread_time() - cpu
                detections, seconds, detect_cpu = None, 0.0, 0.0
                if cut or self.cadence.due(since):
                    started, cpu = time.perf_counter(), time.thread_time()
                    detections = self.detect(frame.image)
                    seconds, detect_cpu = time.perf_counter() - started, time.thread_time() - cpu
                    since = 0
                else:
                    since = (since or 0) + 1
                if not self._put(Prepared(frame, flow, cut, detections, seconds, detect_cpu, prepared)):
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


@dataclass
class FrameResult(ImageResult):
    """One processed frame, an :class:`ImageResult` of the frame's tracked faces (``faces.track_id``; identity
    ``name`` None unless a gallery named the track, ``person`` its label: the name or ``unknown-N``; liveness and
    analysis columns when those tasks ran), where it is in the video, and the appear/identify/disappear events."""

    index: int = 0
    time: float = 0.0
    detected: bool = False  # the detector ran on this frame
    every: int = 1  # current detection interval in frames
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, with_embedding: bool = False) -> dict[str, Any]:
        return {
            "frame": self.index,
            "time": round(self.time, 3),
            "detected": self.detected,
            "every": self.every,
            **super().to_dict(with_embedding),
            "events": self.events,
        }


def detect_frames(plan: Plan, images: list[np.ndarray]) -> list[Faces]:
    """The engine's detection of in-memory frames (one ``detect_many`` call), one :class:`Faces` per frame."""
    results = run_chunk(plan, images)
    for result in results:
        result.raise_for_error()
    return [result.faces for result in results]


class StageTimes:
    """CPU seconds (of the thread doing it) spent per stage, reported in the timeline's ``stats`` as milliseconds
    per frame: CPU time, not wall time, so that the figures hold on a machine shared with other work."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.thread_time()
        try:
            yield
        finally:
            self.add(stage, time.thread_time() - started)

    def per_frame(self, frames: int) -> dict[str, float]:
        return {stage: round(1000 * s / max(frames, 1), 2) for stage, s in self.seconds.items()}


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
    on construction, so a missing file or an unreachable stream raises :class:`facelens.errors.VideoError` at once.

    Every stage runs through the engine (:mod:`facelens.engine`): detection (``run_chunk`` on the frame),
    embedding, liveness and analysis (``fill_faces`` on the faces kept) and identification
    (:meth:`FaceAnalyzer.identify`, the one threshold policy of ``decide.py``)."""

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
        where: dict[str, Any] | None = None,
        liveness: bool = False,
        analyze: bool = False,
        adapt: str | None = None,
        expression_model: str | None = None,
        blink_signal: str | None = None,
        speed: float | None = None,
        detector: str = DEFAULT_DETECTOR,
        embedder: str | None = None,  # None: the gallery's own model, else the default
        min_hits: int = MIN_HITS,
        max_gap: float = MAX_GAP,
        fps: float | None = None,
        timeout: float = OPEN_TIMEOUT,
        reconnect: int = 5,
        keep_images: bool = False,
    ) -> None:
        from facelens.decide import ThresholdPolicy

        if every is not None and every < 1:
            raise ValueError(f"every must be >= 1 (or None to adapt), got {every}")
        self._own_gallery = isinstance(gallery, (str, os.PathLike))
        if self._own_gallery:
            from facelens.gallery import open_gallery

            gallery = open_gallery(gallery, create=False)
        self.gallery = gallery
        try:
            tasks = ("embed", "identify") if gallery is not None else ("embed",)
            self.engine = FaceAnalyzer(detector=detector, embedder=embedder, tasks=tasks, gallery=gallery, k=1,
                                       where=where, policy=ThresholdPolicy.for_identify(threshold, fpir), workers=1)
            base = self.engine.plan(1)
            self._detect_plan = replace(base, embed=False)
            self._embed_plan = base
            self._liveness_plan: Plan | None = None
            self.liveness_threshold: float | None = None
            if liveness:
                from facelens.liveness.checker import DEFAULT_MODEL, get_checker

                self._liveness_plan = replace(base, embed=False, liveness=(DEFAULT_MODEL, None, None))
                self.liveness_threshold = get_checker(DEFAULT_MODEL).threshold
            # the analysis task's expression head (the analyze package's default model) on every followed face
            if analyze and expression_model is not None:
                from facelens.analyze.expression import expression_model_names

                if expression_model not in expression_model_names():
                    raise ValueError(f"unknown expression model {expression_model!r}; choose from "
                                     f"{', '.join(expression_model_names())}")
            self._analyze_plan = (replace(base, embed=False, heads=("expression",), expression_model=expression_model)
                                  if analyze else None)
            # test-time adaptation of the expression head, one subject per track (facelens.analyze.adapt)
            self._adapter: FaceAnalyzer | None = None
            if adapt is not None:
                if not analyze:
                    raise ValueError("adapt adapts the expression of --analyze: ask for analyze too")
                self._adapter = FaceAnalyzer(tasks=("analyze",), heads=("expression",), adapt=adapt, workers=1,
                                             expression_model=expression_model)
                self._analyze_plan = replace(self._analyze_plan, expression_features=True)
            self.expression_labels: tuple[str, ...] = ()
            self._expressions: dict[int, ExpressionTrack] = {}
            self._blinks = None  # blinks per track with analyze or liveness (facelens.video.blinks)
            if blink_signal is not None and not (analyze or liveness):
                raise ValueError("blink_signal counts blinks for analyze or liveness: ask for one of them too")
            if analyze or liveness:
                from facelens.video.blinks import BlinkCounter

                self._blinks = BlinkCounter(blink_signal)
            self.model_id = self.engine.model_id
            self.threshold: float | None = None
            if gallery is not None:
                gallery.check_model(self.model_id)
                self.threshold = self.engine.threshold()
            self.reid_threshold = ThresholdPolicy.for_verify().threshold(self.model_id)
            if not isinstance(source, (str, os.PathLike)) or not Path(source).exists():
                self._warm()  # a stream does not wait: have the models ready before it opens
            self.source = open_source(source, fps=fps, timeout=timeout, reconnect=reconnect)
            if not self.source.live:  # a file: the embedder loads (~0.35 s) beside the first frames' decoding
                threading.Thread(target=self._warm_embedder, name="warm embedder", daemon=True).start()
        except BaseException:
            self.close()
            raise
        self.every = every
        self.expression_window = 1
        if analyze:  # imported only when asked: it brings in the analysis package
            from facelens.video.expressions import window_frames

            self.expression_window = window_frames(self.source.fps)
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
    def _warm(self) -> None:
        """Load the detector, the landmark model the dlib detectors place their 5 points with, and the embedder."""
        from facelens.engine import _stages

        detector = _stages(self._detect_plan).pipeline.detector
        blank = np.zeros((64, 64, 3), np.uint8)
        detector.detect(blank)
        if detector.name in ("hog", "cnn"):
            from facelens.align import landmarks_68

            landmarks_68(blank, np.array([8, 8, 56, 56], np.float32))
        self._warm_embedder()

    def _warm_embedder(self) -> None:
        """Load the embedder (its session is built once, under its lock, whichever thread asks first). A failure
        here is left to the loop, which raises it where it embeds."""
        from facelens.engine import _stages

        # a face with its 5 landmarks, as the detector gives them (a bare box would load dlib's 68-point model)
        face = DetectedFace(np.array([8, 8, 56, 56], np.float32), 1.0,
                            np.array([[22, 26], [42, 26], [32, 36], [24, 46], [40, 46]], np.float32))
        try:
            _stages(self._embed_plan).pipeline.embedder.embed(np.zeros((64, 64, 3), np.uint8), [face])
        except Exception as exc:  # noqa: BLE001
            log.debug("embedder not warmed: %s", exc)

    def _detect(self, image: np.ndarray) -> Faces:
        return detect_frames(self._detect_plan, [image])[0]

    def _frames(self) -> Generator[FrameResult, None, Timeline]:
        src = self.source
        tracker = Tracker(self.reid_threshold, min_hits=self.min_hits, max_gap=self.max_gap)
        unknowns = UnknownPeople(self.reid_threshold)
        cadence = Cadence(self.every, src.fps, self.speed)
        writer: VideoWriter | None = None
        frames, last_time, error = 0, 0.0, None
        started = time.perf_counter()
        detections_run = embeddings_run = 0
        self._times = times = StageTimes()
        prefetch = Prefetch(src, self._detect, cadence)
        try:
            for item in prefetch:
                tick = time.perf_counter()
                frame, flow = item.frame, item.flow
                image = frame.image
                events: list[dict[str, Any]] = []
                detections, detect_seconds = item.detections, item.detect_seconds
                detect_cpu = item.detect_cpu
                if detections is None and cadence.lost:  # a face was lost on the last frame: look again now
                    detect_started, cpu = time.perf_counter(), time.thread_time()
                    detections = self._detect(image)
                    detect_seconds, detect_cpu = time.perf_counter() - detect_started, time.thread_time() - cpu
                    tick += detect_seconds  # counted once, below
                detect = detections is not None
                confirm = False
                times.add("prepare", item.prepare_cpu)
                if detect:
                    times.add("detect", detect_cpu)
                    detections_run += 1
                    embedded, started_tracks = self._detect_frame(
                        image, flow, detections, frame.index, frame.time, tracker, unknowns, events, cut=item.cut
                    )  # a cut ends the tracks of the shot before (see tracking.ShotCuts)
                    embeddings_run += embedded
                    # a stream drops frames: a face that just appeared is confirmed (or dropped) by a detection on
                    # the next frame, not k frames later, when it may be gone
                    confirm = src.live and started_tracks > 0 and self.min_hits > 1
                else:
                    with times("follow"):
                        followed = tracker.follow(flow, frame.index, frame.time)
                    if not followed:
                        cadence.soon()
                if self._analyze_plan is not None:
                    # every followed face, confirmed or not yet, so that a track's series starts at its first frame
                    followed = [t for t in tracker.tracks if not t.ended and t.following and t.missed <= 1]
                    faces = self._frame_faces(followed)
                    with times("analyze"):
                        self._analyze(image, faces, followed, frame.index, frame.time)
                    faces = faces[np.array([t.shown for t in followed], bool)]
                else:
                    faces = self._frame_faces([t for t in tracker.tracks if t.shown])
                if self._blinks is not None:  # every followed face's eyes, on every frame
                    eyes = [t for t in tracker.tracks if not t.ended and t.following and t.missed <= 1]
                    with times("blinks"):
                        self._blinks.observe(image, self._frame_faces(eyes), [t.id for t in eyes], frame.index,
                                             frame.time)  # fmt: skip
                if self.out is not None:
                    with times("write"):
                        if writer is None:
                            writer = VideoWriter(self.out, src.fps or 25.0, (image.shape[1], image.shape[0]))
                        writer.write(annotate(image, self._drawn(faces)))
                frames += 1
                last_time = frame.time
                cadence.record(detect, time.perf_counter() - tick + detect_seconds)
                if confirm:
                    cadence.soon()
                self.events.extend(events)
                yield FrameResult(
                    src.name, image.shape[1], image.shape[0], faces, image=image if self.keep_images else None,
                    index=frame.index, time=frame.time, detected=detect, every=cadence.every, events=events,
                )  # fmt: skip
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
                "cpu_ms_per_frame": times.per_frame(frames),
            }
            self.timeline = self._timeline(tracker, unknowns, frames, last_time, error or src.error, stats)
            if self.timeline_path is not None:
                self.timeline.save(self.timeline_path)
            self._generator = None  # finished: close() must not close this running generator
            self.close()
        return self.timeline

    def _frame_faces(self, tracks: list[Track]) -> Faces:
        """The shown tracks as the frame's :class:`Faces`: box where the face is now, the last detection's score
        and its landmarks moved with the box, track id, person label, identity and liveness of the track."""
        if not tracks:
            faces = Faces.empty()
            faces.track_id = np.zeros(0, np.int64)
            return faces
        faces = Faces(
            box=np.stack([t.box for t in tracks]),
            score=np.array([t.detection_score for t in tracks], np.float32),
            landmarks=np.stack([t.landmarks_now() for t in tracks]),
        )
        faces.track_id = np.array([t.id for t in tracks], np.int64)
        faces.person = _column([t.label for t in tracks])
        faces.name = _column([t.name for t in tracks])
        if self.gallery is not None:  # without a gallery there is no similarity to show
            faces.identity_score = np.array([t.score for t in tracks], np.float32)
            faces.threshold = np.full(len(tracks), self.threshold or 0.0, np.float32)
        faces.candidates = _column([[] for _ in tracks])
        if self._liveness_plan is not None:
            # a track never checked (the checker failed: its error is on the detections) counts as not live
            faces.liveness_score = np.array([t.liveness or 0.0 for t in tracks], np.float32)
            faces.is_live = np.array([t.is_live is True for t in tracks], bool)
        return faces

    def _analyze(self, image: np.ndarray, faces: Faces, tracks: list[Track], index: int, now: float) -> None:
        """The engine's expression head on this frame's followed faces; each track keeps its probabilities."""
        if not tracks:
            return
        fill_faces(self._analyze_plan, [image], {0: faces})
        if faces.expression is None:  # the head failed: its error is on each face, nothing to add
            return
        from facelens.video.expressions import ExpressionTrack

        self.expression_labels = faces.expression_labels
        series = faces.expression
        if self._adapter is not None:  # the track's series follows the adapted answer; the frame keeps both
            self._adapter.adapt_faces(faces, [t.id for t in tracks])
            series = faces.expression_adapted
        for track, probs in zip(tracks, series):
            self._expressions.setdefault(track.id, ExpressionTrack()).add(index, now, probs)

    def _drawn(self, faces: Faces) -> Faces:
        """What the annotated video shows: each face's expression as the mean of its track's last frames (a
        trailing window, since the video is written as it goes)."""
        if faces.expression is None or not len(faces):
            return faces
        shown = replace(faces, expression=faces.expression.copy())
        for row, track_id in enumerate(faces.track_id):
            series = self._expressions.get(int(track_id))
            if series is not None and len(series):
                shown.expression[row] = series.recent(self.expression_window)
        return shown

    def _embed(self, image: np.ndarray, faces: Faces) -> Faces:
        """Embed these faces of one frame through the engine (one batch)."""
        with self._times("embed"):
            fill_faces(self._embed_plan, [image], {0: faces})
        return faces

    def _detect_frame(
        self,
        image: np.ndarray,
        flow: FlowView,
        found: Faces,
        index: int,
        now: float,
        tracker: Tracker,
        unknowns: UnknownPeople,
        events: list[dict[str, Any]],
        cut: bool = False,
    ) -> tuple[int, int]:
        """Apply one frame's detections (``cut``: the first frame of a new shot); returns the faces embedded and the
        tracks started."""
        from facelens.analyze.quality import assess_quality

        detections = found.detections()

        def embed(indices: list[int]) -> dict[int, Face]:
            sub = self._embed(image, found[indices])
            return {
                i: Face(detection=detections[i], embedding=sub.embedding[j], model_id=self.model_id)
                for j, i in enumerate(indices)
            }

        was_confirmed = {t.id for t in tracker.tracks if t.confirmed}
        with self._times("associate"):
            assoc = tracker.associate(flow, detections, embed, index, now, cut=cut)
        embedded = len(assoc.faces)
        for track, i in assoc.matched:
            track.detection_score = float(found.score[i])
            track.landmarks, track.landmarks_box = found.landmarks[i].copy(), found.box[i].copy()
        if self._liveness_plan is not None:
            self._check_liveness(image, found, assoc.matched)
        # quality of every matched face; embed the ones that would join their track's best faces
        pending: list[tuple[Track, int, float]] = []
        qualities = {}
        with self._times("quality"):
            for _, i in assoc.matched:
                qualities[i] = assess_quality(image, detections[i]).score
        for track, i in assoc.matched:
            quality = qualities[i]
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
            rows = [i for _, i, _ in pending]
            probe = found[rows]
            probe.embedding = np.stack([faces[i].embedding for i in rows]).astype(np.float32)
            probe.model_id = self.model_id
            if self.gallery is not None:
                with self._times("identify"):
                    self.engine.identify([ImageResult("frame", faces=probe)])
            for k, (track, i, quality) in enumerate(pending):
                sample = Sample(
                    face=faces[i],
                    quality=quality,
                    time=now,
                    frame=index,
                    thumbnail=_thumbnail(image, detections[i].box),
                    name=probe.name[k] if probe.name is not None else None,
                    similarity=float(probe.identity_score[k]) if probe.identity_score is not None else 0.0,
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
        return embedded, len(assoc.new)

    def _check_liveness(self, image: np.ndarray, found: Faces, matched: list[tuple[Track, int]]) -> None:
        """Passive liveness of the faces detected in this frame, through the engine; each track keeps its
        scores and is live when their mean clears the checker's threshold."""
        if not matched:
            return
        rows = [i for _, i in matched]
        sub = found[rows]
        with self._times("liveness"):
            fill_faces(self._liveness_plan, [image], {0: sub})
        if sub.liveness_score is None:  # the checker failed (its error is on the faces): the track stays unchecked
            return
        for (track, _), score in zip(matched, sub.liveness_score):
            track.liveness_scores.append(float(score))

    def _decide(self, track: Track, unknowns: UnknownPeople, events: list, index: int, now: float) -> None:
        if not track.confirmed:
            return
        vote = tally(track.samples)
        before = track.label
        name = vote.name
        if name is not None and self.liveness_threshold is not None:
            # a track judged a spoof (or not yet checked) is never named, as in identify --liveness
            live = track.liveness is not None and track.liveness >= self.liveness_threshold
            name = name if live else None
        if name is not None:
            if track.name is None:
                unknowns.release(track)
            track.label = track.name = name
        else:
            track.name = None
            track.label = unknowns.label_for(track)
        track.confidence, track.score = vote.confidence, vote.score
        if self.liveness_threshold is not None and track.liveness is not None:
            track.is_live = track.liveness >= self.liveness_threshold
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
        fps = src.fps or 25.0
        rows: list[TrackRecord] = []
        best: dict[str, tuple[float, np.ndarray]] = {}
        expressions: dict[int, dict[str, Any] | None] = {}
        if self._analyze_plan is not None:
            from facelens.video.expressions import pooled_expression, track_expression
        from facelens.video.blinks import liveness_verdict
        for track in sorted(tracker.reported(), key=lambda t: t.id):
            if track.label is None:  # never embedded (e.g. the video ended right after it appeared)
                continue
            thumb_path = ""
            sample = track.best_sample()
            if sample is not None and self.thumbnails is not None:
                thumb_path = str(self._save_thumb(f"track-{track.id}", sample.thumbnail))
            if sample is not None and sample.quality > best.get(track.label, (-1.0, None))[0]:
                best[track.label] = (sample.quality, sample.thumbnail)
            live = track.liveness
            blinks = self._blinks.record(track.id) if self._blinks is not None else None
            if self._analyze_plan is not None:
                series = self._expressions.get(track.id)
                expressions[track.id] = (
                    track_expression(series, self.expression_labels, fps, self.expression_window) if series else None
                )
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
                    liveness=None if live is None else round(live, 4),
                    is_live=None if live is None or self.liveness_threshold is None
                    else bool(live >= self.liveness_threshold),
                    expression=expressions.get(track.id),
                    blinks=blinks,
                    liveness_verdict=None if self.liveness_threshold is None or live is None
                    else liveness_verdict(bool(live >= self.liveness_threshold), blinks),
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
        people = people_of(rows, embeddings, person_thumbs)
        video_expression = None
        if self._analyze_plan is not None:
            labels = self.expression_labels
            by_person = {}
            for row in rows:
                by_person.setdefault(row.person, []).append((row.track, row.expression))
            people = [replace(p, expression=pooled_expression(by_person[p.person], labels, fps)) for p in people]
            video_expression = pooled_expression([(r.track, r.expression) for r in rows], labels, fps)
        fps = src.fps or 0.0
        duration = frames / fps if fps and not src.live else last_time
        return Timeline(
            source=src.name,
            fps=round(fps, 3),
            frames=frames,
            duration=round(duration, 3),
            tracks=rows,
            people=people,
            model_id=self.model_id,
            complete=error is None,
            error=error,
            stats=stats,
            expression=video_expression,
        )

    def _save_thumb(self, stem: str, image: np.ndarray) -> Path:
        assert self.thumbnails is not None
        self.thumbnails.mkdir(parents=True, exist_ok=True)
        path = self.thumbnails / f"{_safe_name(stem)}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return path


def annotate(image: np.ndarray, faces: Faces) -> np.ndarray:
    """The frame with each tracked face drawn by the one annotator (:func:`facelens.draw.draw_faces`): box,
    person label, identity score, track id, and what the other tasks found."""
    from facelens.draw import draw_faces

    if not len(faces):
        return image
    return draw_faces(image, faces)


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
    ``where`` (metadata filter on the gallery's people), ``liveness`` (passive liveness per track; a spoof is never
    named; with the blinks seen over the track it gives ``liveness_verdict``, see :mod:`facelens.video.blinks`), ``analyze`` (expression on every frame of every track: smoothed, summarised and spotted as episodes per
    track, person and video, see :mod:`facelens.video.expressions`), ``adapt`` (with ``analyze``: adapt the
    expression head to each track at test time, by name: ``shot``, ``balanced``, ``cache``, ``t3a`` or ``tent``, see :mod:`facelens.analyze.adapt`), ``expression_model`` (by name; default the library's), ``blink_signal`` (with
    ``analyze``/``liveness``: the eye signal blinks per track are counted in, ``blendshapes`` or ``ear``; default
    :func:`facelens.liveness.active.default_signal`), ``speed`` (target multiple of real time), ``detector``, ``embedder`` (default: the gallery's own model),
    ``min_hits``, ``max_gap``,
    ``fps`` (for image sequences), ``timeout`` (stream open), ``reconnect`` (attempts after a stream drops),
    ``keep_images`` (keep each frame's image on its result).

    Iterate the returned :class:`VideoRun` for per-frame results; its ``timeline`` (also the generator's return
    value) is ready when iteration ends, or call ``.run()`` to get it directly.
    """
    return VideoRun(source, gallery, every, **options)
