"""What an anonymisation still leaks, measured by facelens' own recogniser (the attacker here knows where each face
was: the anonymised image is embedded at the *original's* face positions, so a blur that merely fools the detector
does not count as anonymous).

For images (pairs of original and anonymised):

- **re-identification at rank 1**: the anonymised face's nearest original face is the same identity. When
  identities are given (people with several photos, as LFW), the gallery is the person's *other* photos and
  everyone else's (the realistic attack: knowing the person from elsewhere; its own original would match on the
  background alone), over the faces whose person has another photo; else its own original among all. An image's
  person is its largest face; its other faces (background people, partial detections) are strangers;
- **re-identification at the threshold**: the nearest of all originals' faces (its own included) is the person
  *and* clears the embedding model's default verification threshold (the recogniser would name them). Not "close
  to some photo of the person": a covered face embeds near a few dull originals (dark, partial faces) whoever was
  under the cover, and that names nobody;
- **verified against its own original** (``verified_own``): its similarity to its own original clears the
  threshold, the strictest test;
- **faces left visible**: a detector still finds a face on the anonymised image overlapping an original face.

For video, frame by frame: the original's faces are detected and tracked (``video.tracking``), and a *leaked frame* is
one where any tracked face is left visible or re-identified at the threshold against its original.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facelens.detect import DEFAULT_DETECTOR
from facelens.embed import DEFAULT_EMBEDDER

#: A detection on the anonymised image overlapping an original face at least this much (IoU) is that face, visible.
VISIBLE_IOU = 0.3


@dataclass
class AnonymizationReport:
    """Counts and rates of what leaked. ``faces``: original faces checked (face-frames for video)."""

    images: int = 0
    faces: int = 0
    rank1_faces: int = 0  # faces with another photo of the person among the originals (the rank-1 denominator)
    reidentified_rank1: int = 0
    reidentified_threshold: int = 0
    verified_own: int = 0  # faces whose anonymised copy still verifies against their own original
    visible: int = 0
    threshold: float = 0.0
    frames: int = 0
    frames_leaked: int = 0
    missing: list[str] = field(default_factory=list)

    def rate(self, count: int) -> float:
        return count / self.faces if self.faces else 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "images": self.images, "faces": self.faces,
            "reidentified_rank1": self.reidentified_rank1, "reidentified_threshold": self.reidentified_threshold,
            "visible": self.visible,
            "rank1_rate": round(self.reidentified_rank1 / self.rank1_faces if self.rank1_faces else 0.0, 4),
            "threshold_rate": round(self.rate(self.reidentified_threshold), 4),
            "verified_own": self.verified_own, "verified_own_rate": round(self.rate(self.verified_own), 4),
            "visible_rate": round(self.rate(self.visible), 4), "threshold": round(self.threshold, 4),
        }
        if self.frames:
            out.update(frames=self.frames, frames_leaked=self.frames_leaked)
        if self.missing:
            out["missing"] = self.missing
        return out


def _analyzer(detector: str, embedder: str, embed: bool, workers: int | None, keep_images: bool) -> Any:
    from facelens.engine import FaceAnalyzer

    return FaceAnalyzer(detector=detector, embedder=embedder, tasks=("detect", "embed") if embed else ("detect",),
                        workers=workers, keep_images=keep_images)


def _visible(boxes: np.ndarray, found: np.ndarray) -> np.ndarray:
    from facelens.video.tracking import iou_matrix

    if not len(boxes) or not len(found):
        return np.zeros(len(boxes), bool)
    return iou_matrix(boxes, found).max(axis=1) >= VISIBLE_IOU


def evaluate_images(
    originals: Sequence[Any],
    anonymised: Sequence[Any],
    identities: Sequence[str] | None = None,
    detector: str = DEFAULT_DETECTOR,
    embedder: str = DEFAULT_EMBEDDER,
    workers: int | None = None,
    originals_done: list[Any] | None = None,
) -> AnonymizationReport:
    """Leakage over pairs ``(originals[i], anonymised[i])`` (paths, bytes or arrays). ``identities[i]`` names the
    person of image i (default: every image its own identity). ``originals_done``: the originals' results from an
    earlier call (``original_results``), to measure many anonymisations of the same images."""
    from facelens.decide import verify_threshold
    from facelens.engine import models

    if len(originals) != len(anonymised):
        raise ValueError(f"{len(originals)} originals but {len(anonymised)} anonymised images")
    identities = [str(v) for v in identities] if identities is not None else [str(i) for i in range(len(originals))]
    done = originals_done if originals_done is not None else original_results(originals, detector, embedder, workers)
    pipeline = models(detector, embedder)
    report = AnonymizationReport(threshold=verify_threshold(pipeline.model_id))
    by_person = len(set(identities)) < len(identities)
    owners = [i for i, r in enumerate(done) if r.error is None for _ in range(len(r.faces))]
    if not owners:
        return report
    gallery = np.concatenate([r.faces.embedding for r in done if r.error is None and len(r.faces)])
    # the image's person is its largest face (detectors answer largest first); other faces are strangers, each
    # their own identity (else a background face or a partial detection would count as the person)
    labels = [[identities[i] if k == 0 or not by_person else f"{identities[i]}#{i}.{k}" for k in range(len(r.faces))]
              for i, r in enumerate(done) if r.error is None and len(r.faces)]
    gallery_identity = np.array([label for image in labels for label in image])
    gallery_owner = np.array(owners)
    face_labels = dict(zip([i for i, r in enumerate(done) if r.error is None and len(r.faces)], labels))
    analyzer = _analyzer(detector, embedder, embed=False, workers=workers, keep_images=True)
    for i, result in enumerate(analyzer.run(list(anonymised))):
        original = done[i]
        if original.error is not None or not len(original.faces):
            continue
        if result.error is not None:
            report.missing.append(result.source)
            continue
        report.images += 1
        boxes = np.asarray(original.faces.box, np.float32).reshape(-1, 4)
        report.faces += len(boxes)
        report.visible += int(_visible(boxes, np.asarray(result.faces.box).reshape(-1, 4)).sum())
        vectors = pipeline.embedder.embed(result.image, original.faces.detections())
        scores = vectors @ gallery.T
        same = gallery_identity[None, :] == np.array(face_labels[i])[:, None]
        own = gallery_owner == i
        top = scores.argmax(axis=1)
        others = gallery_owner != i  # rank 1 against the person's *other* photos when there are any
        for f in range(len(boxes)):
            if by_person and (same[f] & others).any():
                report.rank1_faces += 1
                report.reidentified_rank1 += int(same[f, np.where(others, scores[f], -np.inf).argmax()])
            elif not by_person:
                report.rank1_faces += 1
                report.reidentified_rank1 += int(same[f, scores[f].argmax()])
        for f in range(len(boxes)):  # named: the nearest original is the person and clears the threshold
            report.reidentified_threshold += int(same[f, top[f]] and scores[f, top[f]] >= report.threshold)
            own_face = np.where(own & same[f])[0]
            report.verified_own += int(len(own_face) and scores[f, own_face].max() >= report.threshold)
    return report


def original_results(originals: Sequence[Any], detector: str = DEFAULT_DETECTOR, embedder: str = DEFAULT_EMBEDDER,
                     workers: int | None = None) -> list[Any]:
    """Every original's faces, detected and embedded (what :func:`evaluate_images` compares against)."""
    return list(_analyzer(detector, embedder, embed=True, workers=workers, keep_images=False).run(list(originals)))


