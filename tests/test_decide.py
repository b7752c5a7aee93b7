"""Open-set decisions: the quality gate of ThresholdPolicy (unit rules, on real faces through the engine, and
its FNIR measure against the evaluation's own)."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.decide import ThresholdPolicy, fit_quality_gate, open_set_names, quality_gate_fnir
from facelens.gallery.base import Candidate
from helpers import need_data


def test_min_quality_is_checked_and_kept_by_for_identify():
    with pytest.raises(ValueError, match="min_quality"):
        ThresholdPolicy(fpir=0.01, min_quality=1.5)
    assert ThresholdPolicy.for_identify(0.5, min_quality=0.3) == ThresholdPolicy(similarity=0.5, min_quality=0.3)
    assert ThresholdPolicy.for_identify(fpir=0.02, min_quality=0.3).min_quality == 0.3
    assert ThresholdPolicy.for_identify().min_quality is None


def test_a_probe_below_the_quality_gate_is_never_named():
    ranked = [[Candidate("ann", 0.9, 1)], [Candidate("bob", 0.9, 2)], [Candidate("cid", 0.9, 3)], [Candidate("dee", 0.4, 4)]]
    quality = [0.8, 0.1, np.nan, 0.9]
    assert open_set_names(ranked, 0.5)[0] == ["ann", "bob", "cid", None]
    names, scores = open_set_names(ranked, 0.5, quality, 0.3)
    assert names == ["ann", None, None, None]  # too blurred, not measured, below threshold
    assert scores == [0.9, 0.9, 0.9, 0.4]  # the scores are still reported
    with pytest.raises(ValueError, match="one quality score per probe"):
        open_set_names(ranked, 0.5, quality[:2], 0.3)


def test_gate_fnir_counts_gated_strangers_as_rejections_and_gated_mates_as_misses():
    mated = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, True, True, False])
    mq = np.array([0.9, 0.1, 0.9, 0.9])
    non_mated = np.linspace(0.0, 0.85, 100)  # at FPIR 1 % one stranger may clear: threshold just above 0.8414
    nq = np.ones(100)
    assert quality_gate_fnir(mated, correct, mq, non_mated, nq, 0.0) == pytest.approx(0.75)  # only 0.9 is named
    nq[-1] = 0.0  # the strongest stranger is gated: the threshold falls to just above the next-but-one
    assert quality_gate_fnir(mated, correct, mq, non_mated, nq, 0.5) == pytest.approx(0.75)  # 0.8 gated, 0.7 < t
    best, fnir = fit_quality_gate(mated, correct, mq, non_mated, np.ones(100), gates=(0.0, 0.5))
    assert best == 0.0 and fnir[0.5] >= fnir[0.0]


def test_gate_fnir_without_a_gate_is_the_evaluations_fnir(lfw_split):
    """On the LFW identification subset, the gate's FNIR at gate 0 is exactly evaluate_identification's."""
    from types import SimpleNamespace

    from facelens.evaluate.embeddings import EmbeddingSet
    from facelens.evaluate.identification import evaluate_identification
    from facelens.evaluate.protocols import split_identification

    by_person, vectors = lfw_split
    split = split_identification([(p, img) for p, images in by_person.items() for img in images], seed=0)
    images = [img for _, img in split.gallery + split.mated + split.non_mated]
    emb = EmbeddingSet("m", {k: vectors[k] for k in images if k in vectors}, {k: "none" for k in images if k not in vectors})
    run = evaluate_identification(split, pipeline=SimpleNamespace(model_id="m"), embeddings=emb)
    gallery = [(p, vectors[i]) for p, i in split.gallery if i in vectors]
    matrix, ids = np.stack([v for _, v in gallery]), np.array([p for p, _ in gallery])

    def best(probes):
        out = [(float((matrix @ vectors[i]).max()), ids[int(np.argmax(matrix @ vectors[i]))] == p) if i in vectors
               else (-1.0, False) for p, i in probes]
        return np.array([s for s, _ in out]), np.array([c for _, c in out])

    ms, mc = best(split.mated)
    ns, _ = best(split.non_mated)
    fnir = quality_gate_fnir(ms, mc, np.ones(len(ms)), ns, np.ones(len(ns)), 0.0, fpir=0.01)
    assert fnir == pytest.approx(run.metrics.fnir_at_fpir["0.01"])


def test_the_engine_leaves_a_blurred_probe_unknown_under_a_quality_gate(tmp_path):
    import cv2

    import facelens
    from facelens.engine import FaceAnalyzer
    from facelens.gallery import open_gallery
    from facelens.io.image import decode_image

    lfw = need_data("identity", "lfw", "lfw_deepfunneled")
    people = {n: sorted(str(p) for p in (lfw / n).glob("*.jpg")) for n in ("Abdullah_Gul", "Adrien_Brody", "Alvaro_Uribe")}
    sharp = decode_image(people["Abdullah_Gul"][3])
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3)
    with open_gallery(tmp_path / "g") as gallery:
        for name, images in people.items():
            facelens.enroll(gallery, name, images[:2])
        plain = FaceAnalyzer(tasks=("identify", "analyze"), heads=("quality",), gallery=gallery, workers=1)
        gated = FaceAnalyzer(tasks=("identify",), gallery=gallery, workers=1,
                             policy=ThresholdPolicy.for_identify(min_quality=0.3))
        assert gated.heads == ("quality",) and "analyze" in gated.tasks  # quality measured for the gate only
        before = plain.run_one(blurred).faces
        assert before.name[0] == "Abdullah_Gul" and before.quality_score[0] < 0.3  # named, though blurred
        after = gated.run_one(blurred).faces
        assert after.name[0] is None and after.candidates[0][0].name == "Abdullah_Gul"  # unknown; still a candidate
        assert gated.run_one(sharp).faces.name[0] == "Abdullah_Gul"
        # the library door takes the same gate
        assert facelens.identify(blurred, gallery, min_quality=0.3).faces.name[0] is None
