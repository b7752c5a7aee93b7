"""Fairness audits from a table of attributes per image or per identity (any columns).

Verification: per-group FMR and FNMR at one operating threshold and the max/min ratio across groups (the
"demographic differentials" of NIST FRVT part 8). A genuine pair belongs to its person's group; an impostor pair
to a group only when both images share it (cross-group impostors are reported as their own row).
Classifiers: per-group accuracy and per-class recall. Datasets: representational bias (group shares) and
stereotypical bias (association between class and group: Cramér's V and per-cell lift P(c|g)/P(c)).
Groups with fewer than ``min_count`` samples are flagged (``too_small``), never dropped.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.stats import binomtest, chi2_contingency
from sklearn.metrics import recall_score

from facelens.errors import FacelensError

#: Default smallest group to judge: with 30 trials a rate's 95% interval is about ±18 points at 50%.
MIN_COUNT = 30
CROSS_GROUP = "(cross-group impostors)"


def read_attributes(path: str | Path, key: str | None = None) -> tuple[str, dict[str, dict[str, str]]]:
    """CSV of attributes: the first column (or ``key``) names an image path or an identity; every other column is
    an attribute. Returns (key column, {key value: {attribute: value}})."""
    path = Path(path)
    if not path.is_file():
        raise FacelensError(f"attribute file {path} not found")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or len(reader.fieldnames) < 2:
            raise FacelensError(f"{path}: need a key column (image or identity) and at least one attribute column")
        key = key or reader.fieldnames[0]
        if key not in reader.fieldnames:
            raise FacelensError(f"{path}: no column {key!r}")
        return key, {row[key]: {k: v for k, v in row.items() if k != key} for row in reader}


def _interval(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(k, n).proportion_ci(0.95, method="exact")
    return float(ci.low), float(ci.high)


def _ratio(values: Sequence[float]) -> float | None:
    """max/min of the rates; None when the minimum is 0 (the ratio is unbounded: say so, don't invent it)."""
    if not values:
        return None
    lo, hi = min(values), max(values)
    if lo == 0:
        return None if hi > 0 else 1.0
    return hi / lo


def verification_by_group(
    scores, labels, groups_a: Sequence[str | None], groups_b: Sequence[str | None], threshold: float,
    min_count: int = MIN_COUNT,
) -> dict:
    """Per-group FMR/FNMR at ``threshold``; ``groups_a/b`` are each pair's two images' group (None = unknown)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, bool)
    match = scores >= threshold
    rows: dict[str, dict] = {}

    def row(g: str) -> dict:
        return rows.setdefault(g, {"group": g, "n_genuine": 0, "false_non_matches": 0, "n_impostor": 0, "false_matches": 0})

    for m, y, ga, gb in zip(match, labels, groups_a, groups_b):
        if ga is None or gb is None:
            continue
        if y:
            r = row(ga if ga == gb else CROSS_GROUP)
            r["n_genuine"] += 1
            r["false_non_matches"] += int(not m)
        else:
            r = row(ga if ga == gb else CROSS_GROUP)
            r["n_impostor"] += 1
            r["false_matches"] += int(m)
    out = []
    for g in sorted(rows):
        r = rows[g]
        r["fnmr"] = r["false_non_matches"] / r["n_genuine"] if r["n_genuine"] else float("nan")
        r["fmr"] = r["false_matches"] / r["n_impostor"] if r["n_impostor"] else float("nan")
        r["fnmr_ci95"] = _interval(r["false_non_matches"], r["n_genuine"])
        r["fmr_ci95"] = _interval(r["false_matches"], r["n_impostor"])
        r["too_small"] = r["n_genuine"] < min_count or r["n_impostor"] < min_count
        out.append(r)
    judged = [r for r in out if not r["too_small"] and r["group"] != CROSS_GROUP]
    return {
        "threshold": float(threshold),
        "min_count": min_count,
        "groups": out,
        "fmr_ratio": _ratio([r["fmr"] for r in judged]),
        "fnmr_ratio": _ratio([r["fnmr"] for r in judged]),
        "judged_groups": [r["group"] for r in judged],
        "flagged_groups": [r["group"] for r in out if r["too_small"]],
    }


def classifier_by_group(y_true, y_pred, groups, min_count: int = MIN_COUNT) -> dict:
    """Per-group accuracy and recall per class of a classifier (e.g. expression), and max/min ratios."""
    y_true, y_pred, groups = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    classes = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    out = []
    for g in sorted(set(groups.tolist())):
        m = groups == g
        recalls = recall_score(y_true[m], y_pred[m], labels=classes, average=None, zero_division=np.nan)
        present = {c: int((y_true[m] == c).sum()) for c in classes}
        out.append({
            "group": g,
            "n": int(m.sum()),
            "accuracy": float((y_true[m] == y_pred[m]).mean()),
            "recall": {c: (float(r) if present[c] else None) for c, r in zip(classes, recalls)},
            "too_small": bool(m.sum() < min_count),
        })
    judged = [r for r in out if not r["too_small"]]
    accs = [r["accuracy"] for r in judged]
    error_ratio = _ratio([1 - a for a in accs])
    return {
        "classes": classes,
        "groups": out,
        "accuracy_gap": (max(accs) - min(accs)) if accs else None,
        "error_ratio": error_ratio,
        "flagged_groups": [r["group"] for r in out if r["too_small"]],
    }


def dataset_bias(classes, groups, min_count: int = MIN_COUNT) -> dict:
    """Representational bias (each group's share, overall and within each class) and stereotypical bias: Cramér's
    V of the class × group table (0 = independent, 1 = class determines group) with its chi-square p-value, and the
    lift P(class | group) / P(class) of every cell (1 = no association)."""
    classes, groups = np.asarray(classes), np.asarray(groups)
    cls = sorted(set(classes.tolist()))
    grp = sorted(set(groups.tolist()))
    table = np.array([[int(((classes == c) & (groups == g)).sum()) for g in grp] for c in cls])
    n = table.sum()
    shares = {g: float(table[:, j].sum() / n) for j, g in enumerate(grp)}
    share_values = list(shares.values())
    if len(cls) > 1 and len(grp) > 1:
        chi2, p, _, _ = chi2_contingency(table, correction=False)
        v = math.sqrt(chi2 / (n * (min(table.shape) - 1)))
    else:
        p, v = float("nan"), 0.0
    p_class = table.sum(axis=1) / n
    lift = {
        c: {g: (float(table[i, j] / table[:, j].sum() / p_class[i]) if table[:, j].sum() else None) for j, g in enumerate(grp)}
        for i, c in enumerate(cls)
    }
    return {
        "n": int(n),
        "group_counts": {g: int(table[:, j].sum()) for j, g in enumerate(grp)},
        "group_shares": shares,
        "share_ratio": _ratio(share_values),
        "group_shares_by_class": {c: {g: float(table[i, j] / table[i].sum()) for j, g in enumerate(grp)} for i, c in enumerate(cls)},
        "cramers_v": float(v),
        "chi2_p_value": float(p),
        "lift": lift,
        "flagged_groups": [g for j, g in enumerate(grp) if table[:, j].sum() < min_count],
    }