def evaluate_video(
    original: Any, anonymised: Any, detector: str = DEFAULT_DETECTOR, embedder: str = DEFAULT_EMBEDDER,
) -> AnonymizationReport:
    """Frame-by-frame leakage of an anonymised video against its original (both read in step; the shorter ends
    it, and a frame-count mismatch is reported in ``missing``)."""
    import cv2

    from facelens.decide import verify_threshold
    from facelens.io.video import open_source
    from facelens.engine import models
    from facelens.video.tracking import Tracker

    pipeline = models(detector, embedder)
    report = AnonymizationReport(threshold=verify_threshold(pipeline.model_id))
    tracker = Tracker(reid_threshold=1.0, min_hits=1)
    with open_source(original) as a, open_source(anonymised) as b:
        for orig, anon in zip(a, b):
            report.frames += 1
            gray = cv2.cvtColor(orig.image, cv2.COLOR_RGB2GRAY)  # associate moves the tracks to this frame first
            detections = pipeline.detector.detect(orig.image)
            association = tracker.associate(gray, detections, lambda indices: {}, orig.index, orig.time)
            seen = {track.id for track, _ in association.matched}
            faces: list[Any] = list(detections)  # detections (with landmarks) and followed boxes of missed faces
            faces += [t.box.copy() for t in tracker.tracks if t.id not in seen and t.shown]
            if not faces:
                continue
            boxes = np.stack([np.asarray(getattr(f, "box", f), np.float32) for f in faces])
            report.faces += len(faces)
            visible = _visible(boxes, np.array([d.box for d in pipeline.detector.detect(anon.image)]).reshape(-1, 4))
            same = np.sum(pipeline.embedder.embed(orig.image, faces) * pipeline.embedder.embed(anon.image, faces), 1)
            named = same >= report.threshold
            report.visible += int(visible.sum())
            report.reidentified_threshold += int(named.sum())
            report.verified_own += int(named.sum())
            report.rank1_faces += len(faces)
            report.reidentified_rank1 += int(named.sum())  # one identity per face: rank 1 is the threshold test
            report.frames_leaked += int(bool((visible | named).any()))
        count_a, count_b = a.frames_read, b.frames_read
    if count_a != count_b:
        report.missing.append(f"frames: original {count_a}, anonymised {count_b}")
    report.images = 1
    return report
