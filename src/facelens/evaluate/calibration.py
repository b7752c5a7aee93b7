"""Calibration: similarity → likelihood ratio (LR) and P(same person), fitted on labelled pairs and stored per
embedding model, so ``verify``/``identify`` can report evidence strength next to the raw score.

Two maps, both scikit-learn estimators: logistic regression (smooth, two parameters, extrapolates) and isotonic
regression (PAV: monotone, non-parametric, flat outside the data). The fitted posterior is converted to an LR by
removing the training set's own genuine/impostor ratio, so any prior can be applied afterwards.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facelens.errors import FacelensError
from facelens.evaluate.metrics import cllr, cllr_min, threshold_for_fmr

METHODS = ("logistic", "isotonic")

#: ENFSI (2015) verbal equivalents, as upper bounds of LR for each phrase (same rungs for LR < 1, mirrored).
_VERBAL = (
    (1.0, "no support for either proposition"),
    (10.0, "weak support"),
    (100.0, "moderate support"),
    (1_000.0, "moderately strong support"),
    (10_000.0, "strong support"),
    (1_000_000.0, "very strong support"),
    (math.inf, "extremely strong support"),
)


def verbal_scale(lr: float) -> str:
    """ENFSI-style verbal expression of a likelihood ratio for "same person" versus "different persons"."""
    if not lr > 0 or math.isnan(lr):
        raise ValueError(f"a likelihood ratio must be positive, got {lr}")
    if lr == 1.0:
        return _VERBAL[0][1]
    strength = lr if lr > 1 else 1.0 / lr
    phrase = next(p for bound, p in _VERBAL[1:] if strength < bound)
    return f"{phrase} for {'same person' if lr > 1 else 'different persons'}"


def calibration_dir() -> Path:
    env = os.environ.get("FACELENS_CALIBRATION_DIR")
    return Path(env) if env else Path.home() / ".config" / "facelens" / "calibration"


def _file_for(model_id: str, directory: str | Path | None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._+-]", "_", model_id)
    return Path(directory or calibration_dir()) / f"{safe}.json"


@dataclass(frozen=True)
class Calibration:
    """A fitted score → LR map for one embedding model."""

    model_id: str
    method: str
    train_log_odds: float  # ln(n_genuine / n_impostor) of the fitting pairs (removed to get LRs)
    coef: float = 0.0  # logistic: posterior log-odds = coef * s + intercept
    intercept: float = 0.0
    knots_x: tuple[float, ...] = ()  # isotonic: posterior = interp(s, knots_x, knots_y)
    knots_y: tuple[float, ...] = ()
    prob_floor: float = 0.0  # isotonic posteriors are clipped to [floor, 1 - floor] (1/(n+1): the data's resolution)
    impostor_scores: tuple[float, ...] = ()  # the fitting impostors' similarities, sorted (quantiles beyond 2,000)
    n_genuine: int = 0
    n_impostor: int = 0
    cllr: float = float("nan")  # on the fitting pairs
    cllr_min: float = float("nan")

    def log_lr(self, similarity) -> np.ndarray:
        """Natural-log likelihood ratio for each similarity."""
        s = np.asarray(similarity, dtype=np.float64)
        if self.method == "logistic":
            post_log_odds = self.coef * s + self.intercept
        else:
            p = np.clip(np.interp(s, self.knots_x, self.knots_y), self.prob_floor, 1 - self.prob_floor)
            post_log_odds = np.log(p) - np.log1p(-p)
        return post_log_odds - self.train_log_odds

    def apply(self, similarity, prior: float = 0.5):
        """(P(same person), likelihood ratio) for a similarity or an array of them, at ``prior`` P(same)."""
        llr = self.log_lr(similarity)
        prob = 1.0 / (1.0 + np.exp(-(llr + math.log(prior / (1 - prior)))))
        lr = np.exp(llr)
        if np.ndim(similarity) == 0:
            return float(prob), float(lr)
        return prob, lr

    def threshold_for_fmr(self, target: float) -> float:
        """Smallest similarity at which at most ``target`` of the fitting impostor pairs matched."""
        if not self.impostor_scores:
            raise FacelensError("this calibration stores no impostor scores; refit it with facelens eval calibrate")
        if not 0.0 < target < 1.0:
            raise FacelensError(f"target FMR must be in (0, 1), got {target:g}")
        if target * self.n_impostor < 1.0 - 1e-9:
            raise FacelensError(
                f"target FMR {target:g} is below what {self.n_impostor} impostor pairs can show "
                f"(lowest {1.0 / self.n_impostor:.1e}); calibrate on more impostor pairs"
            )
        return threshold_for_fmr(np.asarray(self.impostor_scores), target)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> Calibration:
        fields = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**fields)

    def save(self, directory: str | Path | None = None) -> Path:
        """Write ``<model_id>.json`` under ``directory`` (default ``$FACELENS_CALIBRATION_DIR`` or
        ``~/.config/facelens/calibration``)."""
        path = _file_for(self.model_id, directory)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(path)
        return path


def load_calibration(model_id: str, directory: str | Path | None = None) -> Calibration | None:
    """The stored calibration for ``model_id``, or None when there is none."""
    path = _file_for(model_id, directory)
    if not path.is_file():
        return None
    try:
        return Calibration.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise FacelensError(f"calibration file {path} is damaged ({exc}); delete it and run facelens eval calibrate") from exc


MAX_STORED_IMPOSTORS = 2000


def _impostor_summary(impostors: np.ndarray) -> tuple[float, ...]:
    """All impostor similarities (sorted), or 2,000 evenly spaced quantiles of them when there are more."""
    values = np.sort(impostors)
    if values.size > MAX_STORED_IMPOSTORS:
        values = np.quantile(values, np.linspace(0, 1, MAX_STORED_IMPOSTORS))
    return tuple(float(v) for v in values)


def fit_calibration(scores, labels, model_id: str, method: str = "logistic") -> Calibration:
    """Fit a score → LR map on labelled pairs (``labels`` True = same person)."""
    if method not in METHODS:
        raise FacelensError(f"unknown calibration method {method!r}: use {' or '.join(METHODS)}")
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    n_gen, n_imp = int(y.sum()), int((~y).sum())
    if n_gen < 2 or n_imp < 2:
        raise FacelensError(f"calibration needs genuine and impostor pairs (got {n_gen} and {n_imp})")
    base = {"model_id": model_id, "method": method, "train_log_odds": math.log(n_gen / n_imp),
            "n_genuine": n_gen, "n_impostor": n_imp}
    base["impostor_scores"] = _impostor_summary(s[~y])
    if method == "logistic":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1e6).fit(s[:, None], y)
        cal = Calibration(**base, coef=float(model.coef_[0, 0]), intercept=float(model.intercept_[0]))
    else:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y.astype(float))
        cal = Calibration(
            **base,
            knots_x=tuple(float(v) for v in iso.X_thresholds_),
            knots_y=tuple(float(v) for v in iso.y_thresholds_),
            prob_floor=1.0 / (s.size + 1),
        )
    return Calibration(**{**cal.to_dict(), "cllr": cllr(cal.log_lr(s), y), "cllr_min": cllr_min(s, y)})


def reliability(prob, labels, n_bins: int = 10) -> dict:
    """Reliability table of predicted P(same) against observed frequency, in equal-width bins, and the expected
    calibration error (ECE: count-weighted mean |predicted − observed|)."""
    p = np.asarray(prob, dtype=np.float64)
    y = np.asarray(labels).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        m = which == b
        if m.any():
            rows.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": int(m.sum()),
                         "predicted": float(p[m].mean()), "observed": float(y[m].mean())})
    ece = sum(r["n"] * abs(r["predicted"] - r["observed"]) for r in rows) / max(p.size, 1)
    return {"bins": rows, "ece": float(ece)}


def calibrated_fields(similarity: float, model_id: str, prior: float = 0.5, directory: str | Path | None = None) -> dict:
    """What ``verify``/``identify`` add next to a raw similarity when a calibration for ``model_id`` is stored:
    ``probability`` (P(same person) at ``prior``), ``likelihood_ratio`` and its ``verbal`` scale; {} otherwise."""
    cal = load_calibration(model_id, directory)
    if cal is None:
        return {}
    prob, lr = cal.apply(float(similarity), prior=prior)
    return {"probability": round(prob, 6), "likelihood_ratio": float(f"{lr:.4g}"), "verbal": verbal_scale(max(lr, 1e-300))}
