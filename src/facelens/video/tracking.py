"""Face tracks: follow faces between detections and associate new detections to tracks.

SORT/ByteTrack-style association, in two stages per detection frame:

1. detections are matched to the tracks' current boxes by IoU (Hungarian assignment, :func:`assign`, gated at
   ``min_iou``);
2. detections left over are embedded and matched to the tracks left over (including tracks not seen for a while)
   by embedding similarity, gated at the embedding model's measured verification threshold; this re-attaches a face
   after an occlusion or a fast move that IoU cannot bridge.

Between detection frames each track's box is followed by median flow (Kalal et al. 2010, "Forward-backward error"):
a grid of points in the box is tracked with pyramidal Lucas-Kanade optical flow (OpenCV) on the grey frame scaled
down to :data:`FLOW_SIDE` pixels, forward and back; the points that come back to where they started (forward-backward
error at most the median) move the box by their median displacement and scale it by the median change of their
pairwise distances. All tracks' points go through one ``calcOpticalFlowPyrLK`` call per direction, so the cost
(1.3-1.9 CPU ms per frame for one face at 640 px on a loaded machine, ``benchmarks/video.py``) is mostly shared
by every face, and OpenCV releases the GIL while it runs; dlib's correlation tracker, used before, took ~3 CPU ms
per face per frame in the same runs and holds the GIL. A face whose
points do not come back (a cut, an occlusion) is lost, and the caller detects again. A track is *confirmed* after
``min_hits`` detections (a one-off false detection never becomes a track) and *ends* when no detection has matched
it for ``max_gap`` seconds, or at a shot cut (:class:`ShotCuts`, ``associate(..., cut=True)``): on the first frame of
a new shot a track continues only onto a face where its own was (IoU at least ``CUT_MIN_IOU``: the same framing, as
in a jump cut or a clip spliced from photos of one sitting, IoU 0.81 in the blink tests), never by embedding, and
every other track ends. On short_hamilton_clip.mp4 an audience face after the last cut overlaps the singer's last
box by IoU 0.45: before cuts ended tracks, his track and name carried over onto it. The people of the video
(``video.identity``) still join the tracks of one face across shots by their embeddings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np

from facelens.types import DetectedFace, Face

#: Detections overlapping a track's followed box less than this are not the same face by position (SORT's value).
MIN_IOU = 0.3
#: Detections a track needs before it is reported (SORT's min_hits): drops one-off false detections.
MIN_HITS = 2
#: Seconds without a matching detection after which a track ends.
MAX_GAP = 1.0
#: Longer side (pixels) of the grey frame optical flow runs on.
FLOW_SIDE = 640
#: Points per side of the grid followed in each box.
FLOW_GRID = 6
#: A followed face is lost when fewer than this share of its points come back ...
MIN_FLOW_POINTS = 0.5
#: ... or when the median forward-backward error of its points exceeds this many pixels (at FLOW_SIDE). Measured
#: with HOG boxes followed between detections: inside a shot the per-face median error has its 99th percentile at
#: 0.17-0.24 px on short_hamilton_clip.mp4 and 0.93 px on the 1080p facenet clip (at most 1.88 px, the walker turning);
#: across each cut of the Hamilton clip the points do not come back at all (no valid flow).
MAX_FB_ERROR = 2.0
#: Mean absolute HSV difference between consecutive frames (PySceneDetect's ``detect-content`` score, on 0-255
#: channels, OpenCV's hue 0-179) at or above which a new shot starts: PySceneDetect's default threshold. Measured
#: at CUT_SIDE: the three cuts of short_hamilton_clip.mp4 (frames 20, 82, 211) score 47.9-55.5 and its other
#: frame pairs at most 19.9 (median 6.9); the single-shot 1080p facenet clip at most 8.0.
CUT_THRESHOLD = 27.0
#: The same on grey frames (intensity only), where cuts score less: 28.6-31.3 at the Hamilton clip's cuts, at most
#: 14.3 elsewhere in it and 12.2 in the facenet clip.
GREY_CUT_THRESHOLD = 20.0
#: Overlap a face needs to continue its track across a shot cut (liveness.active uses the same rule).
CUT_MIN_IOU = 0.7
#: Longer side (pixels) of the small copy of every frame the cut score is computed on.
CUT_SIDE = 160
_LK = dict(winSize=(15, 15), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))


def flow_scale(shape: tuple[int, ...]) -> float:
    """Factor from frame pixels to the optical-flow image's pixels."""
    return min(1.0, FLOW_SIDE / max(shape[:2]))


def flow_image(gray: np.ndarray) -> np.ndarray:
    """The grey frame as optical flow sees it (longer side at most FLOW_SIDE)."""
    scale = flow_scale(gray.shape)
    if scale >= 1.0:
        return gray
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


