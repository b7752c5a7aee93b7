"""Decisions from similarities: verification threshold, and open-set thresholds that follow the gallery's size.

Each embedding model ships a small measured profile (``facelens/data/<model_id>.json``, written by
``scripts/measure_thresholds.py``): the verification threshold chosen on LFW DevTest pairs, and the impostor
score distribution (empirical quantiles plus an exponential tail fitted above the 99th percentile) that maps a
target false-match rate (FMR) to a similarity. For a gallery of N faces a stranger is named when any of N
impostor comparisons clears the threshold, so FPIR ≈ 1 − (1 − FMR)^N; we solve that for FMR.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from facelens.errors import FacelensError


@dataclass(frozen=True)
class ModelProfile:
    model_id: str
    verify_threshold: float
    fmr_grid: tuple[float, ...]  # descending FMRs
    fmr_thresholds: tuple[float, ...]  # similarity giving each FMR
    tail_start: float
    tail_mass: float
    tail_scale: float
    notes: dict

    def threshold_for_fmr(self, fmr: float) -> float:
        """Similarity at which impostor pairs match with probability ``fmr``."""
        if not 0.0 < fmr < 1.0:
            raise ValueError(f"FMR must be in (0, 1), got {fmr}")
        grid = np.log10(self.fmr_grid)
        if fmr >= self.fmr_grid[-1]:
            return float(np.interp(math.log10(fmr), grid[::-1], np.asarray(self.fmr_thresholds)[::-1]))
        # beyond what the measured pairs can show: exponential tail P(S > t) = mass · exp(-(t - start) / scale)
        return float(self.tail_start + self.tail_scale * math.log(self.tail_mass / fmr))

    def fmr_at(self, threshold: float) -> float:
        thresholds = np.asarray(self.fmr_thresholds)
        if threshold <= thresholds[-1]:
            return float(10 ** np.interp(threshold, thresholds, np.log10(self.fmr_grid)))
        return float(self.tail_mass * math.exp(-(threshold - self.tail_start) / self.tail_scale))


@lru_cache(maxsize=None)
def profile(model_id: str) -> ModelProfile:
    """The model's own measured profile (``<model_id>.json``), else that of its base model (before any ``+``)."""
    for name in dict.fromkeys((model_id, model_id.split("+")[0])):
        try:
            text = resources.files("facelens.data").joinpath(f"{name}.json").read_text()
            break
        except FileNotFoundError:
            continue
    else:
        raise FacelensError(
            f"no measured threshold profile for model {model_id!r}; pass an explicit threshold"
        )
    raw = json.loads(text)
    return ModelProfile(
        model_id=name,
        verify_threshold=raw["verify_threshold"],
        fmr_grid=tuple(raw["impostor"]["fmr"]),
        fmr_thresholds=tuple(raw["impostor"]["threshold"]),
        tail_start=raw["impostor"]["tail_start"],
        tail_mass=raw["impostor"]["tail_mass"],
        tail_scale=raw["impostor"]["tail_scale"],
        notes=raw.get("notes", {}),
    )


def fmr_for_fpir(fpir: float, gallery_size: int) -> float:
    """Per-comparison FMR that keeps the open-set false-positive identification rate at ``fpir``."""
    if not 0.0 < fpir < 1.0:
        raise ValueError(f"FPIR must be in (0, 1), got {fpir}")
    return -math.expm1(math.log1p(-fpir) / max(gallery_size, 1))


def threshold_for_fpir(model_id: str, fpir: float, gallery_size: int) -> float:
    return profile(model_id).threshold_for_fmr(fmr_for_fpir(fpir, gallery_size))


def verify_threshold(model_id: str) -> float:
    return profile(model_id).verify_threshold


def similarity_to_distance(similarity: float) -> float:
    """Euclidean distance between unit vectors with this cosine similarity."""
    return math.sqrt(max(0.0, 2.0 - 2.0 * similarity))


#: Default open-set false-positive identification rate (share of strangers given some enrolled name).
DEFAULT_FPIR = 0.01


