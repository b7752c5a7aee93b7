"""A chain of detectors: where the first finds no face, the next one looks (``"centerface+hog"``).

Every missed face is a wrong answer further down (a verification without a probe, an unnamed person), and two
detectors of different kinds rarely miss the same face: CenterFace, a CNN, misses some faces that fill the frame
and some profiles; HOG, a sliding window on gradients, misses small, dark and tilted faces. The second detector
only runs on the images the first found nothing in, so the chain costs what the first detector costs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from facelens.detect.base import Detector
from facelens.types import DetectedFace

#: Joins detector names into a chain: ``"centerface+hog"`` is CenterFace, then HOG where CenterFace finds nothing.
CHAIN = "+"


class FallbackDetector(Detector):
    """The first detector's faces, or where it finds none, the next one's (and so on). Each face keeps the name of
    the detector that found it (``DetectedFace.detector``). A fallback may be given as a function that builds it:
    it is then built the first time an image needs it (HOG's model takes a while to load, and most runs never ask)."""

    def __init__(self, detectors: list[Detector | Callable[[], Detector]], names: list[str] | None = None) -> None:
        if len(detectors) < 2:
            raise ValueError("a fallback chain needs at least two detectors")
        first = detectors[0]
        if not isinstance(first, Detector):
            first = first()
        super().__init__(min_face_size=first.min_face_size, max_side=None, landmarks68=first.landmarks68)
        self._members: list[Detector | Callable[[], Detector]] = [first, *detectors[1:]]
        names = names or [d.name for d in self._members]  # type: ignore[union-attr]
        self.name = CHAIN.join(names)

    def member(self, index: int) -> Detector:
        """The ``index``-th detector of the chain, built now if it was given as a function."""
        with self._lock:
            found = self._members[index]
            if not isinstance(found, Detector):
                found = self._members[index] = found()
            return found

    @property
    def detectors(self) -> list[Detector]:
        return [self.member(i) for i in range(len(self._members))]

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        for index in range(len(self._members)):
            faces = self.member(index).detect(image)
            if faces:
                return faces
        return []

    def detect_many(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        found: list[list[DetectedFace]] = [[] for _ in images]
        todo = list(range(len(images)))
        for index in range(len(self._members)):
            if not todo:
                break
            for i, faces in zip(todo, self.member(index).detect_many([images[i] for i in todo])):
                found[i] = faces
            todo = [i for i in todo if not found[i]]
        return found

    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        return self.detect(image)