class FlowView(NamedTuple):
    """A frame as median flow sees it: its grey image shrunk to at most FLOW_SIDE (``image``), the frame's own
    ``shape`` and the factor between the two. Made once per frame, where it costs the loop nothing (the video
    loop's prefetch thread: the shrink alone is ~2 CPU ms of a 1080p frame)."""

    image: np.ndarray
    shape: tuple[int, ...]
    scale: float


def flow_view(frame: np.ndarray | FlowView) -> FlowView:
    """The :class:`FlowView` of a grey or RGB frame (a view is returned as it is)."""
    if isinstance(frame, FlowView):
        return frame
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return FlowView(flow_image(gray), gray.shape[:2], flow_scale(gray.shape))


def _grid(box: np.ndarray) -> np.ndarray:
    """FLOW_GRID² points over the inner part of a box (the face, not the background at its edges)."""
    x1, y1, x2, y2 = box
    mx, my = 0.15 * (x2 - x1), 0.15 * (y2 - y1)
    xs = np.linspace(x1 + mx, x2 - mx, FLOW_GRID)
    ys = np.linspace(y1 + my, y2 - my, FLOW_GRID)
    return np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)


def median_flow(prev: np.ndarray, cur: np.ndarray, boxes: list[np.ndarray]) -> list[tuple[np.ndarray | None, float]]:
    """Each box (in flow-image pixels) moved from ``prev`` to ``cur`` by median flow, with the median
    forward-backward error of its points; None where the face was lost."""
    if not boxes:
        return []
    points = np.concatenate([_grid(b) for b in boxes]).reshape(-1, 1, 2)
    ahead, ok_a, _ = cv2.calcOpticalFlowPyrLK(prev, cur, points, None, **_LK)
    back, ok_b, _ = cv2.calcOpticalFlowPyrLK(cur, prev, ahead, None, **_LK)
    fb = np.linalg.norm((points - back).reshape(-1, 2), axis=1)
    ok = (ok_a.ravel() == 1) & (ok_b.ravel() == 1) & np.isfinite(fb)
    n = FLOW_GRID * FLOW_GRID
    out: list[tuple[np.ndarray | None, float]] = []
    for k, box in enumerate(boxes):
        rows = slice(k * n, (k + 1) * n)
        good, err = ok[rows], fb[rows]
        if good.sum() < MIN_FLOW_POINTS * n:
            out.append((None, float("inf")))
            continue
        median_err = float(np.median(err[good]))
        keep = good & (err <= median_err)
        if median_err > MAX_FB_ERROR or keep.sum() < 2:
            out.append((None, median_err))
            continue
        p0, p1 = points[rows].reshape(-1, 2)[keep], ahead[rows].reshape(-1, 2)[keep]
        shift = np.median(p1 - p0, axis=0)
        i, j = np.triu_indices(len(p0), 1)
        d0 = np.linalg.norm(p0[i] - p0[j], axis=1)
        d1 = np.linalg.norm(p1[i] - p1[j], axis=1)
        scale = float(np.median(d1[d0 > 1e-3] / d0[d0 > 1e-3])) if (d0 > 1e-3).any() else 1.0
        cx, cy = (box[0] + box[2]) / 2 + shift[0], (box[1] + box[3]) / 2 + shift[1]
        hw, hh = scale * (box[2] - box[0]) / 2, scale * (box[3] - box[1]) / 2
        out.append((np.array([cx - hw, cy - hh, cx + hw, cy + hh], np.float32), median_err))
    return out


class ShotCuts:
    """Flags the first frame of a new shot, as PySceneDetect's content detector does: the mean absolute difference
    of hue, saturation and value between consecutive frames (a grey frame: of its intensity), on a small copy of the
    frame, at or above the threshold. 0.1 CPU ms a 640×360 frame, 0.25 a 1080p one. Unlike PySceneDetect there is no
    shortest shot (``min_scene_len``): every splice is flagged, so that the detector looks at once (in a clip spliced
    from photos a face lost at an unflagged splice went undetected for a frame), and a face that stays where it was
    keeps its track across a cut anyway (see the module docstring)."""

    def __init__(self, threshold: float = CUT_THRESHOLD, grey_threshold: float = GREY_CUT_THRESHOLD) -> None:
        self.threshold, self.grey_threshold = threshold, grey_threshold
        self._last: np.ndarray | None = None

    def score(self, image: np.ndarray) -> float | None:
        """The content score of this frame against the one before (None for the first frame or a new size)."""
        h, w = image.shape[:2]
        scale = min(1.0, CUT_SIDE / max(h, w))
        small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR)
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        current = small.astype(np.int16)
        last, self._last = self._last, current
        if last is None or last.shape != current.shape:
            return None
        return float(np.abs(current - last).mean())

    def is_cut(self, image: np.ndarray) -> bool:
        """Whether a new shot starts at this frame (RGB, or grey), given the frames passed before it."""
        score = self.score(image)
        return score is not None and score >= (self.threshold if image.ndim == 3 else self.grey_threshold)


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
    score = np.asarray(score, np.float64)
    if score.size == 0:
        return []
    rows, cols = _hungarian(-score)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if score[r, c] >= minimum]


