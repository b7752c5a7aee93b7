"""Identification evaluation (1:N): enrol a gallery, search it with mated and non-mated probes, and report CMC
and open-set FNIR at FPIR (NIST FRVT 1:N terms) with the threshold that gives each target FPIR.

Failures to enrol: a gallery image without a face is not enrolled (a person left with no template cannot be
found: their probes are misses); a mated probe without a face is a miss; a non-mated probe without a face is a
correct rejection (it scores the lowest similarity)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facelens.errors import FacelensError
from facelens.evaluate.embeddings import FTE_SCORE, EmbeddingSet, embed_images
from facelens.evaluate.metrics import (
    DEFAULT_FPIRS,
    IdentificationMetrics,
    best_per_identity,
    identification_metrics,
    ranks_of_truth,
)
from facelens.evaluate.protocols import IdentificationSplit


@dataclass(frozen=True)
class IdentificationRun:
    metrics: IdentificationMetrics
    mated_top: np.ndarray  # best similarity of each mated probe
    non_mated_top: np.ndarray
    failures: dict[str, str]
    mated_correct: np.ndarray | None = None  # whether each mated probe's best identity is its own


def evaluate_identification(
    split: IdentificationSplit, pipeline=None, embeddings: EmbeddingSet | None = None, fpirs=DEFAULT_FPIRS,
    progress=None, similarity: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> IdentificationRun:
    """``similarity(probes, gallery)`` scores probe rows against gallery rows (default: the dot product of unit
    vectors); another tool's measure (minus a distance, say) can be evaluated on the same split."""
    images = [img for _, img in split.gallery + split.mated + split.non_mated]
    emb = embed_images(images, pipeline=pipeline, into=embeddings, progress=progress)
    enrolled = [(person, emb.get(img)) for person, img in split.gallery if emb.get(img) is not None]
    if not enrolled:
        raise FacelensError("no gallery image has a detectable face; nothing to search")
    gallery_ids = np.array([p for p, _ in enrolled])
    gallery = np.stack([v for _, v in enrolled])
    dim = gallery.shape[1]

    def search(probes):
        vectors = [emb.get(img) for _, img in probes]
        fte = np.array([v is None for v in vectors], bool)
        mat = np.stack([v if v is not None else np.zeros(dim, np.float32) for v in vectors]) if probes else np.zeros((0, dim))
        sims = mat @ gallery.T if similarity is None else similarity(mat, gallery)
        # a probe without a face scores below every real similarity
        sims[fte] = FTE_SCORE if similarity is None else min(FTE_SCORE, float(sims.min(initial=0.0)) - 1.0)
        return best_per_identity(sims, gallery_ids), fte

    (mated_scores, ids), mated_fte = search(split.mated)
    (non_mated_scores, _), nm_fte = search(split.non_mated)
    column = {ident: j for j, ident in enumerate(ids)}
    truth = np.array([column.get(p, -1) for p, _ in split.mated])
    truth[mated_fte] = -1
    metrics = identification_metrics(
        mated_scores, truth, non_mated_scores, n_gallery_images=len(enrolled), fpirs=fpirs,
        n_fte=int(mated_fte.sum() + nm_fte.sum() + len(split.gallery) - len(enrolled)),
    )
    used = set(images)
    correct = ranks_of_truth(mated_scores, truth) == 1  # as the metrics count it (ties pessimistic)
    return IdentificationRun(metrics, mated_scores.max(axis=1), non_mated_scores.max(axis=1),
                             {k: v for k, v in emb.failures.items() if k in used}, correct)
