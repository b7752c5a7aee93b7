"""The detector interface and the parts every backend shares (downscaling, size filter, landmark conversion)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

import numpy as np

from facelens.types import DetectedFace

#: dlib 68-point indices used to derive the standard 5 landmarks (see facelens.types.LANDMARK_ORDER).
_RIGHT_EYE_68 = slice(36, 42)
_LEFT_EYE_68 = slice(42, 48)


def five_from_68(points68: np.ndarray) -> np.ndarray:
    return np.stack(
        [
            points68[_RIGHT_EYE_68].mean(axis=0),
            points68[_LEFT_EYE_68].mean(axis=0),
            points68[30],
            points68[48],
            points68[54],
        ]
    ).astype(np.float32)


class Detector(ABC):
    """Finds faces in an RGB uint8 image. Subclasses implement :meth:`_detect` on a (possibly downscaled) image."""

    name = "base"

    def __init__(self, min_face_size: int = 20, max_side: int | None = 1600, landmarks68: bool = False) -> None:
        self.min_face_size = min_face_size
        self.max_side = max_side
        self.landmarks68 = landmarks68
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces sorted by area, largest first. Large images are downscaled for detection and boxes mapped back."""
        work, scale = self._downscaled(image)
        return self._finish(image, self._detect(work), scale)

    def detect_many(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        """Faces of several images. Backends that can run a batch through their network override this."""
        return [self.detect(image) for image in images]

    def _downscaled(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The image to detect on (at most ``max_side`` pixels on its longer side) and its scale."""
        if self.max_side and max(image.shape[:2]) > self.max_side:
            import cv2

            scale = self.max_side / max(image.shape[:2])
            return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), scale
        return image, 1.0

    def _finish(self, image: np.ndarray, faces: list[DetectedFace], scale: float) -> list[DetectedFace]:
        """Faces mapped back to ``image``, with 68-point landmarks where needed, size-filtered, largest first."""
        if scale != 1.0:
            faces = [self._rescale(f, 1.0 / scale) for f in faces]
        if self.landmarks68 or self._needs_68():
            faces = self._with_68(image, faces)
        faces = [f for f in faces if min(f.width, f.height) >= self.min_face_size]
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def _needs_68(self) -> bool:
        return False

    def _with_68(self, image: np.ndarray, faces: list[DetectedFace]) -> list[DetectedFace]:
        from facelens.align import landmarks_68

        out = []
        for face in faces:
            pts = landmarks_68(image, face.box)
            out.append(
                DetectedFace(
                    box=face.box,
                    score=face.score,
                    landmarks=five_from_68(pts) if self._needs_68() else face.landmarks,
                    landmarks68=pts if self.landmarks68 else None,
                    detector=face.detector,
                )
            )
        return out

    @staticmethod
    def _rescale(face: DetectedFace, factor: float) -> DetectedFace:
        return DetectedFace(
            box=(face.box * factor).astype(np.float32),
            score=face.score,
            landmarks=(face.landmarks * factor).astype(np.float32),
            landmarks68=None if face.landmarks68 is None else (face.landmarks68 * factor).astype(np.float32),
            detector=face.detector,
        )

    @abstractmethod
    def _detect(self, image: np.ndarray) -> list[DetectedFace]: ...
