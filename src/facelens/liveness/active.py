"""Active liveness over a short clip: eye blinks and head movement of the main face.

A blink is found in a per-frame *eye-openness* series, by one algorithm (:func:`find_blinks`) whatever signal gave
the series. Signals by name (:data:`SIGNALS`):

- ``ear``: the eye aspect ratio (EAR, Soukupová & Čech 2016) on dlib's 68 landmarks,
  ``EAR = (|p2−p6| + |p3−p5|) / (2·|p1−p4|)`` per eye, averaged over both eyes;
- ``blendshapes``: 1 − the mean of MediaPipe Face Landmarker's ``eyeBlinkLeft`` and ``eyeBlinkRight`` scores
  (:mod:`facelens.analyze.blendshapes`, LiteRT), so that it too is high when the eyes are open;
- ``eye_state``: the mean P(open) of the two eyes by Open Model Zoo's open/closed-eye classifier on eye crops placed
  by dlib's 68 landmarks (:mod:`facelens.liveness.eye_state`, onnxruntime).

An open eye holds a roughly constant openness that differs between people (and, for blendshapes, with gaze: a face
looking down scores 0.3-0.6 "blink" with open eyes), so a blink is measured *relative to the face's own open-eye
level* (the clip's 80th percentile): a run of frames below ``drop`` × that level, at most ``MAX_BLINK_S`` long,
framed by frames back above ``reopen`` × the level. For EAR Soukupová & Čech's fixed threshold 0.2 against a
typical open EAR of about 0.3 is the same ~2/3 ratio, and the same ratios serve the other signals (a sweep of
them changes no ranking). Which signal is the default, and why, is measured by ``benchmarks/liveness.py --blinks``
(see :data:`DEFAULT_SIGNAL`).

Head movement: the nose tip's offset from the eye midpoint divided by the inter-ocular distance is a scale-free
yaw/pitch proxy; its range over the clip (``pose_range``) is what a rotating head changes and a moved flat photo
barely does. Box-centre travel over the face size (``translation``) is reported too (both from dlib's 68 landmarks,
whatever the blink signal).

Decision: live when at least ``min_blinks`` blinks are seen. A still photo has none; motion is evidence that is
reported, not a pass by itself (a photo waved in front of the camera moves too).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facelens.detect import DEFAULT_DETECTOR
from facelens.errors import NoFaceError, VideoError
from facelens.types import DetectedFace

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger(__name__)

#: Per-frame eye-openness signals a blink can be found in (see the module docstring).
SIGNALS = ("ear", "blendshapes", "eye_state")
#: Fraction of the open-eye EAR under which the eye counts as closed (see module docstring).
BLINK_DROP = 2 / 3
#: Longest closure that still counts as a blink (voluntary closures and tracking drop-outs are longer).
MAX_BLINK_S = 0.5
#: Box overlap a face needs to continue across a shot cut (see follow_main_face).
CUT_MIN_IOU = 0.7
#: Shortest: a blink closes the eye for 100-400 ms, so a dip seen in one frame of a 30 fps clip (33 ms) is landmark
#: jitter, not a blink (on short_hamilton_clip.mp4, CenterFace boxes give one such frame at 4.0 s). A closure spans
#: its frames times the frame interval; at 20 fps or less one frame is enough.
MIN_BLINK_S = 0.05
#: The frames around a closure must be back at this fraction of the open-eye level (hysteresis against jitter).
REOPEN = 0.85
#: The signal used when none is named, if its runtime (LiteRT) is installed, else ``ear``: on the annotated clips of
#: ``benchmarks/liveness.py --blinks`` it finds 16 of 26 blinks against EAR's 12, with no false blink from either;
#: ``eye_state`` finds 17 but also 2 false blinks (every signal with the same BLINK_DROP and REOPEN ratios; the
#: figures and a sweep of them are in that script's docstring).
DEFAULT_SIGNAL = "blendshapes"
_RIGHT_EYE = slice(36, 42)
_LEFT_EYE = slice(42, 48)


def read_frames(
    path: str | Path, max_fps: float = 30.0, max_seconds: float = 30.0
) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame index, timestamp s, RGB frame) from a video file, sampled to at most ``max_fps`` (read through
    ``facelens.io.video``, so every source it accepts works here too)."""
    from facelens.io.video import open_source

    try:
        source = open_source(path)
    except VideoError as exc:
        raise VideoError(f"cannot open video: {exc}") from exc
    step = max(1, round(source.fps / max_fps)) if source.fps and not source.live else 1
    count = 0
    with source:
        for frame in source:
            if frame.time > max_seconds:
                break
            if frame.index % step == 0:
                count += 1
                yield frame.index, frame.time, frame.image
    if count == 0:
        raise VideoError(source.error or f"video {path} has no readable frames")


