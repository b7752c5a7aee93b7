"""Smoothing, summaries and expression episodes on synthetic sequences with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.analyze.models import EXPRESSIONS
from facelens.analyze.temporal import episodes, smooth, summarize

N = EXPRESSIONS.index("neutral")


def _sequence(events: list[tuple[str, int, int, int]], length: int = 100) -> np.ndarray:
    """Neutral everywhere except triangular bumps (label, onset, apex, offset) that peak at 0.9."""
    probs = np.zeros((length, len(EXPRESSIONS)))
    probs[:, N] = 1.0
    for label, onset, apex, offset in events:
        k = EXPRESSIONS.index(label)
        for t in range(onset, offset + 1):
            # the rise reaches the exit threshold (0.3) exactly at onset and leaves it after offset
            if t <= apex:
                value = 0.3 + 0.6 * (t - onset) / max(apex - onset, 1)
            else:
                value = 0.9 - 0.6 * (t - apex) / max(offset - apex, 1)
            probs[t, k] = value
            probs[t, N] = 1.0 - value
    return probs


def test_episodes_exact_onset_apex_offset():
    truth = [("happy", 10, 15, 24), ("surprise", 40, 42, 47), ("happy", 60, 70, 75), ("angry", 80, 83, 90)]
    probs = _sequence(truth)
    found = episodes(probs, fps=10.0)
    assert [(e.label, e.onset, e.apex, e.offset) for e in found] == truth
    assert found[0].onset_time == pytest.approx(1.0) and found[0].peak == pytest.approx(0.9)


def test_episodes_ignore_short_and_weak_bumps():
    probs = _sequence([("sad", 10, 10, 10)])  # one frame: shorter than min_frames
    probs[50:60, EXPRESSIONS.index("fear")] = 0.45  # never reaches the entry threshold
    assert episodes(probs, min_frames=2) == []


def test_smooth_and_summary():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(7), size=50)
    for method in ("ema", "window"):
        out = smooth(probs, method=method)
        np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)
        assert out.std(axis=0).mean() < probs.std(axis=0).mean()
    s = summarize(_sequence([("happy", 0, 30, 79)], length=100), fps=25)
    assert s.dominant == "happy" and s.frames == 100 and s.duration == pytest.approx(4.0)
    assert sum(s.shares.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        smooth(probs, method="median")
