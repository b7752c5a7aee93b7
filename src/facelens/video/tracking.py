"""Face tracks: follow faces between detections and associate new detections to tracks.

SORT/ByteTrack-style association, in two stages per detection frame:

1. detections are matched to the tracks' current boxes by IoU (Hungarian assignment, ``scipy``'s
   ``linear_sum_assignment``, gated at ``min_iou``);
2. detections left over are embedded and matched to the tracks left over (including tracks not seen for a while)
   by embedding similarity, gated at the embedding model's measured verification threshold; this re-attaches a face
   after an occlusion or a fast move that IoU cannot bridge.

Between detection frames each track's box is followed by dlib's correlation tracker (DSST) on the grey frame, a few
milliseconds per face. A track is *confirmed* after ``min_hits`` detections (a one-off false detection never
becomes a track) and *ends* when no detection has matched it for ``max_gap`` seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dlib
import numpy as np
from scipy.optimize import linear_sum_assignment

from facelens.types import DetectedFace, Face

#: Detections overlapping a track's followed box less than this are not the same face by position (SORT's value).
MIN_IOU = 0.3
#: Detections a track needs before it is reported (SORT's min_hits): drops one-off false detections.
MIN_HITS = 2
#: Seconds without a matching detection after which a track ends.
MAX_GAP = 1.0
#: Correlation-tracker peak-to-sidelobe ratio under which the followed face is lost. Measured on
#: short_hamilton_clip.mp4: inside a shot the PSR of a followed face stays >= 11; on the first frame after each of the
#: clip's three cuts it is <= 4.4 (then climbs back as the tracker locks onto whatever is there).
MIN_PSR = 7.0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a [n, 4] and b [m, 4] (x1, y1, x2, y2)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def assign(score: np.ndarray, minimum: float) -> list[tuple[int, int]]:
    """Maximum-total-score one-to-one pairs (row, col) whose score is at least ``minimum``."""
    if score.size == 0:
        return []
    rows, cols = linear_sum_assignment(-score)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if score[r, c] >= minimum]


@dataclass
class Sample:
    """One embedded face of a track: the evidence identity votes on."""

    face: Face
    quality: float
    time: float
    frame: int
    thumbnail: np.ndarray = field(repr=False)
    name: str | None = None  # the gallery's open-set answer for this face
    similarity: float = 0.0


@dataclass
class Track:
    id: int
    box: np.ndarray
    first_frame: int
    first_time: float
    last_frame: int
    last_time: float
    hits: int = 1
    frames: int = 1  # frames in which the face was visible (detected or followed)
    missed: int = 0  # detection frames since the last match
    last_detected: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    last_embedded: float = -1e9
    label: str | None = None  # person label shown: a gallery name, unknown-N, or None while undecided
    name: str | None = None  # the gallery name, when identified
    confidence: float = 0.0
    score: float = 0.0  # mean similarity of the winning votes to the gallery
    confirmed: bool = False
    ended: bool = False
    following: bool = True  # False once the follower lost the face (scene cut, occlusion) until re-detected
    detection_score: float = 0.0  # the detector's score at the last detection
    landmarks: np.ndarray | None = field(default=None, repr=False)  # the last detection's 5 landmarks
    landmarks_box: np.ndarray | None = field(default=None, repr=False)  # ...and its box
    liveness_scores: list[float] = field(default_factory=list)  # passive liveness of each checked face
    is_live: bool | None = None
    follower: dlib.correlation_tracker | None = field(default=None, repr=False)

    @property
    def visible(self) -> bool:
        """Seen at the last detection frame and followed since."""
        return not self.ended and self.missed == 0 and self.following

    @property
    def shown(self) -> bool:
        """Still drawn and followed: one missed detection is tolerated (detectors miss turned or blurred faces)."""
        return not self.ended and self.missed <= 1 and self.confirmed and self.following

    def template(self) -> np.ndarray | None:
        """Quality-weighted mean of the track's embeddings, L2-normalised (template pooling)."""
        if not self.samples:
            return None
        weights = np.array([max(s.quality, 0.05) for s in self.samples])
        vec = (np.stack([s.face.embedding for s in self.samples]) * weights[:, None]).sum(axis=0)
        return vec / max(float(np.linalg.norm(vec)), 1e-12)

    @property
    def liveness(self) -> float | None:
        """Mean passive-liveness score over the track's checked faces (None: never checked)."""
        return float(np.mean(self.liveness_scores)) if self.liveness_scores else None

    def landmarks_now(self) -> np.ndarray:
        """The last detection's landmarks carried to where the box is now (same offset and scale in the box)."""
        if self.landmarks is None or self.landmarks_box is None:
            return np.zeros((5, 2), np.float32)
        old, new = self.landmarks_box, self.box
        scale = np.array([(new[2] - new[0]) / max(old[2] - old[0], 1e-6), (new[3] - new[1]) / max(old[3] - old[1], 1e-6)])
        return ((self.landmarks - old[:2]) * scale + new[:2]).astype(np.float32)

    def best_sample(self) -> Sample | None:
        return max(self.samples, key=lambda s: s.quality, default=None)

    def follow_start(self, gray: np.ndarray, box: np.ndarray) -> None:
        h, w = gray.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in box)
        x1, y1 = max(0.0, x1), max(0.0, y1)
        x2, y2 = min(float(w - 1), x2), min(float(h - 1), y2)
        self.box = np.array([x1, y1, x2, y2], np.float32)
        if x2 - x1 < 4 or y2 - y1 < 4:
            self.follower = None
            return
        self.follower = dlib.correlation_tracker()
        self.follower.start_track(gray, dlib.drectangle(x1, y1, x2, y2))

    def follow(self, gray: np.ndarray) -> bool:
        """Move the box with the face; False (and the track stops following) when the face is lost."""
        if self.follower is None:
            return True
        psr = self.follower.update(gray)
        if psr < MIN_PSR:
            self.following = False
            self.follower = None
            return False
        p = self.follower.get_position()
        self.box = np.array([p.left(), p.top(), p.right(), p.bottom()], np.float32)
        return True


