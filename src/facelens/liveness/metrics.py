"""ISO/IEC 30107-3 error rates for presentation-attack detection, plus the usual classifier figures.

Convention: a *score* is higher for live (bona fide) faces; a face is accepted as live when ``score >= threshold``.
* APCER — share of attack presentations accepted as live (per attack type the standard takes the worst; with one
  pooled "spoof" folder it is that folder's rate).
* BPCER — share of bona fide presentations rejected as attacks.
* ACER  — (APCER + BPCER) / 2 (informative in the standard, reported because most papers do).
Precision / recall / F1 treat **attack** as the positive class (what a PAD system is meant to find).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class PadMetrics:
    threshold: float
    n_live: int
    n_spoof: int
    apcer: float
    bpcer: float
    acer: float
    accuracy: float
    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _split(scores, is_live) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    is_live = np.asarray(is_live, dtype=bool)
    if scores.shape != is_live.shape:
        raise ValueError("scores and labels must have the same length")
    return scores[is_live], scores[~is_live]


def pad_metrics(scores, is_live, threshold: float) -> PadMetrics:
    """APCER, BPCER, ACER, accuracy, precision, recall and F1 at ``threshold``."""
    live, spoof = _split(scores, is_live)
    accepted_spoof = int((spoof >= threshold).sum())
    rejected_live = int((live < threshold).sum())
    apcer = accepted_spoof / len(spoof) if len(spoof) else float("nan")
    bpcer = rejected_live / len(live) if len(live) else float("nan")
    tp = len(spoof) - accepted_spoof  # attacks caught
    fp = rejected_live
    fn = accepted_spoof
    total = len(live) + len(spoof)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PadMetrics(
        threshold=float(threshold),
        n_live=len(live),
        n_spoof=len(spoof),
        apcer=apcer,
        bpcer=bpcer,
        acer=(apcer + bpcer) / 2,
        accuracy=(total - fp - fn) / total if total else float("nan"),
        precision=precision,
        recall=recall,
        f1=f1,
    )


def threshold_for_bpcer(scores, is_live, target_bpcer: float) -> float:
    """The highest threshold whose BPCER on these live scores is at most ``target_bpcer`` (the strictest setting
    that still rejects no more than that share of genuine users)."""
    live, _ = _split(scores, is_live)
    if not len(live):
        raise ValueError("no live samples to set a BPCER threshold on")
    ordered = np.sort(live)
    allowed = int(np.floor(target_bpcer * len(ordered) + 1e-9))  # live faces we may reject
    return float(ordered[min(allowed, len(ordered) - 1)])


def min_acer_threshold(scores, is_live) -> float:
    """The threshold (among the observed scores) with the lowest ACER; ties go to the lowest threshold."""
    candidates = np.unique(np.asarray(scores, dtype=np.float64))
    acers = [pad_metrics(scores, is_live, t).acer for t in candidates]
    return float(candidates[int(np.argmin(acers))])


def roc_auc(scores, is_live) -> float:
    """Area under the ROC curve (live vs spoof), ties counted half."""
    live, spoof = _split(scores, is_live)
    if not len(live) or not len(spoof):
        return float("nan")
    diff = live[:, None] - spoof[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)
