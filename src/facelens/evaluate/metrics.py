"""Accuracy measures from similarity scores (higher = more alike; a pair matches when ``score >= threshold``).

Verification: ROC/DET (scikit-learn's ``roc_curve``/``det_curve``), AUC, EER, TAR at fixed FAR, accuracy with a
10-fold protocol, and the threshold for a target false-match rate. Identification (NIST 1:N terms): CMC and
open-set FNIR at FPIR. Calibration quality: Cllr and Cllr_min (PAV, via scikit-learn's IsotonicRegression).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

# scikit-learn is imported inside the functions that use it: `facelens verify` reaches this module (calibration)
# and should not pay for loading scikit-learn and scipy.

DEFAULT_FARS = (1e-2, 1e-3, 1e-4)
DEFAULT_FPIRS = (1e-1, 1e-2)


def _check(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.size} scores but {labels.size} labels")
    if labels.all() or not labels.any():
        raise ValueError("need both genuine (same) and impostor (different) pairs")
    return scores, labels


def threshold_for_fmr(impostor_scores, target: float) -> float:
    """Smallest threshold at which at most ``target`` of the impostor scores match (``score >= threshold``).

    With n impostors the lowest FMR that can be shown is 1/n; below that the threshold is just above the highest
    impostor score (FMR observed as 0, not demonstrated)."""
    imp = np.sort(np.asarray(impostor_scores, dtype=np.float64))[::-1]
    if imp.size == 0:
        raise ValueError("no impostor scores")
    allowed = int(math.floor(target * imp.size + 1e-9))  # how many impostors may match
    if allowed >= imp.size:
        return float(imp[-1])
    return float(np.nextafter(imp[allowed], np.inf))


def rate_at(scores, labels, threshold: float) -> tuple[float, float]:
    """(FMR, FNMR) at ``threshold``."""
    scores, labels = _check(scores, labels)
    match = scores >= threshold
    return float(match[~labels].mean()), float((~match[labels]).mean())


def eer(scores, labels) -> tuple[float, float]:
    """Equal error rate and its threshold, interpolated linearly between ROC points where FNMR crosses FMR."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(*_check(scores, labels)[::-1], drop_intermediate=False)
    fnr = 1.0 - tpr
    diff = fnr - fpr  # decreasing from 1 to -1 along the curve
    i = int(np.flatnonzero(diff <= 0)[0])
    if i == 0 or diff[i] == 0:
        return float((fpr[i] + fnr[i]) / 2), float(thr[i])
    w = diff[i - 1] / (diff[i - 1] - diff[i])
    rate = fpr[i - 1] + w * (fpr[i] - fpr[i - 1])
    t_prev = thr[i - 1] if np.isfinite(thr[i - 1]) else thr[i]
    return float(rate), float(t_prev + w * (thr[i] - t_prev))


def tar_at_far(scores, labels, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the threshold :func:`threshold_for_fmr` gives for ``far`` on these impostors."""
    scores, labels = _check(scores, labels)
    t = threshold_for_fmr(scores[~labels], far)
    return float((scores[labels] >= t).mean()), t


def best_accuracy_threshold(scores, labels) -> tuple[float, float]:
    """(accuracy, threshold) maximising accuracy on these pairs."""
    scores, labels = _check(scores, labels)
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)
    p, n = labels.sum(), (~labels).sum()
    acc = (tpr * p + (1 - fpr) * n) / (p + n)
    i = int(np.argmax(acc))
    t = thr[i] if np.isfinite(thr[i]) else np.nextafter(scores.max(), np.inf)
    return float(acc[i]), float(t)


def kfold_accuracy(scores, labels, folds=None, n_folds: int = 10, seed: int = 0) -> tuple[float, float, str]:
    """Mean and std of accuracy over folds, each judged at the threshold chosen on the other folds.

    Uses the protocol's folds when given (LFW View 2), otherwise stratified random folds with ``seed``."""
    scores, labels = _check(scores, labels)
    if folds is not None:
        folds = np.asarray(folds)
        splits = [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in np.unique(folds)]
        protocol = f"{len(splits)} folds from the pairs file"
    else:
        k = int(min(n_folds, labels.sum(), (~labels).sum()))
        if k < 2:
            raise ValueError(f"cross-validated accuracy needs at least 2 genuine and 2 impostor pairs; got "
                             f"{int(labels.sum())} genuine and {int((~labels).sum())} impostor")
        from sklearn.model_selection import StratifiedKFold

        splits = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(scores, labels))
        protocol = f"stratified {k}-fold, seed {seed}"
    accs = []
    for train, test in splits:
        _, t = best_accuracy_threshold(scores[train], labels[train])
        accs.append(float(((scores[test] >= t) == labels[test]).mean()))
    return float(np.mean(accs)), float(np.std(accs)), protocol


