"""A chain of detectors: where the first finds no face, the next one looks (``"centerface+hog"``).

Every missed face is a wrong answer further down (a verification without a probe, an unnamed person), and two
detectors of different kinds rarely miss the same face: CenterFace, a CNN, misses some faces that fill the frame
and some profiles; HOG, a sliding window on gradients, misses small, dark and tilted faces. The second detector
only runs on the images the first found nothing in, so the chain costs what the first detector costs.
"""

from __future__ import annotations

import numpy as np

from facelens.detect.base import Detector
from facelens.types import DetectedFace

#: Joins detector names into a chain: ``"centerface+hog"`` is CenterFace, then HOG where CenterFace finds nothing.
CHAIN = "+"


class FallbackDetector(Detector):
    """The first detector's faces, or where it finds none, the next one's (and so on). Each face keeps the name of
    the detector that found it (``DetectedFace.detector``)."""

    def __init__(self, detectors: list[Detector]) -> None:
        if len(detectors) < 2:
            raise ValueError("a fallback chain needs at least two detectors")
        super().__init__(min_face_size=detectors[0].min_face_size, max_side=None,
                         landmarks68=detectors[0].landmarks68)
        self.detectors = list(detectors)
        self.name = CHAIN.join(d.name for d in self.detectors)

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        for detector in self.detectors:
            faces = detector.detect(image)
            if faces:
                return faces
        return []

    def detect_many(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        found: list[list[DetectedFace]] = [[] for _ in images]
        todo = list(range(len(images)))
        for detector in self.detectors:
            if not todo:
                break
            for i, faces in zip(todo, detector.detect_many([images[i] for i in todo])):
                found[i] = faces
            todo = [i for i in todo if not found[i]]
        return found

    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        return self.detect(image)