@dataclass(frozen=True)
class Association:
    """What one detection frame did: (track, detection index) for every detection (new tracks included), the
    tracks started and ended, and the detections' embeddings computed on the way (by detection index)."""

    matched: list[tuple[Track, int]]
    new: list[Track]
    ended: list[Track]
    faces: dict[int, Face]


class Tracker:
    """Holds the live tracks of one video and applies detections to them (see the module docstring)."""

    def __init__(
        self, reid_threshold: float, min_iou: float = MIN_IOU, min_hits: int = MIN_HITS, max_gap: float = MAX_GAP
    ) -> None:
        self.reid_threshold = reid_threshold
        self.min_iou = min_iou
        self.min_hits = min_hits
        self.max_gap = max_gap
        self.tracks: list[Track] = []
        self._next_id = 1

    def follow(self, gray: np.ndarray, frame: int, time: float) -> bool:
        """Move every followed track's box to where the face went in this frame. Returns False when a face was
        lost (the caller should detect again soon: a scene cut or an occlusion)."""
        ok = True
        for track in self.tracks:
            if not track.ended and track.missed <= 1 and track.following:
                ok = track.follow(gray) and ok
            if track.visible:
                track.frames += 1
                track.last_frame, track.last_time = frame, time
        return ok

    def associate(
        self,
        gray: np.ndarray,
        detections: list[DetectedFace],
        embed: Callable[[list[int]], dict[int, Face]],
        frame: int,
        time: float,
    ) -> Association:
        """Apply one frame's detections. ``embed(indices) -> {index: Face}`` embeds the detections a stage needs."""
        live = [t for t in self.tracks if not t.ended]
        boxes = np.array([d.box for d in detections], np.float32).reshape(-1, 4)
        pairs = assign(iou_matrix([t.box for t in live], boxes), self.min_iou) if live else []
        matched = [(live[r], c) for r, c in pairs]
        used_tracks = {id(t) for t, _ in matched}
        used_dets = {c for _, c in matched}
        rest = [i for i in range(len(detections)) if i not in used_dets]
        faces = embed(rest) if rest else {}
        candidates = [t for t in live if id(t) not in used_tracks and t.samples]
        if rest and candidates:
            templates = np.stack([t.template() for t in candidates])
            vectors = np.stack([faces[i].embedding for i in rest])
            for r, c in assign(templates @ vectors.T, self.reid_threshold):
                matched.append((candidates[r], rest[c]))
                used_dets.add(rest[c])
                used_tracks.add(id(candidates[r]))
        for track, index in matched:
            track.follow_start(gray, detections[index].box)
            track.following = True
            track.hits += 1
            track.frames += 1
            track.missed = 0
            track.last_detected = time
            track.last_frame, track.last_time = frame, time
            track.confirmed = track.confirmed or track.hits >= self.min_hits
        new = []
        for index in range(len(detections)):
            if index in used_dets:
                continue
            track = Track(
                id=self._next_id,
                box=detections[index].box.copy(),
                first_frame=frame,
                first_time=time,
                last_frame=frame,
                last_time=time,
                last_detected=time,
                confirmed=self.min_hits <= 1,
            )
            self._next_id += 1
            track.follow_start(gray, detections[index].box)
            self.tracks.append(track)
            new.append(track)
            matched.append((track, index))
        ended = []
        for track in live:
            if id(track) in used_tracks:
                continue
            if track in new:
                continue
            track.missed += 1
            if time - track.last_detected > self.max_gap:
                track.ended = True
                ended.append(track)
        # tentative tracks that never got a second detection are forgotten
        self.tracks = [t for t in self.tracks if not (t.ended and not t.confirmed)]
        return Association(matched=matched, new=new, ended=[t for t in ended if t.confirmed], faces=faces)

    def finish(self) -> list[Track]:
        """End every track still open (end of video); returns the confirmed ones just ended."""
        out = []
        for track in self.tracks:
            if not track.ended:
                track.ended = True
                if track.confirmed:
                    out.append(track)
        self.tracks = [t for t in self.tracks if t.confirmed]
        return out

    def reported(self) -> list[Track]:
        return [t for t in self.tracks if t.confirmed]