def _log2_1p_exp(x: np.ndarray) -> np.ndarray:
    """log2(1 + e^x), stable for ±inf."""
    return np.logaddexp(0.0, x) / math.log(2.0)


def cllr(llr, labels) -> float:
    """Log-likelihood-ratio cost of natural-log LRs ``llr`` (0 = perfect, 1 = uninformative)."""
    llr = np.asarray(llr, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    return float(0.5 * (_log2_1p_exp(-llr[labels]).mean() + _log2_1p_exp(llr[~labels]).mean()))


def pav_llr(scores, labels) -> np.ndarray:
    """Natural-log LRs of the optimal monotone (PAV) calibration of these scores (the basis of Cllr_min)."""
    scores, labels = _check(scores, labels)
    from sklearn.isotonic import IsotonicRegression

    post = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True).fit_transform(scores, labels.astype(float))
    prior_log_odds = math.log(labels.sum() / (~labels).sum())
    with np.errstate(divide="ignore"):
        return np.log(post) - np.log1p(-post) - prior_log_odds


def cllr_min(scores, labels) -> float:
    """Cllr after the best monotone recalibration: the discrimination part of Cllr."""
    return cllr(pav_llr(scores, labels), labels)


@dataclass(frozen=True)
class VerificationMetrics:
    n_pairs: int
    n_genuine: int
    n_impostor: int
    n_fte_pairs: int  # pairs with an image that failed to enrol (scored as described in `fte_policy`)
    fte_policy: str
    auc: float
    eer: float
    eer_threshold: float
    tar_at_far: dict[str, float]  # "0.001" -> TAR
    far_thresholds: dict[str, float]  # "0.001" -> similarity threshold giving that FAR on these impostors
    far_resolvable: dict[str, bool]  # False when there are fewer than 1/FAR impostors (FAR not demonstrable)
    accuracy: float  # mean over folds
    accuracy_std: float
    accuracy_protocol: str
    best_threshold: float  # accuracy-maximising threshold on all pairs

    def to_dict(self) -> dict:
        return asdict(self)


def _auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(labels, scores)


def far_key(far: float) -> str:
    """Dictionary key for a rate: ``0.01``, ``0.001``, ``0.0001``, ``0.25``."""
    return f"{far:g}"


def verification_metrics(
    scores, labels, folds=None, fars=DEFAULT_FARS, n_fte_pairs: int = 0, fte_policy: str = "none"
) -> VerificationMetrics:
    """All verification figures for one set of scored pairs."""
    scores, labels = _check(scores, labels)
    rate, t_eer = eer(scores, labels)
    acc, acc_std, protocol = kfold_accuracy(scores, labels, folds)
    _, t_best = best_accuracy_threshold(scores, labels)
    tars, thresholds, ok = {}, {}, {}
    for far in fars:
        tar, t = tar_at_far(scores, labels, far)
        tars[far_key(far)], thresholds[far_key(far)] = tar, t
        ok[far_key(far)] = bool((~labels).sum() * far >= 1.0 - 1e-9)
    return VerificationMetrics(
        n_pairs=int(scores.size),
        n_genuine=int(labels.sum()),
        n_impostor=int((~labels).sum()),
        n_fte_pairs=int(n_fte_pairs),
        fte_policy=fte_policy,
        auc=float(_auc(labels, scores)),
        eer=rate,
        eer_threshold=t_eer,
        tar_at_far=tars,
        far_thresholds=thresholds,
        far_resolvable=ok,
        accuracy=acc,
        accuracy_std=acc_std,
        accuracy_protocol=protocol,
        best_threshold=t_best,
    )


