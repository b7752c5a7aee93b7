"""Labelled live/spoof folders → per-image model scores and frequency features, computed once.

A folder holds ``live/`` and ``spoof/`` (also accepted: ``real/`` and ``fake/``). Each image is decoded, our detector
runs on it and the **largest** face is scored. An image where no face is found cannot be checked, so it is counted
as *rejected* (classified as an attack): it adds to BPCER when it is live and is a correct rejection when it is a
spoof, and the count is reported as ``no_face``. A liveness gate must not accept what it cannot see.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facelens.detect import DEFAULT_DETECTOR
from facelens.errors import FacelensError, ImageDecodeError
from facelens.io.image import decode_image
from facelens.liveness.frequency import FEATURES, feature_matrix
from facelens.liveness.models import get_model

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
_LABEL_DIRS = {"live": True, "real": True, "spoof": False, "fake": False}


@dataclass(frozen=True)
class LabelledScores:
    """One row per image: label, whether a face was found, the model's live score and the frequency features
    (scores of images without a face are 0 and their features NaN)."""

    paths: list[str]
    is_live: np.ndarray  # bool [n]
    found: np.ndarray  # bool [n]
    model_scores: np.ndarray  # float [n]
    features: np.ndarray  # float [n, len(FEATURES)]
    model: str
    detector: str
    unreadable: tuple[tuple[str, str], ...] = ()  # (path, why) of files that could not be decoded, not scored

    @property
    def no_face(self) -> int:
        return int((~self.found).sum())

    def subset(self, mask: np.ndarray) -> LabelledScores:
        idx = np.flatnonzero(mask)
        return LabelledScores(
            [self.paths[i] for i in idx],
            self.is_live[idx],
            self.found[idx],
            self.model_scores[idx],
            self.features[idx],
            self.model,
            self.detector,
            self.unreadable,
        )


def labelled_images(data_dir: str | Path) -> list[tuple[Path, bool]]:
    """(path, is_live) for every image under ``live/`` / ``spoof/`` (or ``real/`` / ``fake/``), sorted."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FacelensError(f"{root} is not a folder; expected a folder with live/ and spoof/ subfolders")
    out: list[tuple[Path, bool]] = []
    for sub in sorted(root.iterdir()):
        label = _LABEL_DIRS.get(sub.name.lower())
        if label is None or not sub.is_dir():
            continue
        out += [(p, label) for p in sorted(sub.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not out or len({lab for _, lab in out}) < 2:
        raise FacelensError(f"{root} needs images in both live/ and spoof/ subfolders (found {len(out)} images)")
    return out


def score_folder(data_dir: str | Path, model: str = "minifasnet", detector: str = DEFAULT_DETECTOR) -> LabelledScores:
    """Detect, score and measure every labelled image in ``data_dir``. Files that cannot be decoded (broken links,
    truncated or non-image files) are not scored; they are listed in ``unreadable`` for the report."""
    from facelens.engine import models

    pipeline = models(detector=detector)
    runner = get_model(model)
    paths, labels, found, scores, feats, unreadable = [], [], [], [], [], []
    for path, live in labelled_images(data_dir):
        try:
            image = decode_image(path)
        except ImageDecodeError as exc:
            log.warning("skipping %s: %s", path, exc)
            unreadable.append((str(path), str(exc)))
            continue
        faces = pipeline.detector.detect(image)
        paths.append(str(path))
        labels.append(live)
        found.append(bool(faces))
        if faces:
            box = faces[0].box
            scores.append(float(runner.score(image, [box]).live[0]))
            feats.append(feature_matrix(image, [box])[0])
        else:
            scores.append(0.0)
            feats.append(np.full(len(FEATURES), np.nan))
    return LabelledScores(
        paths,
        np.array(labels, bool),
        np.array(found, bool),
        np.array(scores),
        np.array(feats).reshape(-1, len(FEATURES)),
        model,
        detector,
        tuple(unreadable),
    )
