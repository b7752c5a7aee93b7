"""How good a clustering is against the truth: BCubed and pairwise precision/recall.

Faces left unclustered (label -1) count as singletons: a face alone is perfectly precise and recalls only
itself, so leaving faces out costs recall, never precision (as in Amigó et al. 2009, BCubed).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ClusterScores:
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f: float
    pairwise_precision: float
    pairwise_recall: float
    unclustered: float  # share of faces with no cluster
    clusters: int

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _singletons(labels: np.ndarray) -> np.ndarray:
    """-1 labels as clusters of their own."""
    labels = np.asarray(labels, np.int64).copy()
    noise = labels < 0
    labels[noise] = labels.max(initial=0) + 1 + np.arange(int(noise.sum()))
    return labels


def cluster_scores(truth: np.ndarray, labels: np.ndarray) -> ClusterScores:
    """BCubed and pairwise precision/recall of ``labels`` (-1 = unclustered) against ``truth``."""
    truth = np.asarray(truth)
    raw = np.asarray(labels, np.int64)
    if len(truth) != len(raw):
        raise ValueError(f"{len(truth)} true labels for {len(raw)} predicted")
    pred = _singletons(raw)
    _, t = np.unique(truth, return_inverse=True)
    joint = Counter(zip(pred.tolist(), t.tolist()))
    per_pred = Counter(pred.tolist())
    per_true = Counter(t.tolist())
    # BCubed: per face, share of its cluster with its class (precision) and of its class in its cluster (recall)
    precision = sum(n * n / per_pred[p] for (p, _), n in joint.items()) / len(pred)
    recall = sum(n * n / per_true[c] for (_, c), n in joint.items()) / len(pred)
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    same_both = sum(n * (n - 1) / 2 for n in joint.values())
    same_pred = sum(n * (n - 1) / 2 for n in per_pred.values())
    same_true = sum(n * (n - 1) / 2 for n in per_true.values())
    return ClusterScores(
        bcubed_precision=float(precision), bcubed_recall=float(recall), bcubed_f=float(f),
        pairwise_precision=float(same_both / same_pred) if same_pred else 1.0,
        pairwise_recall=float(same_both / same_true) if same_true else 1.0,
        unclustered=float((raw < 0).mean()) if len(raw) else 0.0,
        clusters=int(len(set(raw[raw >= 0].tolist()))),
    )  # fmt: skip