# ---------------------------------------------------------------- identification (1:N)


def best_per_identity(similarity: np.ndarray, gallery_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Collapse probe×template similarities to probe×identity (max over each identity's templates)."""
    ids = np.unique(gallery_ids)
    out = np.full((similarity.shape[0], ids.size), -np.inf)
    for j, ident in enumerate(ids):
        out[:, j] = similarity[:, gallery_ids == ident].max(axis=1)
    return out, ids


def ranks_of_truth(identity_scores: np.ndarray, truth_index: np.ndarray) -> np.ndarray:
    """1-based rank of the true identity for each mated probe (ties counted pessimistically). A truth index of
    -1 (probe or person failed to enrol) can never be found: its rank is the gallery size + 1."""
    truth_index = np.asarray(truth_index)
    true = identity_scores[np.arange(len(truth_index)), np.maximum(truth_index, 0)]
    ranks = (identity_scores >= true[:, None]).sum(axis=1)
    return np.where(truth_index < 0, identity_scores.shape[1] + 1, ranks)


def cmc(ranks: np.ndarray, max_rank: int) -> np.ndarray:
    """Cumulative match characteristic: share of mated probes with the truth at rank ≤ r, r = 1..max_rank."""
    ranks = np.asarray(ranks)
    return np.array([(ranks <= r).mean() for r in range(1, max_rank + 1)])


@dataclass(frozen=True)
class IdentificationMetrics:
    n_gallery_people: int
    n_gallery_images: int
    n_mated: int
    n_non_mated: int
    n_fte: int
    cmc: dict[str, float]  # "rank1" ...
    fnir_at_fpir: dict[str, float]
    fpir_thresholds: dict[str, float]
    fpir_resolvable: dict[str, bool]
    cmc_curve: tuple[float, ...]

    def to_dict(self) -> dict:
        return asdict(self)


def fnir_at_threshold(mated_top_scores, mated_top_correct, threshold: float) -> float:
    """Share of mated probes *not* returned correctly at rank 1 above ``threshold``."""
    hit = np.asarray(mated_top_correct, bool) & (np.asarray(mated_top_scores) >= threshold)
    return float(1.0 - hit.mean())


def identification_metrics(
    mated_scores: np.ndarray,
    mated_truth: np.ndarray,
    non_mated_scores: np.ndarray,
    n_gallery_images: int,
    ranks=(1, 5, 10),
    fpirs=DEFAULT_FPIRS,
    n_fte: int = 0,
) -> IdentificationMetrics:
    """``mated_scores``: mated probe × gallery identity similarities; ``mated_truth``: column of each probe's
    identity; ``non_mated_scores``: non-mated probe × gallery identity similarities."""
    rk = ranks_of_truth(mated_scores, mated_truth)
    max_rank = mated_scores.shape[1]
    curve = cmc(rk, max_rank)
    top = mated_scores.max(axis=1)
    correct = rk == 1
    nm_top = non_mated_scores.max(axis=1)
    fnir, thresholds, ok = {}, {}, {}
    for fpir in fpirs:
        t = threshold_for_fmr(nm_top, fpir)
        fnir[far_key(fpir)], thresholds[far_key(fpir)] = fnir_at_threshold(top, correct, t), t
        ok[far_key(fpir)] = bool(nm_top.size * fpir >= 1.0 - 1e-9)
    return IdentificationMetrics(
        n_gallery_people=int(max_rank),
        n_gallery_images=int(n_gallery_images),
        n_mated=len(rk),
        n_non_mated=int(nm_top.size),
        n_fte=int(n_fte),
        cmc={f"rank{r}": float(curve[min(r, max_rank) - 1]) for r in ranks},
        fnir_at_fpir=fnir,
        fpir_thresholds=thresholds,
        fpir_resolvable=ok,
        cmc_curve=tuple(float(v) for v in curve),
    )
