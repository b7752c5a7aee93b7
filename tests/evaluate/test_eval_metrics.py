"""Verification and identification measures against independent computations (scikit-learn, brute force)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from facelens.evaluate import metrics as M
from facelens.evaluate.embeddings import FTE_SCORE
from facelens.evaluate.protocols import read_csv_pairs, read_pairs, split_identification


def test_devtest_protocol(devtest):
    assert len(devtest.pairs) == 1000
    assert devtest.labels.sum() == 500
    assert devtest.n_folds == 0
    assert all(Path(p.a).is_file() and Path(p.b).is_file() for p in devtest.pairs)
    first = devtest.pairs[0]
    assert first.same and first.a.endswith("Abdullah_Gul/Abdullah_Gul_0013.jpg")
    assert first.b.endswith("Abdullah_Gul_0014.jpg")


def test_csv_and_fold_formats(tmp_path, data_dir):
    deepface = data_dir / "identity" / "deepface" / "pairs_all.csv"
    if deepface.is_file():
        ps = read_csv_pairs(deepface)
        assert len(ps.pairs) == 520 and 0 < ps.labels.sum() < 520
    (tmp_path / "p.csv").write_text("a,b,same,fold\nx.jpg,y.jpg,1,0\nx.jpg,z.jpg,no,1\n")
    ps = read_pairs(tmp_path / "p.csv")
    assert ps.n_folds == 2 and list(ps.labels) == [True, False] and ps.pairs[0].a == str(tmp_path / "x.jpg")
    # LFW View 2 header "folds N": per fold N matched then N mismatched
    (tmp_path / "pairs.txt").write_text("2\t1\nA\t1\t2\nB\t1\tC\t1\nD\t1\t3\nE\t2\tF\t1\n")
    ps = read_pairs(tmp_path / "pairs.txt", tmp_path)
    assert ps.n_folds == 2 and list(ps.folds) == [0, 0, 1, 1] and list(ps.labels) == [True, False, True, False]
    assert ps.pairs[1].b == str(tmp_path / "C" / "C_0001.jpg")


def test_failures_to_enrol_are_counted_and_rejected(devtest, devtest_embeddings):
    """The default detector finds a face in every DevTest image (HOG missed two), so two images go through the
    engine again with a minimum face size above LFW's faces: a real failure to enrol, counted and scored FTE_SCORE."""
    from facelens.engine import models
    from facelens.evaluate.embeddings import EmbeddingSet, embed_images
    from facelens.evaluate.verification import score_pairs

    faceless = devtest.images()[:2]
    kept = {k: v for k, v in devtest_embeddings.vectors.items() if k not in faceless}
    emb = EmbeddingSet(devtest_embeddings.model_id, kept, dict(devtest_embeddings.failures))
    embed_images(faceless, pipeline=models(min_face_size=400), into=emb, workers=1)
    s = score_pairs(devtest, emb)
    assert set(faceless) <= set(s.failures) and all("no face" in s.failures[p] for p in faceless)
    assert s.fte.sum() >= len(s.failures) and np.all(s.scores[s.fte] == FTE_SCORE)
    assert s.kept("exclude").scores.size == s.scores.size - s.fte.sum()


def test_auc_eer_accuracy_match_independent_computation(devtest_scored):
    s = devtest_scored
    m = M.verification_metrics(s.scores, s.labels)
    assert m.auc == pytest.approx(roc_auc_score(s.labels, s.scores), abs=1e-12)
    # EER: where FNMR and FMR cross on scikit-learn's ROC (any point of the crossing step is within one step)
    fpr, tpr, _ = roc_curve(s.labels, s.scores)
    fnr = 1 - tpr
    i = np.argmin(np.abs(fnr - fpr))
    assert abs(m.eer - (fnr[i] + fpr[i]) / 2) <= 1 / m.n_impostor + 1 / m.n_genuine
    fmr, fnmr = M.rate_at(s.scores, s.labels, m.eer_threshold)
    assert abs(fmr - m.eer) <= 2 / m.n_impostor + 1e-9 and abs(fnmr - m.eer) <= 2 / m.n_genuine + 1e-9
    # best accuracy: brute force over every observed score as threshold
    brute = max(((s.scores >= t) == s.labels).mean() for t in np.unique(s.scores))
    acc, t = M.best_accuracy_threshold(s.scores, s.labels)
    assert acc == pytest.approx(brute) and ((s.scores >= t) == s.labels).mean() == pytest.approx(brute)
    assert m.accuracy <= brute + 1e-12  # cross-validated accuracy cannot beat the in-sample optimum
    # TAR@FAR: the best TPR with FPR <= target on scikit-learn's curve
    for far in (1e-2, 5e-2):
        tar, thr = M.tar_at_far(s.scores, s.labels, far)
        assert tar == pytest.approx(tpr[fpr <= far + 1e-12].max())
        assert (s.scores[~s.labels] >= thr).mean() <= far
    # what the dlib model is known for on LFW (99.38% on View 2); DevTest measured 0.986 (stratified 10-fold)
    assert m.auc > 0.985 and m.accuracy > 0.975 and m.eer < 0.03
    assert m.far_resolvable == {"0.01": True, "0.001": False, "0.0001": False}


def test_threshold_for_fmr_is_tight():
    imp = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    t = M.threshold_for_fmr(imp, 0.2)  # two of ten may match
    assert (imp >= t).mean() == pytest.approx(0.2)
    assert (imp >= np.nextafter(t, -np.inf)).mean() > 0.2 or t <= 0.9
    assert (imp >= M.threshold_for_fmr(imp, 0.01)).sum() == 0


