"""Robustness: re-run a pairs evaluation with the second image of every pair perturbed (the first stays clean,
as a gallery photo would) and report how TAR@FAR, EER and AUC degrade per perturbation and strength.

Perturbations are placed with the 5 landmarks of the clean image's detection, so an occluding patch covers the
same facial region in every image; its side is given in units of the inter-ocular distance (IOD). By default the
perturbed image goes through the whole pipeline again (``redetect=True``: a face the detector now misses is a
failure to enrol and its pair is rejected); ``redetect=False`` keeps the clean box to isolate the recogniser.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from facelens.errors import FacelensError
from facelens.evaluate.embeddings import FTE_SCORE, EmbeddingSet, embed_images, embed_one
from facelens.evaluate.metrics import DEFAULT_FARS, eer, far_key, verification_metrics
from facelens.evaluate.protocols import PairSet

log = logging.getLogger(__name__)

#: kind → default strengths, weakest first. Units: occlusion = patch side in IODs; blur = Gaussian sigma in
#: pixels; noise = Gaussian std in grey levels (0-255); jpeg = quality (lower is stronger); downscale = factor
#: (smaller is stronger; resized back up); rotate = degrees in-plane about the eye midpoint.
DEFAULT_STRENGTHS: dict[str, tuple[float, ...]] = {
    "occlude_eyes": (0.5, 1.0, 1.5),
    "occlude_forehead": (0.5, 1.0, 1.5),
    "occlude_nose": (0.5, 1.0, 1.5),
    "occlude_mouth": (0.5, 1.0, 1.5),
    "blur": (1.0, 2.0, 4.0),
    "noise": (10.0, 25.0, 50.0),
    "jpeg": (50.0, 20.0, 5.0),
    "downscale": (0.5, 0.25, 0.125),
    "rotate": (10.0, 20.0, 40.0),
}
KINDS = tuple(DEFAULT_STRENGTHS)


@dataclass(frozen=True)
class Perturbation:
    kind: str
    strength: float

    def __post_init__(self) -> None:
        if self.kind not in DEFAULT_STRENGTHS:
            raise FacelensError(f"unknown perturbation {self.kind!r}: use one of {', '.join(KINDS)}")

    @property
    def label(self) -> str:
        return f"{self.kind}={self.strength:g}"

    def apply(self, image: np.ndarray, landmarks: np.ndarray, seed: int = 0) -> np.ndarray:
        """Perturbed copy of an RGB uint8 image whose face has ``landmarks`` (5×2, LANDMARK_ORDER)."""
        img = np.ascontiguousarray(image)
        lm = np.asarray(landmarks, dtype=np.float64)
        eyes = (lm[0] + lm[1]) / 2
        eye_vec = lm[1] - lm[0]
        iod = float(np.hypot(*eye_vec)) or 1.0
        s = self.strength
        if self.kind.startswith("occlude_"):
            up = np.array([eye_vec[1], -eye_vec[0]]) / iod  # perpendicular to the eye line, towards the forehead
            if up[1] > 0:
                up = -up
            centre = {
                "occlude_eyes": eyes,
                "occlude_forehead": eyes + up * iod,
                "occlude_nose": lm[2],
                "occlude_mouth": (lm[3] + lm[4]) / 2,
            }[self.kind]
            angle = float(np.degrees(np.arctan2(eye_vec[1], eye_vec[0])))
            box = cv2.boxPoints(((float(centre[0]), float(centre[1])), (s * iod, s * iod), angle))
            out = img.copy()
            cv2.fillPoly(out, [np.round(box).astype(np.int32)], (0, 0, 0))
            return out
        if self.kind == "blur":
            return cv2.GaussianBlur(img, (0, 0), sigmaX=s)
        if self.kind == "noise":
            rng = np.random.default_rng(seed)
            return np.clip(img + rng.normal(0, s, img.shape), 0, 255).astype(np.uint8)
        if self.kind == "jpeg":
            ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(s)])
            if not ok:
                raise FacelensError(f"JPEG encoding failed at quality {s:g}")
            return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
        if self.kind == "downscale":
            h, w = img.shape[:2]
            small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
            return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        if self.kind == "rotate":
            m = cv2.getRotationMatrix2D((float(eyes[0]), float(eyes[1])), s, 1.0)
            return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REPLICATE)
        raise AssertionError(self.kind)


def perturbations(kinds=KINDS, strengths: dict[str, tuple[float, ...]] | None = None) -> list[Perturbation]:
    strengths = {**DEFAULT_STRENGTHS, **(strengths or {})}
    return [Perturbation(k, v) for k in kinds for v in strengths[k]]


@dataclass(frozen=True)
class RobustnessRow:
    perturbation: str
    kind: str
    strength: float
    n_pairs: int
    n_fte_pairs: int
    auc: float
    eer: float
    eer_se: float  # bootstrap standard error of the EER (the noise to judge differences by)
    tar_at_far: dict[str, float]
    mean_genuine_similarity: float
    delta_eer: float  # against the unperturbed row
    delta_tar: dict[str, float]

    def to_dict(self) -> dict:
        return asdict(self)


def bootstrap_se(scores, labels, n_boot: int = 200, seed: int = 0) -> float:
    """Standard error of the EER by resampling genuine and impostor pairs separately."""
    rng = np.random.default_rng(seed)
    gen, imp = scores[labels], scores[~labels]
    vals = []
    for _ in range(n_boot):
        g, i = rng.choice(gen, gen.size), rng.choice(imp, imp.size)
        vals.append(eer(np.concatenate([g, i]), np.r_[np.ones(g.size, bool), np.zeros(i.size, bool)])[0])
    return float(np.std(vals))


def _row(name, kind, strength, scores, labels, fte, fars, clean=None) -> RobustnessRow:
    m = verification_metrics(scores, labels, fars=fars)
    gen = scores[labels & ~fte]
    return RobustnessRow(
        perturbation=name, kind=kind, strength=strength, n_pairs=int(scores.size), n_fte_pairs=int(fte.sum()),
        auc=m.auc, eer=m.eer, eer_se=bootstrap_se(scores, labels), tar_at_far=m.tar_at_far,
        mean_genuine_similarity=float(gen.mean()) if gen.size else float("nan"),
        delta_eer=m.eer - (clean.eer if clean else m.eer),
        delta_tar={k: v - (clean.tar_at_far[k] if clean else v) for k, v in m.tar_at_far.items()},
    )


def evaluate_robustness(
    pairs: PairSet,
    perturbation_list: list[Perturbation],
    pipeline=None,
    embeddings: EmbeddingSet | None = None,
    redetect: bool = True,
    fars=DEFAULT_FARS,
    seed: int = 0,
    progress=None,
) -> list[RobustnessRow]:
    """One row for the clean pairs, then one per perturbation (FTE pairs scored as rejections)."""
    if pipeline is None:
        from facelens.engine import models

        pipeline = models()
    emb = embed_images(pairs.images(), pipeline=pipeline, into=embeddings)
    labels = pairs.labels
    clean_scores, clean_fte = emb.pair_scores((p.a, p.b) for p in pairs.pairs)
    clean = _row("none", "none", 0.0, clean_scores, labels, clean_fte, fars)
    rows = [clean]
    # the clean probe images and their detections, decoded once
    probes: dict[str, tuple[np.ndarray, object] | None] = {}
    for p in pairs.pairs:
        if p.b in probes:
            continue
        if emb.get(p.b) is None:
            probes[p.b] = None
            continue
        image = pipeline.decode(p.b)
        found = pipeline.detector.detect(image)
        if emb.select == "centre" and found:
            from facelens.evaluate.protocols import centred_face

            found = [found[centred_face([f.box for f in found], image.shape)]]
        probes[p.b] = (image, found[0]) if found else None
    for k, pert in enumerate(perturbation_list):
        cache: dict[str, np.ndarray | None] = {}
        for j, (path, item) in enumerate(probes.items()):
            if item is None:
                cache[path] = None
                continue
            image, det = item
            perturbed = pert.apply(image, det.landmarks, seed=seed * 100003 + j)
            if redetect:
                cache[path] = embed_one(perturbed, pipeline, emb.select)[0]
            else:
                cache[path] = pipeline.embedder.embed(perturbed, [det])[0]
        scores, fte = [], []
        for p in pairs.pairs:
            va, vb = emb.get(p.a), cache.get(p.b)
            ok = va is not None and vb is not None
            scores.append(float(np.dot(va, vb)) if ok else FTE_SCORE)
            fte.append(not ok)
        rows.append(_row(pert.label, pert.kind, pert.strength, np.asarray(scores), labels, np.asarray(fte), fars, clean))
        log.info("robustness %s: EER %.3f", pert.label, rows[-1].eer)
        if progress:
            progress(k + 1, len(perturbation_list))
    return rows


def robustness_report(rows: list[RobustnessRow], out_dir, title: str = "Robustness", model_id: str = "", notes=()):
    from facelens.evaluate import report

    first_far = far_key(DEFAULT_FARS[0])
    table = [{"perturbation": r.perturbation, "pairs": r.n_pairs, "FTE pairs": r.n_fte_pairs, "AUC": r.auc,
              "EER": r.eer, "EER s.e.": r.eer_se, f"TAR@FAR {first_far}": r.tar_at_far.get(first_far, float("nan")),
              "ΔEER": r.delta_eer, "mean genuine sim": r.mean_genuine_similarity} for r in rows]
    figures = {
        "robustness_eer": report.plot_bars([r.to_dict() for r in rows], "eer", "perturbation", "EER",
                                           "EER per perturbation", baseline=rows[0].eer),
    }
    results = {"model_id": model_id, "rows": [r.to_dict() for r in rows]}
    return report.write_report(out_dir, title, results, figures, {"Degradation": table}, notes)