@dataclass(frozen=True)
class ThresholdPolicy:
    """How a similarity threshold is chosen — the one place every door (verify, identify, enrol duplicate checks,
    video, eval) turns a user's wish into a number:

    - ``similarity``: a fixed cosine similarity;
    - ``fmr``: the similarity at which impostor pairs match at this rate (the model's measured profile);
    - ``fpir``: the share of strangers given some enrolled name, for a gallery of ``gallery_size`` faces;
    - none of them: the model's measured verification threshold (LFW DevTest accuracy).

    ``min_quality`` (open set): a probe whose face-quality score (:mod:`facelens.analyze.quality`: sharpness,
    exposure, size, pose) is below it is never named, whatever its similarity. Off by default because on LFW it
    only costs: `python benchmarks/accuracy.py` measures FNIR at FPIR 1 % with and without it, and the gate chosen
    on the LFW people outside the identification subset (:func:`fit_quality_gate`) is no gate at all — low quality
    lowers the genuine scores, not the impostor ones, so the gate drops mostly right answers.
    """

    similarity: float | None = None
    fmr: float | None = None
    fpir: float | None = None
    min_quality: float | None = None

    def __post_init__(self) -> None:
        if sum(v is not None for v in (self.similarity, self.fmr, self.fpir)) > 1:
            raise ValueError("give at most one of a fixed similarity, a target FMR or a target FPIR")
        for name in ("fmr", "fpir"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value < 1.0:
                raise ValueError(f"{name.upper()} must be in (0, 1), got {value}")
        if self.min_quality is not None and not 0.0 <= self.min_quality <= 1.0:
            raise ValueError(f"min_quality must be in [0, 1], got {self.min_quality}")

    @classmethod
    def for_verify(cls, threshold: float | None = None, fmr: float | None = None) -> ThresholdPolicy:
        """1:1 comparison: a fixed similarity wins over a target FMR; neither = the measured verify threshold."""
        return cls(similarity=threshold) if threshold is not None else cls(fmr=fmr)

    @classmethod
    def for_identify(cls, threshold: float | None = None, fpir: float | None = DEFAULT_FPIR,
                     min_quality: float | None = None) -> ThresholdPolicy:
        """Open set: a fixed similarity wins over a target FPIR (1 % by default) for the gallery's size; probes of
        quality below ``min_quality`` stay unknown."""
        if threshold is not None:
            return cls(similarity=threshold, min_quality=min_quality)
        return cls(fpir=DEFAULT_FPIR if fpir is None else fpir, min_quality=min_quality)

    @property
    def mode(self) -> str:
        if self.similarity is not None:
            return "similarity"
        if self.fmr is not None:
            return "fmr"
        return "fpir" if self.fpir is not None else "verify"

    def threshold(self, model_id: str, gallery_size: int | None = None) -> float:
        """The similarity threshold for this model (and, for ``fpir``, a gallery of ``gallery_size`` faces)."""
        if self.similarity is not None:
            return float(self.similarity)
        if self.fmr is not None:
            return profile(model_id).threshold_for_fmr(self.fmr)
        if self.fpir is not None:
            return threshold_for_fpir(model_id, self.fpir, max(gallery_size or 1, 1))
        return verify_threshold(model_id)


def open_set_names(candidates: list[list], threshold: float, quality: np.ndarray | list[float] | None = None,
                   min_quality: float | None = None) -> tuple[list[str | None], list[float]]:
    """Per probe, the best candidate's name when its score clears ``threshold`` (else None) and that score.

    With ``min_quality``, a probe whose ``quality`` score is below it (or unknown: NaN) gets None too."""
    if min_quality is not None:
        if quality is None or len(quality) != len(candidates):
            raise ValueError("a quality gate needs one quality score per probe")
        sharp_enough = np.asarray(quality, np.float64) >= min_quality  # NaN (not measured) fails the gate
    names: list[str | None] = []
    scores: list[float] = []
    for i, ranked in enumerate(candidates):
        best = ranked[0] if ranked else None
        named = best is not None and best.score >= threshold and (min_quality is None or bool(sharp_enough[i]))
        names.append(best.name if named else None)
        scores.append(best.score if best is not None else 0.0)
    return names, scores


def quality_gate_fnir(mated_scores: np.ndarray, mated_correct: np.ndarray, mated_quality: np.ndarray,
                      non_mated_scores: np.ndarray, non_mated_quality: np.ndarray, min_quality: float,
                      fpir: float = DEFAULT_FPIR) -> float:
    """FNIR at ``fpir`` when probes below ``min_quality`` are never named: the threshold is chosen on the
    non-mated probes that pass the gate (a gated stranger is a correct rejection), and a gated mated probe is a
    miss. Scores are each probe's best gallery score; ``mated_correct`` says whether that was the right person."""
    from facelens.evaluate.metrics import threshold_for_fmr

    def gated(scores, quality) -> np.ndarray:
        return np.where(np.asarray(quality) >= min_quality, np.asarray(scores, np.float64), -np.inf)

    nm = gated(non_mated_scores, non_mated_quality)
    threshold = threshold_for_fmr(np.where(np.isfinite(nm), nm, -1e9), fpir)  # gated strangers still count
    named = (gated(mated_scores, mated_quality) >= threshold) & np.asarray(mated_correct, bool)
    return float(1.0 - named.mean())


#: The gates :func:`fit_quality_gate` chooses from (0: none).
QUALITY_GATES = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4)


def fit_quality_gate(mated_scores, mated_correct, mated_quality, non_mated_scores, non_mated_quality,
                     fpir: float = DEFAULT_FPIR, gates=QUALITY_GATES) -> tuple[float, dict[float, float]]:
    """The quality gate with the lowest FNIR at ``fpir`` on an identification set (the smallest on ties) and the
    FNIR of every gate tried."""
    fnir = {g: quality_gate_fnir(mated_scores, mated_correct, mated_quality, non_mated_scores, non_mated_quality,
                                 g, fpir) for g in gates}
    best = min(fnir.values())
    return min(g for g, v in fnir.items() if v <= best + 1e-12), fnir
