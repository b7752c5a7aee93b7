"""Calibration fitted on half of the DevTest pairs, judged on the other half; storage and verbal scale."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from facelens.evaluate.calibration import (
    Calibration,
    calibrated_fields,
    fit_calibration,
    load_calibration,
    reliability,
    verbal_scale,
)
from facelens.evaluate.metrics import cllr
from facelens.embed import DEFAULT_MODEL_ID

#: Held-out tolerance on the expected calibration error (|predicted − observed| weighted by bin size).
#: Measured on DevTest (seed 0): ECE 0.017 (logistic) and 0.014 (isotonic), held-out Cllr 0.097 and 0.086.
ECE_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def halves(devtest_scored):
    s = devtest_scored.kept("exclude")
    idx = np.random.default_rng(0).permutation(s.scores.size)
    a, b = idx[: idx.size // 2], idx[idx.size // 2 :]
    return (s.scores[a], s.labels[a]), (s.scores[b], s.labels[b])


@pytest.mark.parametrize("method", ["logistic", "isotonic"])
def test_held_out_cllr_and_reliability(halves, method):
    (sa, ya), (sb, yb) = halves
    cal = fit_calibration(sa, ya, "dlib_resnet_v1", method)
    held_out = cllr(cal.log_lr(sb), yb)
    assert held_out < 0.5
    assert cal.cllr_min <= cal.cllr + 1e-12  # PAV is the best monotone map on the fitting pairs
    prob, lr = cal.apply(sb, prior=float(yb.mean()))
    rel = reliability(prob, yb)
    assert rel["ece"] < ECE_TOLERANCE
    for row in rel["bins"]:  # bins with enough pairs to judge agree within the tolerance
        if row["n"] >= 30:
            assert abs(row["predicted"] - row["observed"]) < ECE_TOLERANCE
    # monotone: a higher similarity never gives a lower LR
    grid = np.linspace(sb.min(), sb.max(), 200)
    assert np.all(np.diff(cal.log_lr(grid)) >= -1e-12)
    assert np.allclose(lr, np.exp(cal.log_lr(sb)))


def test_threshold_for_fmr_matches_fitting_impostors(halves):
    (sa, ya), _ = halves
    cal = fit_calibration(sa, ya, "m", "logistic")
    for target in (0.3, 0.1, 0.02, 1.0 / (~ya).sum()):  # exact on the fitting impostors: at most target match
        assert (sa[~ya] >= cal.threshold_for_fmr(target)).mean() <= target
    assert cal.threshold_for_fmr(0.1) < cal.threshold_for_fmr(0.01)
    with pytest.raises(Exception, match="impostor pairs"):
        cal.threshold_for_fmr(1e-6)


def test_save_load_and_missing(tmp_path, monkeypatch, halves):
    (sa, ya), _ = halves
    monkeypatch.setenv("FACELENS_CALIBRATION_DIR", str(tmp_path))
    assert load_calibration(DEFAULT_MODEL_ID) is None
    assert calibrated_fields(0.95, DEFAULT_MODEL_ID) == {}
    cal = fit_calibration(sa, ya, DEFAULT_MODEL_ID, "isotonic")
    path = cal.save()
    assert path == tmp_path / f"{DEFAULT_MODEL_ID}.json" and json.loads(path.read_text())["method"] == "isotonic"
    again = load_calibration(DEFAULT_MODEL_ID)
    assert isinstance(again, Calibration) and again == cal
    assert again.apply(0.93) == cal.apply(0.93)
    # the typical genuine and impostor similarity of the default model's fitting pairs
    genuine, impostor = float(np.median(sa[ya])), float(np.median(sa[~ya]))
    fields = calibrated_fields(genuine, DEFAULT_MODEL_ID)
    assert fields["likelihood_ratio"] > 1 and fields["probability"] > 0.5 and "same person" in fields["verbal"]
    fields = calibrated_fields(impostor, DEFAULT_MODEL_ID)
    assert fields["likelihood_ratio"] < 1 and "different persons" in fields["verbal"]
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(Exception, match="damaged"):
        load_calibration("broken")


def test_verbal_scale():
    assert verbal_scale(1.0) == "no support for either proposition"
    assert verbal_scale(5) == "weak support for same person"
    assert verbal_scale(50) == "moderate support for same person"
    assert verbal_scale(500) == "moderately strong support for same person"
    assert verbal_scale(5e3) == "strong support for same person"
    assert verbal_scale(5e5) == "very strong support for same person"
    assert verbal_scale(5e7) == "extremely strong support for same person"
    assert verbal_scale(1 / 50) == "moderate support for different persons"
    with pytest.raises(ValueError):
        verbal_scale(0.0)
    assert not math.isnan(fit_calibration([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], "m").cllr)
