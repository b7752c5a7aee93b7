"""Fairness and dataset-bias measures on small hand-made tables whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.evaluate.fairness import (
    CROSS_GROUP,
    classifier_by_group,
    dataset_bias,
    read_attributes,
    verification_by_group,
)


def test_verification_differentials_known_answer():
    # group A: 4 genuine (1 false non-match), 4 impostor (1 false match); group B: 4 genuine (3 FNM), 4 impostor (0 FM)
    scores = [0.9, 0.9, 0.9, 0.1, 0.8, 0.1, 0.1, 0.0] + [0.1, 0.9, 0.1, 0.0, 0.0, 0.1, 0.2, 0.3] + [0.95]
    labels = [1] * 4 + [0] * 4 + [1] * 4 + [0] * 4 + [0]
    ga = ["A"] * 8 + ["B"] * 8 + ["A"]
    gb = ["A"] * 8 + ["B"] * 8 + ["B"]  # the last impostor pair crosses groups
    res = verification_by_group(np.array(scores), np.array(labels, bool), ga, gb, threshold=0.5, min_count=4)
    rows = {r["group"]: r for r in res["groups"]}
    assert rows["A"]["fnmr"] == 0.25 and rows["A"]["fmr"] == 0.25
    assert rows["B"]["fnmr"] == 0.75 and rows["B"]["fmr"] == 0.0
    assert rows["A"]["n_impostor"] == 4 and rows["B"]["n_genuine"] == 4
    assert rows[CROSS_GROUP]["n_impostor"] == 1 and rows[CROSS_GROUP]["fmr"] == 1.0
    assert res["fnmr_ratio"] == pytest.approx(3.0)
    assert res["fmr_ratio"] is None  # B made no false match: the ratio is unbounded, not invented
    lo, hi = rows["A"]["fnmr_ci95"]
    assert lo < 0.25 < hi
    assert res["flagged_groups"] == [CROSS_GROUP]  # 1 impostor pair and no genuine pairs: too small


def test_small_groups_are_flagged_not_hidden():
    scores = np.array([0.9, 0.1, 0.9, 0.1])
    labels = np.array([True, False, True, False])
    res = verification_by_group(scores, labels, ["A", "A", "B", "B"], ["A", "A", "B", "B"], 0.5, min_count=30)
    assert {r["group"] for r in res["groups"]} == {"A", "B"}
    assert res["flagged_groups"] == ["A", "B"] and res["judged_groups"] == []
    assert res["fmr_ratio"] is None and res["fnmr_ratio"] is None


def test_classifier_by_group_known_answer():
    y_true = ["happy", "happy", "sad", "sad", "happy", "happy", "sad", "sad"]
    y_pred = ["happy", "happy", "sad", "happy", "happy", "sad", "happy", "happy"]
    groups = ["g1"] * 4 + ["g2"] * 4
    res = classifier_by_group(y_true, y_pred, groups, min_count=4)
    rows = {r["group"]: r for r in res["groups"]}
    assert rows["g1"]["accuracy"] == 0.75 and rows["g2"]["accuracy"] == 0.25
    assert rows["g1"]["recall"] == {"happy": 1.0, "sad": 0.5}
    assert rows["g2"]["recall"] == {"happy": 0.5, "sad": 0.0}
    assert res["accuracy_gap"] == 0.5 and res["error_ratio"] == pytest.approx(3.0)
    assert classifier_by_group(y_true, y_pred, groups, min_count=5)["flagged_groups"] == ["g1", "g2"]


def test_dataset_bias_independent_and_stereotyped():
    # independent: every class has the same 3:1 group split → Cramér's V 0, lifts 1
    classes = ["a"] * 8 + ["b"] * 4
    groups = ["x"] * 6 + ["y"] * 2 + ["x"] * 3 + ["y"] * 1
    res = dataset_bias(classes, groups, min_count=4)
    assert res["group_shares"] == {"x": 0.75, "y": 0.25} and res["share_ratio"] == 3.0
    assert res["cramers_v"] == pytest.approx(0.0, abs=1e-12)
    assert res["lift"]["a"]["x"] == pytest.approx(1.0) and res["lift"]["b"]["y"] == pytest.approx(1.0)
    assert res["flagged_groups"] == ["y"]
    # stereotyped: class determines group → V = 1; "a" is twice as common among x as overall
    res = dataset_bias(["a"] * 5 + ["b"] * 5, ["x"] * 5 + ["y"] * 5, min_count=1)
    assert res["cramers_v"] == pytest.approx(1.0)
    assert res["lift"]["a"]["x"] == pytest.approx(2.0) and res["lift"]["a"]["y"] == 0.0
    assert res["group_shares_by_class"]["a"] == {"x": 1.0, "y": 0.0}
    # three groups, partial association: V from the chi-square by hand
    table = np.array([[10, 5, 5], [5, 10, 5]])
    classes = ["a"] * 20 + ["b"] * 20
    groups = ["x"] * 10 + ["y"] * 5 + ["z"] * 5 + ["x"] * 5 + ["y"] * 10 + ["z"] * 5
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    chi2 = ((table - expected) ** 2 / expected).sum()
    assert dataset_bias(classes, groups)["cramers_v"] == pytest.approx(np.sqrt(chi2 / (40 * 1)))


def test_read_attributes(tmp_path):
    (tmp_path / "a.csv").write_text("person,gender,age\nAbdullah_Gul,m,40-60\nAJ_Lamas,m,20-40\n")
    key, attrs = read_attributes(tmp_path / "a.csv")
    assert key == "person" and attrs["AJ_Lamas"] == {"gender": "m", "age": "20-40"}
    (tmp_path / "b.csv").write_text("only\nx\n")
    with pytest.raises(Exception, match="attribute column"):
        read_attributes(tmp_path / "b.csv")
