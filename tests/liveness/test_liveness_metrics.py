"""ISO/IEC 30107-3 metrics on hand-checkable inputs, and the per-source figures of the default checker."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.liveness.evaluate import evaluate
from facelens.liveness.metrics import min_acer_threshold, pad_metrics, roc_auc, threshold_for_bpcer


def test_pad_metrics_by_hand():
    scores = [0.9, 0.8, 0.4, 0.7, 0.2, 0.1, 0.6]
    live = [True, True, True, False, False, False, False]
    m = pad_metrics(scores, live, 0.5)
    assert m.apcer == pytest.approx(2 / 4)  # 0.7 and 0.6 accepted
    assert m.bpcer == pytest.approx(1 / 3)  # 0.4 rejected
    assert m.acer == pytest.approx((0.5 + 1 / 3) / 2)
    assert m.accuracy == pytest.approx(4 / 7)
    # attack = positive: tp=2 caught, fp=1 live rejected, fn=2 attacks accepted
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 4)
    assert m.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_threshold_for_target_bpcer_meets_it_and_is_the_strictest():
    rng = np.random.default_rng(1)
    scores = np.r_[rng.normal(0.7, 0.1, 200), rng.normal(0.3, 0.1, 200)]
    live = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    for target in (0.01, 0.05, 0.1):
        t = threshold_for_bpcer(scores, live, target)
        assert pad_metrics(scores, live, t).bpcer <= target
        assert pad_metrics(scores, live, np.nextafter(t, 1)).bpcer > target


def test_min_acer_threshold_and_auc():
    scores = [0.9, 0.8, 0.4, 0.7, 0.2, 0.1]
    live = [True, True, True, False, False, False]
    # 0.4 (APCER 1/3, BPCER 0) and 0.8 (APCER 0, BPCER 1/3) tie at ACER 1/6; the lower threshold wins
    assert min_acer_threshold(scores, live) == 0.4
    assert roc_auc(scores, live) == pytest.approx(8 / 9)


# Measured with the default checker (MiniFASNet ensemble, threshold 0.5) on the default detector's faces
# (centerface+hog); images where it finds no face count as rejected. (source, APCER, BPCER, ACER, no_face). On HOG's
# faces they were: vietmoney 1/3, 1/3, 1/3, 0; dtruong 0.30, 0.1167, 0.2083, 5 (HOG found no face in 5 crops).
MEASURED = [
    ("minivision_silent_face", 0.0, 0.0, 0.0, 0),
    ("vietmoney_fas", 1 / 3, 0.0, 1 / 6, 0),
    ("dtruong46me_fas_crops", 0.2833, 0.0833, 0.1833, 0),
]


@pytest.mark.parametrize("source,apcer,bpcer,acer,no_face", MEASURED)
def test_default_model_per_source(scored, source, apcer, bpcer, acer, no_face):
    report = evaluate(source, data=scored[source])
    m = report["metrics"]
    assert report["no_face"] == no_face
    assert m["apcer"] == pytest.approx(apcer, abs=2e-3)
    assert m["bpcer"] == pytest.approx(bpcer, abs=2e-3)
    assert m["acer"] == pytest.approx(acer, abs=2e-3)
    assert report["at_target_bpcer"]["bpcer"] <= 0.05


def test_default_is_the_model_that_measures_best_on_dtruong(spoof_dir, scored):
    """MiniFASNet ensemble ACER 0.18 vs the CelebA-Spoof 128 model 0.225 (which rejects 45% of the live faces)."""
    ours = evaluate("dtruong", data=scored["dtruong46me_fas_crops"])["metrics"]
    other = evaluate(spoof_dir / "dtruong46me_fas_crops", model="minifas_celeba128")["metrics"]
    assert other["bpcer"] == pytest.approx(0.45, abs=2e-3) and other["acer"] == pytest.approx(0.225, abs=2e-3)
    assert ours["acer"] < other["acer"]
