"""Drawing results for people: boxes and labels on a copy of the image (inference never draws)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def draw_boxes(image: np.ndarray, boxes: Sequence[Sequence[float]], labels: Sequence[str], known: Sequence[bool]) -> np.ndarray:
    canvas = image.copy()
    thickness = max(2, int(round(max(image.shape[:2]) / 400)))
    scale = max(0.5, max(image.shape[:2]) / 1200)
    for box, label, ok in zip(boxes, labels, known):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        colour = (40, 200, 40) if ok else (220, 60, 60)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(y1 - th - base - 4, 0)
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 6, top + th + base + 4), colour, -1)
        cv2.putText(canvas, label, (x1 + 3, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness)
    return canvas


def draw_matches(image: np.ndarray, matches: Sequence) -> np.ndarray:
    return draw_boxes(
        image,
        [m.box for m in matches],
        [f"{m.label} {m.score:.2f}" for m in matches],
        [m.name is not None for m in matches],
    )


def draw_faces(image: np.ndarray, faces) -> np.ndarray:
    """The one annotator of a :class:`facelens.result.Faces`: each box labelled with what the stages that ran found
    — the name and identity score (green = known, red = unknown) when identification ran, else the detector score;
    then expression, gender and age, quality and liveness when those ran."""
    labels, known = [], []
    for face in faces:
        parts = []
        if face.label is not None:
            score = face.identity_score
            parts.append(face.label if score is None else f"{face.label} {score:.2f}")
        if face.track_id is not None:
            parts.append(f"#{face.track_id}")
        if face.expression_label is not None:
            parts.append(face.expression_label)
        if face.gender is not None:
            parts.append(f"{face.gender[0].upper()}{'' if face.age is None else f' {face.age:.0f}'}")
        if face.quality is not None:
            parts.append(f"q{face.quality.score:.2f}")
        if face.is_live is not None:
            parts.append("live" if face.is_live else "spoof")
        labels.append(" ".join(parts) or f"{face.score:.2f}")
        known.append(face.label is None or face.name is not None)
    return draw_boxes(image, list(faces.box), labels, known)