def test_kfold_uses_file_folds():
    rng = np.random.default_rng(1)
    labels = np.tile([True] * 5 + [False] * 5, 4)
    scores = labels + rng.normal(0, 0.3, labels.size)
    folds = np.repeat(np.arange(4), 10)
    acc, std, protocol = M.kfold_accuracy(scores, labels, folds)
    assert protocol.startswith("4 folds")
    manual = []
    for f in range(4):
        _, t = M.best_accuracy_threshold(scores[folds != f], labels[folds != f])
        manual.append(((scores[folds == f] >= t) == labels[folds == f]).mean())
    assert acc == pytest.approx(np.mean(manual)) and std == pytest.approx(np.std(manual))


def test_kfold_with_too_few_pairs_says_so():
    """One genuine and one impostor pair cannot be cross-validated: our message, not scikit-learn's n_splits one."""
    with pytest.raises(ValueError, match="at least 2 genuine and 2 impostor pairs; got 1 genuine and 1 impostor"):
        M.kfold_accuracy(np.array([0.9, 0.1]), np.array([True, False]))


def test_cllr_known_values():
    labels = np.array([True] * 4 + [False] * 4)
    assert M.cllr(np.zeros(8), labels) == pytest.approx(1.0)  # LR = 1 everywhere: uninformative
    assert M.cllr(np.where(labels, 50.0, -50.0), labels) == pytest.approx(0.0, abs=1e-12)
    # LR = 3 for genuine and 1/3 for impostors: 0.5 * 2 * log2(1 + 1/3)
    assert M.cllr(np.where(labels, math.log(3), -math.log(3)), labels) == pytest.approx(math.log2(4 / 3))
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.05])
    assert M.cllr_min(scores, labels) < 1.0
    assert M.cllr_min(np.arange(8.0)[::-1], labels) == pytest.approx(0.0, abs=1e-12)  # perfectly separated


def test_cmc_and_open_set_on_known_matrix():
    # 4 mated probes over 3 identities; truth columns 0,1,2,2
    mated = np.array([[0.9, 0.1, 0.2], [0.5, 0.4, 0.3], [0.1, 0.2, 0.8], [0.3, 0.6, 0.5]])
    truth = np.array([0, 1, 2, 2])
    ranks = M.ranks_of_truth(mated, truth)
    assert list(ranks) == [1, 2, 1, 2]
    assert list(M.cmc(ranks, 3)) == [0.5, 1.0, 1.0]
    assert M.ranks_of_truth(mated, np.array([0, 1, 2, -1]))[-1] == 4  # unfindable truth = miss
    non_mated = np.array([[0.2, 0.3, 0.1], [0.7, 0.1, 0.1], [0.1, 0.1, 0.35], [0.05, 0.0, 0.0]])
    m = M.identification_metrics(mated, truth, non_mated, n_gallery_images=3, ranks=(1, 2), fpirs=(0.25,))
    assert m.cmc == {"rank1": 0.5, "rank2": 1.0}
    t = m.fpir_thresholds["0.25"]
    assert (non_mated.max(axis=1) >= t).mean() <= 0.25  # one of four non-mated probes may exceed it
    assert t == pytest.approx(np.nextafter(0.35, 1))
    # at t just above 0.35: probe 0 (0.9) and 2 (0.8) are correct rank-1 hits; 1 and 3 are rank-2 → FNIR 0.5
    assert m.fnir_at_fpir["0.25"] == pytest.approx(0.5)


def test_identification_on_devtest_people(devtest, devtest_embeddings):
    from facelens.evaluate.identification import evaluate_identification

    items = [(Path(p).parent.name, p) for p in devtest.images()]
    split = split_identification(items, seed=0, impostor_share=0.2)
    assert split.non_mated and split.mated
    assert not {p for p, _ in split.non_mated} & set(split.gallery_people)
    run = evaluate_identification(split, embeddings=devtest_embeddings)
    m = run.metrics
    assert m.n_mated == len(split.mated) and m.n_non_mated == len(split.non_mated)
    # CMC is non-decreasing and rank-1 is high for this model (measured 0.95+ with seed 0)
    assert np.all(np.diff(m.cmc_curve) >= 0) and m.cmc["rank1"] > 0.9
    assert m.fnir_at_fpir["0.1"] <= m.fnir_at_fpir["0.01"] + 1e-12
    t = m.fpir_thresholds["0.1"]
    assert (run.non_mated_top >= t).mean() <= 0.1


def test_identification_with_another_measure_ranks_by_it(devtest, devtest_embeddings):
    """A distance-based measure (another tool's) on the same split: the same ranking as cosine gives on unit
    vectors (−euclidean distance is monotone in cosine), so rank-1 and FNIR agree."""
    from facelens.evaluate.identification import evaluate_identification

    items = [(Path(p).parent.name, p) for p in devtest.images()]
    split = split_identification(items, seed=0, impostor_share=0.2)
    cosine = evaluate_identification(split, embeddings=devtest_embeddings).metrics

    def minus_distance(a, b):
        return -np.sqrt(np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0))

    distance = evaluate_identification(split, embeddings=devtest_embeddings, similarity=minus_distance).metrics
    assert distance.cmc["rank1"] == cosine.cmc["rank1"]
    assert distance.fnir_at_fpir["0.1"] == pytest.approx(cosine.fnir_at_fpir["0.1"])
