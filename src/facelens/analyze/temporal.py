"""Expressions over time, on plain sequences of per-frame probability vectors (one sequence per track).

``smooth`` (exponential or sliding window), ``summarize`` (share of time per label, dominant label) and
``episodes`` (onset, apex and offset of each non-neutral expression, the "spotting" task) take a
``[T, C]`` array plus optional timestamps, so video code can call them per track and any frame sequence works.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facelens.analyze.models import EXPRESSIONS


def smooth(probs: np.ndarray, method: str = "ema", alpha: float = 0.4, window: int = 5) -> np.ndarray:
    """Smoothed ``[T, C]`` probabilities. ``ema``: p'_t = alpha*p_t + (1-alpha)*p'_{t-1} (causal, for streams);
    ``window``: centred moving average over ``window`` frames (offline). Rows still sum to 1."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2:
        raise ValueError(f"expected [frames, classes] probabilities, got shape {p.shape}")
    if len(p) == 0:
        return p.astype(np.float32)
    if method == "ema":
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        out = np.empty_like(p)
        out[0] = p[0]
        for t in range(1, len(p)):
            out[t] = alpha * p[t] + (1 - alpha) * out[t - 1]
    elif method == "window":
        if window < 1:
            raise ValueError("window must be >= 1")
        half = window // 2
        cumsum = np.vstack([np.zeros((1, p.shape[1])), np.cumsum(p, axis=0)])
        idx = np.arange(len(p))
        lo, hi = np.clip(idx - half, 0, len(p)), np.clip(idx + half + 1, 0, len(p))
        out = (cumsum[hi] - cumsum[lo]) / (hi - lo)[:, None]
    else:
        raise ValueError(f"unknown smoothing {method!r}: use ema or window")
    return out.astype(np.float32)


def _times(n: int, timestamps: Sequence[float] | None, fps: float | None) -> np.ndarray:
    if timestamps is not None:
        t = np.asarray(timestamps, np.float64)
        if len(t) != n:
            raise ValueError(f"{len(t)} timestamps for {n} frames")
        return t
    return np.arange(n, dtype=np.float64) / (fps or 1.0)


def _durations(t: np.ndarray) -> np.ndarray:
    """Time each frame stands for: the gap to the next frame (the last frame gets the median gap)."""
    if len(t) < 2:
        return np.ones(len(t))
    gaps = np.diff(t)
    return np.append(gaps, np.median(gaps))


@dataclass(frozen=True)
class Summary:
    """Share of time per label (by per-frame top label), mean probabilities and the dominant label."""

    dominant: str
    shares: dict[str, float]
    mean_probabilities: dict[str, float]
    frames: int
    duration: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "dominant": self.dominant,
            "shares": {k: round(v, 4) for k, v in self.shares.items()},
            "mean_probabilities": {k: round(v, 4) for k, v in self.mean_probabilities.items()},
            "frames": self.frames,
            "duration": round(self.duration, 3),
        }


def summarize(
    probs: np.ndarray,
    labels: Sequence[str] = EXPRESSIONS,
    timestamps: Sequence[float] | None = None,
    fps: float | None = None,
) -> Summary:
    """Video- or person-level summary of a probability sequence (concatenate a person's tracks first)."""
    p = np.asarray(probs, np.float64)
    if len(p) == 0:
        raise ValueError("cannot summarise an empty sequence")
    weights = _durations(_times(len(p), timestamps, fps))
    top = p.argmax(axis=1)
    shares = np.array([weights[top == k].sum() for k in range(len(labels))]) / weights.sum()
    mean = (p * weights[:, None]).sum(axis=0) / weights.sum()
    return Summary(
        dominant=labels[int(np.argmax(shares))],
        shares={label: float(s) for label, s in zip(labels, shares)},
        mean_probabilities={label: float(m) for label, m in zip(labels, mean)},
        frames=len(p),
        duration=float(weights.sum()),
    )


@dataclass(frozen=True)
class Episode:
    """One expression episode: frame indices (inclusive) and times of onset, apex (peak probability) and offset."""

    label: str
    onset: int
    apex: int
    offset: int
    peak: float
    onset_time: float
    apex_time: float
    offset_time: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "onset": self.onset,
            "apex": self.apex,
            "offset": self.offset,
            "peak": round(self.peak, 4),
            "onset_time": round(self.onset_time, 3),
            "apex_time": round(self.apex_time, 3),
            "offset_time": round(self.offset_time, 3),
        }


def episodes(
    probs: np.ndarray,
    labels: Sequence[str] = EXPRESSIONS,
    neutral: str | None = "neutral",
    enter: float = 0.5,
    exit: float = 0.3,
    min_frames: int = 2,
    timestamps: Sequence[float] | None = None,
    fps: float | None = None,
) -> list[Episode]:
    """Spot episodes of each non-neutral label with hysteresis: an episode starts when the label's probability
    reaches ``enter`` and ends after the last frame it stays at or above ``exit``. The onset is moved back to the
    first frame of the rise above ``exit``, the apex is the frame of peak probability. Episodes shorter than
    ``min_frames`` are dropped. Smooth noisy sequences first (:func:`smooth`). Sorted by onset."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or p.shape[1] != len(labels):
        raise ValueError(f"expected [frames, {len(labels)}] probabilities, got shape {p.shape}")
    if not 0 <= exit <= enter <= 1:
        raise ValueError("need 0 <= exit <= enter <= 1")
    t = _times(len(p), timestamps, fps)
    found: list[Episode] = []
    for k, label in enumerate(labels):
        if label == neutral:
            continue
        series = p[:, k]
        i = 0
        while i < len(series):
            if series[i] < enter:
                i += 1
                continue
            start = i
            while start > 0 and series[start - 1] >= exit:
                start -= 1
            end = i
            while end + 1 < len(series) and series[end + 1] >= exit:
                end += 1
            if end - start + 1 >= min_frames:
                apex = start + int(np.argmax(series[start : end + 1]))
                found.append(
                    Episode(
                        label, start, apex, end, float(series[apex]), float(t[start]), float(t[apex]), float(t[end])
                    )
                )
            i = end + 1
    return sorted(found, key=lambda e: (e.onset, e.label))
