"""Verification evaluation end to end: pairs → embeddings (once per image) → scores → metrics and report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facelens.errors import FacelensError
from facelens.evaluate.embeddings import FTE_SCORE, EmbeddingSet, embed_images
from facelens.evaluate.metrics import DEFAULT_FARS, VerificationMetrics, threshold_for_fmr, verification_metrics
from facelens.evaluate.protocols import PairSet

FTE_POLICIES = ("reject", "exclude")


@dataclass(frozen=True)
class ScoredPairs:
    """Similarity per pair (``FTE_SCORE`` where an image failed to enrol), labels, folds and the FTE mask."""

    scores: np.ndarray
    labels: np.ndarray
    fte: np.ndarray
    folds: np.ndarray | None
    failures: dict[str, str]

    def kept(self, fte_policy: str) -> ScoredPairs:
        """Pairs scored under ``fte_policy``: ``reject`` keeps FTE pairs (a genuine one is a false non-match, an
        impostor one a correct rejection); ``exclude`` drops them (they are still counted)."""
        if fte_policy not in FTE_POLICIES:
            raise FacelensError(f"unknown failure-to-enrol policy {fte_policy!r}: use reject or exclude")
        if fte_policy == "reject":
            return self
        keep = ~self.fte
        return ScoredPairs(self.scores[keep], self.labels[keep], self.fte[keep],
                           None if self.folds is None else self.folds[keep], self.failures)


def score_pairs(pairs: PairSet, embeddings: EmbeddingSet | None = None, pipeline=None, progress=None) -> ScoredPairs:
    emb = embed_images(pairs.images(), pipeline=pipeline, into=embeddings, progress=progress)
    scores, fte = emb.pair_scores((p.a, p.b) for p in pairs.pairs)
    used = set(pairs.images())
    return ScoredPairs(scores, pairs.labels, fte, pairs.folds, {k: v for k, v in emb.failures.items() if k in used})


def evaluate_scored(scored: ScoredPairs, fte_policy: str = "reject", fars=DEFAULT_FARS) -> VerificationMetrics:
    """Verification figures for scored pairs, with failures to enrol handled by ``fte_policy``."""
    if fte_policy == "reject":
        how = (f"reject: pairs with an image without a usable face are kept with similarity {FTE_SCORE:g} "
               "(genuine = false non-match, impostor = correct rejection)")
    else:
        how = "exclude: pairs with an image without a usable face are left out"
    s = scored.kept(fte_policy)
    return verification_metrics(s.scores, s.labels, s.folds, fars, n_fte_pairs=int(scored.fte.sum()), fte_policy=how)


def verification_report(
    scored: ScoredPairs, metrics: VerificationMetrics, out_dir: str | Path, title: str, model_id: str,
    calibration=None, extra: dict | None = None,
) -> Path:
    """JSON + PNG plots + self-contained HTML for one verification run."""
    from facelens.evaluate import report

    s = scored.kept("exclude")  # plots show real similarities only; FTE pairs are reported in the table
    figures = {
        "roc": report.plot_roc(s.scores, s.labels),
        "det": report.plot_det(s.scores, s.labels),
        "scores": report.plot_scores(s.scores, s.labels, metrics.best_threshold),
    }
    results = {"model_id": model_id, "metrics": metrics.to_dict(), "failures_to_enrol": scored.failures, **(extra or {})}
    if calibration is not None:
        llr = calibration.log_lr(s.scores)
        figures["tippett"] = report.plot_tippett(llr, s.labels)
    summary = report.flatten({"model": model_id, **metrics.to_dict()})
    notes = [f"{len(scored.failures)} image(s) failed to enrol; {metrics.n_fte_pairs} pair(s) affected, scored as: "
             f"{metrics.fte_policy}"]
    notes += [f"TAR at FAR {k} is not demonstrable with {metrics.n_impostor} impostor pairs (needs ≥ 1/FAR)"
              for k, ok in metrics.far_resolvable.items() if not ok]
    return report.write_report(out_dir, title, results, figures, {"Summary": summary}, notes)


def fmr_threshold(scored: ScoredPairs, target: float) -> float:
    """Threshold giving ``target`` FMR on these impostor pairs (FTE impostors counted as rejections)."""
    return threshold_for_fmr(scored.scores[~scored.labels], target)