def _hungarian(cost: np.ndarray) -> tuple[list[int], list[int]]:
    """Minimum-cost assignment of a rectangular matrix (shortest augmenting paths with potentials, O(n²m)); the
    same answer as ``scipy.optimize.linear_sum_assignment`` for the few faces of a frame, without importing scipy's
    optimiser (a third of a second at start-up)."""
    transposed = cost.shape[0] > cost.shape[1]
    a = cost.T if transposed else cost  # n rows <= m columns
    n, m = a.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    owner = np.zeros(m + 1, np.int64)  # owner[j]: row (1-based) assigned to column j; 0 = free
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        owner[0], j0 = i, 0
        best = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used[1:]
            reduced = a[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < best[1:])
            best[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, best[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            best[1:][free] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    pairs = sorted((int(owner[j]) - 1, j - 1) for j in range(1, m + 1) if owner[j])
    if transposed:
        pairs = sorted((c, r) for r, c in pairs)
    return [r for r, _ in pairs], [c for _, c in pairs]


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

    def follow_start(self, shape: tuple[int, ...], box: np.ndarray) -> None:
        """Start following from a detected box (clipped to the frame)."""
        h, w = shape[:2]
        x1, y1, x2, y2 = (float(v) for v in box)
        self.box = np.array([max(0.0, x1), max(0.0, y1), min(float(w - 1), x2), min(float(h - 1), y2)], np.float32)
        self.following = True


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
        self._previous: np.ndarray | None = None  # the last frame's flow image

    def follow(self, gray: np.ndarray | FlowView, frame: int, time: float) -> bool:
        """Move every followed track's box to where the face went in this frame (median flow, see the module
        docstring). Returns False when a face was lost (the caller should detect again soon: a scene cut or an
        occlusion)."""
        ok = self._move(flow_view(gray))
        for track in self.tracks:
            if track.visible:
                track.frames += 1
                track.last_frame, track.last_time = frame, time
        return ok

    def _move(self, view: FlowView) -> bool:
        """Median flow from the last frame to this one for every followed track; a face whose points do not come
        back stops being followed. Returns False when one was lost."""
        current, scale = view.image, view.scale
        previous, self._previous = self._previous, current
        moving = [t for t in self.tracks if not t.ended and t.missed <= 1 and t.following]
        if not moving or previous is None or previous.shape != current.shape:
            return True
        ok = True
        h, w = view.shape[:2]
        for track, (moved, _) in zip(moving, median_flow(previous, current, [t.box * scale for t in moving])):
            if moved is None:
                track.following = ok = False
                continue
            box = moved / scale
            track.box = np.array([max(0.0, box[0]), max(0.0, box[1]), min(float(w - 1), box[2]),
                                  min(float(h - 1), box[3])], np.float32)
        return ok

    def associate(
        self,
        gray: np.ndarray | FlowView,
        detections: list[DetectedFace],
        embed: Callable[[list[int]], dict[int, Face]],
        frame: int,
        time: float,
        cut: bool = False,
    ) -> Association:
        """Apply one frame's detections. ``embed(indices) -> {index: Face}`` embeds the detections a stage needs.
        The tracks' boxes are first moved to this frame by flow (so they match where the faces are now; a track whose
        face the flow loses, e.g. across a cut, is no longer followed unless a detection matches it again). ``cut``:
        this frame starts a new shot (see the module docstring). ``gray``: the frame, grey, or its flow view."""
        view = flow_view(gray)
        self._move(view)
        live = [t for t in self.tracks if not t.ended]
        boxes = np.array([d.box for d in detections], np.float32).reshape(-1, 4)
        min_iou = max(self.min_iou, CUT_MIN_IOU) if cut else self.min_iou
        pairs = assign(iou_matrix([t.box for t in live], boxes), min_iou) if live else []
        matched = [(live[r], c) for r, c in pairs]
        used_tracks = {id(t) for t, _ in matched}
        used_dets = {c for _, c in matched}
        rest = [i for i in range(len(detections)) if i not in used_dets]
        faces = embed(rest) if rest else {}
        candidates = [t for t in live if id(t) not in used_tracks and t.samples] if not cut else []
        if rest and candidates:
            templates = np.stack([t.template() for t in candidates])
            vectors = np.stack([faces[i].embedding for i in rest])
            for r, c in assign(templates @ vectors.T, self.reid_threshold):
                matched.append((candidates[r], rest[c]))
                used_dets.add(rest[c])
                used_tracks.add(id(candidates[r]))
        for track, index in matched:
            track.follow_start(view.shape, detections[index].box)
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
            track.follow_start(view.shape, detections[index].box)
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
            if cut or time - track.last_detected > self.max_gap:
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