def eye_aspect_ratio(points68: np.ndarray) -> float:
    """Mean EAR of both eyes from 68 iBUG landmarks."""

    def ear(eye: np.ndarray) -> float:
        vertical = np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])
        return float(vertical / (2.0 * max(np.linalg.norm(eye[0] - eye[3]), 1e-6)))

    return (ear(points68[_RIGHT_EYE]) + ear(points68[_LEFT_EYE])) / 2.0


def pose_proxy(points68: np.ndarray) -> np.ndarray:
    """Nose tip offset from the eye midpoint in inter-ocular units (x ≈ yaw, y ≈ pitch)."""
    right, left = points68[_RIGHT_EYE].mean(axis=0), points68[_LEFT_EYE].mean(axis=0)
    iod = max(float(np.linalg.norm(left - right)), 1e-6)
    return (points68[30] - (right + left) / 2.0) / iod


def find_blinks(
    times: np.ndarray,
    openness: np.ndarray,
    drop: float = BLINK_DROP,
    max_s: float = MAX_BLINK_S,
    reopen: float = REOPEN,
    frames: np.ndarray | None = None,
) -> list[dict]:
    """Blinks as {start, end, min_openness} (seconds; with ``frames``, also start_frame/end_frame) from an
    eye-openness series of any signal (NaN = face not followed or not measured in that frame).

    A blink is a run of frames below ``drop`` × the open-eye level, at least ``MIN_BLINK_S`` and no longer than
    ``max_s``, with the frames just before and just after it open again (≥ ``reopen`` × the level): a closure has
    to be seen to close *and* reopen, so a face that looks down or drifts in and out of focus does not count."""
    openness = np.asarray(openness, np.float64)
    valid = ~np.isnan(openness)
    if valid.sum() < 3:
        return []
    open_level = float(np.percentile(openness[valid], 80))
    closed = valid & (openness < drop * open_level)
    is_open = valid & (openness >= reopen * open_level)
    interval = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    blinks, i, n = [], 0, len(openness)
    while i < n:
        if not closed[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and closed[j + 1]:
            j += 1
        framed = i > 0 and is_open[i - 1] and j + 1 < n and is_open[j + 1]
        if framed and (j - i + 1) * interval >= MIN_BLINK_S and times[j] - times[i] <= max_s:
            blink = {
                "start": round(float(times[i]), 3),
                "end": round(float(times[j]), 3),
                "min_openness": round(float(openness[i : j + 1].min()), 3),
            }
            if frames is not None:
                blink.update(start_frame=int(frames[i]), end_frame=int(frames[j]))
            blinks.append(blink)
        i = j + 1
    return blinks


def default_signal() -> str:
    """:data:`DEFAULT_SIGNAL` when its optional runtime and model are there, else ``ear`` (the result names the
    signal used, and the reason is logged)."""
    from facelens.errors import ModelUnavailableError

    try:
        return check_signal(DEFAULT_SIGNAL)
    except ModelUnavailableError as exc:
        log.warning("blink signal: ear instead of %s (%s)", DEFAULT_SIGNAL, exc)
        return "ear"


def check_signal(signal: str | None) -> str:
    """The signal's name, or a ``ValueError`` naming the choices; the signal's optional runtime (LiteRT for
    blendshapes) and model file are checked here too (:class:`~facelens.errors.ModelUnavailableError`), before any
    frame is read. None: :func:`default_signal`."""
    if signal is None:
        return default_signal()
    if signal not in SIGNALS:
        raise ValueError(f"unknown blink signal {signal!r}; choose from {', '.join(SIGNALS)}")
    if signal == "blendshapes":
        from facelens.analyze.blendshapes import require_litert
        from facelens.models.registry import model_path

        require_litert()
        model_path("mediapipe_face_landmarker")
    elif signal == "eye_state":
        from facelens.liveness.models import EYE_STATE
        from facelens.models.registry import resolve_file

        resolve_file(EYE_STATE.files[0])
    return signal


def eye_openness(
    signal: str, image: np.ndarray, faces: Sequence[DetectedFace], points68: Sequence[np.ndarray] | None = None
) -> np.ndarray:
    """[n] eye openness of these faces of one RGB frame by the named signal (higher = more open): EAR from dlib's
    68 landmarks (``points68`` when already placed, else fitted in the box), 1 − mean(eyeBlinkLeft,
    eyeBlinkRight) of the blendshape model, or the eye-state model's mean P(open) on crops placed by those 68
    landmarks."""
    if signal not in SIGNALS:
        raise ValueError(f"unknown blink signal {signal!r}; choose from {', '.join(SIGNALS)}")
    if not len(faces):
        return np.zeros(0, np.float64)
    if signal == "blendshapes":
        from facelens.analyze.blendshapes import BLENDSHAPES, get_blendshape_model

        scores = get_blendshape_model().scores(image, faces)
        eyes = [BLENDSHAPES.index("eyeBlinkLeft"), BLENDSHAPES.index("eyeBlinkRight")]
        return 1.0 - scores[:, eyes].mean(axis=1).astype(np.float64)
    if points68 is None:
        from facelens.align import landmarks_68

        points68 = [f.landmarks68 if f.landmarks68 is not None else landmarks_68(image, f.box) for f in faces]
    if signal == "eye_state":
        from facelens.liveness.eye_state import get_eye_state_model

        return get_eye_state_model().open_probability(image, points68).mean(axis=1).astype(np.float64)
    return np.array([eye_aspect_ratio(p) for p in points68], np.float64)


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(0.0, float(x2 - x1)) * max(0.0, float(y2 - y1))
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def follow_main_face(
    frames: list, detections: list[list[DetectedFace]], min_iou: float = 0.3
) -> list[DetectedFace | None]:
    """The longest run of one face through the clip: faces are linked frame to frame by box overlap
    (IoU ≥ ``min_iou``; a one-frame detection miss is bridged) within a shot, and the longest chain is kept. Other
    frames get ``None``, so a cut to another person or a second face never mixes into one EAR series. Overlap alone
    does not see a cut: on short_hamilton_clip.mp4 a face in the audience after the last cut overlaps the singer's
    box by IoU 0.45, while faces walking through facenet-pytorch's crowd clip link at 0.36. So across a shot cut
    (grey-histogram change, :class:`facelens.video.process.ShotCuts`) a link needs ``CUT_MIN_IOU``: the face must
    stay where it was, as in a clip spliced from photos of one framing (the blink test's two photos: IoU 0.81)."""
    from facelens.video.process import ShotCuts

    cuts = ShotCuts()
    cut = [cuts.is_cut(_gray(frame)) for _, frame in frames]
    best: list[DetectedFace | None] = [None] * len(frames)
    best_len = 0
    for start in range(len(frames)):
        for seed in detections[start]:
            # only start chains that are not the continuation of an earlier chain
            need = CUT_MIN_IOU if cut[start] else min_iou
            if start > 0 and any(_iou(seed.box, d.box) >= need for d in detections[start - 1]):
                continue
            chain: list[DetectedFace | None] = [None] * len(frames)
            chain[start], last, misses, length = seed, seed, 0, 1
            for k in range(start + 1, len(frames)):
                need = CUT_MIN_IOU if cut[k] else min_iou
                match = max(detections[k], key=lambda d: _iou(last.box, d.box), default=None)
                if match is not None and _iou(last.box, match.box) >= need:
                    chain[k], last, misses, length = match, match, 0, length + 1
                else:
                    misses += 1
                    if misses > 1 or cut[k]:  # a miss is bridged within a shot only
                        break
            if length > best_len:
                best, best_len = chain, length
    return best


@dataclass(frozen=True)
class ActiveResult:
    """Evidence from a clip: blink times (by ``signal``), the open-eye level of that signal, movement, and the
    decision."""

    is_live: bool
    blinks: list[dict]
    frames: int
    frames_with_face: int
    open_level: float
    pose_range: float
    translation: float
    duration_s: float
    signal: str = "ear"
    series: dict = field(default_factory=dict, repr=False)

    def to_dict(self, with_series: bool = False) -> dict:
        out = {
            "is_live": self.is_live,
            "signal": self.signal,
            "blinks": self.blinks,
            "blink_count": len(self.blinks),
            "frames": self.frames,
            "frames_with_face": self.frames_with_face,
            "open_level": round(self.open_level, 3),
            "pose_range": round(self.pose_range, 3),
            "translation": round(self.translation, 3),
            "duration_s": round(self.duration_s, 2),
        }
        if with_series:
            out["series"] = self.series
        return out


def check_clip(
    path: str | Path,
    detector: str = DEFAULT_DETECTOR,
    max_fps: float = 30.0,
    max_seconds: float = 30.0,
    min_blinks: int = 1,
    signal: str | None = None,
) -> ActiveResult:
    """Follow the largest face through the clip, measure its eye openness per frame by ``signal`` (see
    :data:`SIGNALS`; None: :func:`default_signal`), and count blinks and movement."""
    from facelens.align import landmarks_68
    from facelens.engine import models

    signal = check_signal(signal)
    det = models(detector=detector).detector
    frames = list(read_frames(path, max_fps, max_seconds))
    track = follow_main_face([(t, f) for _, t, f in frames], [det.detect(f) for _, _, f in frames])
    indices, times, openness, poses, centres, sizes = [], [], [], [], [], []
    for (index, t, frame), face in zip(frames, track):
        indices.append(index)
        times.append(t)
        if face is None:
            openness.append(np.nan)
            continue
        pts = face.landmarks68 if face.landmarks68 is not None else landmarks_68(frame, face.box)
        openness.append(float(eye_openness(signal, frame, [face], [pts])[0]))
        poses.append(pose_proxy(pts))
        centres.append((face.box[:2] + face.box[2:]) / 2.0)
        sizes.append(max(face.width, face.height))
    t_arr, o_arr = np.array(times), np.array(openness, dtype=np.float64)
    found = int((~np.isnan(o_arr)).sum())
    if not found:
        raise NoFaceError(f"{path}: no face found in any of {len(times)} sampled frames")
    blinks = find_blinks(t_arr, o_arr, frames=np.array(indices))
    pose_arr = np.array(poses)
    pose_range = float(np.linalg.norm(np.percentile(pose_arr, 95, axis=0) - np.percentile(pose_arr, 5, axis=0)))
    c = np.array(centres)
    translation = float(np.linalg.norm(c.max(axis=0) - c.min(axis=0)) / np.median(sizes))
    valid = o_arr[~np.isnan(o_arr)]
    return ActiveResult(
        is_live=len(blinks) >= min_blinks,
        blinks=blinks,
        frames=len(times),
        frames_with_face=found,
        open_level=float(np.percentile(valid, 80)),
        pose_range=pose_range,
        translation=translation,
        duration_s=float(t_arr[-1]) if len(t_arr) else 0.0,
        signal=signal,
        series={
            "frame": indices,
            "t": np.round(t_arr, 3).tolist(),
            "openness": [None if np.isnan(v) else round(float(v), 4) for v in o_arr],
        },
    )
