"""dlib detectors: HOG (CPU-fast, frontal, nothing to download; the default chain's fallback) and MMOD CNN (more robust to
pose, slower)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import dlib
import numpy as np

from facelens.detect.base import Detector
import facelens.models.catalog  # noqa: F401  (registers the dlib model specs: MMOD, the 68-point predictor)
from facelens.models.registry import model_path
from facelens.types import DetectedFace

_PLACEHOLDER = np.zeros((5, 2), np.float32)
log = logging.getLogger(__name__)


def frontal_face_detector() -> "dlib.fhog_object_detector":
    """dlib's built-in HOG face detector, read from a copy saved in the user cache: decoding the copy compiled
    into dlib costs ~0.7 s of CPU in every process, reading the saved one ~1 ms (the same detector, saved by dlib
    itself). The copy is made on first use, per dlib version, and used only while its bytes match the sha256
    recorded beside it."""
    from facelens.models.registry import cache_dir, file_sha256, sha256_of

    target = cache_dir() / "dlib_hog" / f"frontal_face_detector-{dlib.__version__}.svm"
    record = target.with_name(target.name + ".sha256")
    try:
        if target.is_file() and record.is_file() and file_sha256(target) == record.read_text().strip():
            return dlib.fhog_object_detector(str(target))
    except (OSError, RuntimeError) as exc:  # unreadable or not a detector: made again below
        log.debug("cached HOG detector %s unusable: %s", target, exc)
    detector = dlib.get_frontal_face_detector()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        os.close(fd)
        try:
            detector.save(tmp)
            digest = sha256_of(Path(tmp))
            os.replace(tmp, target)  # concurrent writers save the same bytes; a reader never sees half a file
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{record.name}.")
            with os.fdopen(fd, "w") as handle:
                handle.write(digest + "\n")
            os.replace(tmp, record)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except (OSError, RuntimeError) as exc:  # a read-only cache costs the decode next time, nothing else
        log.debug("could not save the HOG detector to %s: %s", target, exc)
    return detector


def _box(rect: "dlib.rectangle", shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    return np.array(
        [max(rect.left(), 0), max(rect.top(), 0), min(rect.right() + 1, w), min(rect.bottom() + 1, h)], np.float32
    )


class HogDetector(Detector):
    """dlib HOG + linear SVM. ``upsample=None`` tries 0 and retries at 1 when nothing is found (small faces)."""

    name = "hog"

    def __init__(self, upsample: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.upsample = upsample
        self._detector = frontal_face_detector()

    def _needs_68(self) -> bool:
        return True

    def _run(self, image: np.ndarray, upsample: int) -> list[DetectedFace]:
        with self._lock:  # dlib's detector keeps scratch buffers: two threads in it at once corrupt the heap
            rects, scores, _ = self._detector.run(image, upsample, 0.0)
        return [
            DetectedFace(box=_box(r, image.shape), score=float(s), landmarks=_PLACEHOLDER, detector=self.name)
            for r, s in zip(rects, scores)
        ]

    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        if self.upsample is not None:
            return self._run(image, self.upsample)
        faces = self._run(image, 0)
        if not faces and max(image.shape[:2]) <= 1200:
            faces = self._run(image, 1)
        return faces


class CnnDetector(Detector):
    """dlib MMOD CNN detector (``mmod_human_face_detector.dat``)."""

    name = "cnn"

    def __init__(self, upsample: int = 1, **kwargs) -> None:
        kwargs.setdefault("max_side", 1000)
        super().__init__(**kwargs)
        self.upsample = upsample
        self._detector = dlib.cnn_face_detection_model_v1(str(model_path("dlib_mmod")))

    def _needs_68(self) -> bool:
        return True

    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        with self._lock:
            found = self._detector(image, self.upsample)
        return [
            DetectedFace(box=_box(d.rect, image.shape), score=float(d.confidence), landmarks=_PLACEHOLDER, detector=self.name)
            for d in found
        ]
