"""Robustness: perturbations land where the landmarks say, stronger ones never help, eyes matter more than
forehead. Run on 100 DevTest pairs with the clean detection box kept (isolates the recogniser; ~30 s)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from facelens.evaluate.robustness import Perturbation, evaluate_robustness, perturbations

#: Measured with dlib's ResNet on 100 DevTest pairs (seed 0, keep-box): EER clean 0.020, eyes(1 IOD) 0.280,
#: forehead(1 IOD) 0.040, blur σ=2 0.060, σ=4 0.160; mean genuine similarity eyes 0.896 vs forehead 0.949.
#: (MobileFaceNet, the default now, barely minds the eyes: EER eyes 0.06 vs forehead 0.04, within noise; so the
#: tool is checked on the model whose weakness it is known to show.)
EYES_VS_FOREHEAD_MIN_SIM_DROP = 0.03


@pytest.fixture(scope="module")
def rows(devtest):
    from facelens.evaluate.embeddings import embed_images
    from facelens.engine import models

    subset = devtest.subset(100, seed=0)
    dlib = models(embedder="dlib_onnx")
    clean = embed_images(subset.images(), pipeline=dlib)
    perts = [Perturbation("occlude_eyes", 1.0), Perturbation("occlude_forehead", 1.0),
             Perturbation("blur", 2.0), Perturbation("blur", 4.0)]
    out = evaluate_robustness(subset, perts, dlib, clean, redetect=False)
    return {r.perturbation: r for r in out}


def _noise(a, b) -> float:
    return 2 * math.hypot(a.eer_se, b.eer_se)


def test_stronger_blur_never_better_than_weaker_beyond_noise(rows):
    ladder = [rows["none"], rows["blur=2"], rows["blur=4"]]
    for weak, strong in itertools.pairwise(ladder):
        assert strong.eer >= weak.eer - _noise(weak, strong)
        assert strong.mean_genuine_similarity <= weak.mean_genuine_similarity + 1e-3
    assert rows["blur=4"].eer > rows["none"].eer  # and the strongest does hurt


def test_eyes_occlusion_hurts_more_than_forehead(rows):
    eyes, forehead = rows["occlude_eyes=1"], rows["occlude_forehead=1"]
    assert eyes.eer - forehead.eer > _noise(eyes, forehead)
    assert forehead.mean_genuine_similarity - eyes.mean_genuine_similarity > EYES_VS_FOREHEAD_MIN_SIM_DROP
    assert eyes.delta_eer > 0 and eyes.n_pairs == 100


def test_perturbations_act_where_and_how_they_should():
    img = np.full((200, 200, 3), 200, np.uint8)
    lm = np.array([[80, 90], [120, 90], [100, 115], [85, 140], [115, 140]], np.float32)  # IOD 40
    eyes = Perturbation("occlude_eyes", 1.0).apply(img, lm)
    assert (eyes[90, 100] == 0).all() and (eyes[90, 82] == 0).all() and (eyes[60, 100] == 200).all()
    fore = Perturbation("occlude_forehead", 1.0).apply(img, lm)
    assert (fore[50, 100] == 0).all() and (fore[90, 100] == 200).all()  # above the eyes, not on them
    mouth = Perturbation("occlude_mouth", 0.5).apply(img, lm)
    assert (mouth[140, 100] == 0).all() and (mouth[90, 100] == 200).all()
    n1 = Perturbation("noise", 25).apply(img, lm, seed=3)
    assert np.array_equal(n1, Perturbation("noise", 25).apply(img, lm, seed=3)) and 15 < n1.astype(float).std() < 35
    textured = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    errs = [np.abs(Perturbation("jpeg", q).apply(textured, lm).astype(int) - textured).mean() for q in (50, 5)]
    assert 0 < errs[0] < errs[1]
    errs = [np.abs(Perturbation("downscale", f).apply(textured, lm).astype(int) - textured).mean() for f in (0.5, 0.125)]
    assert 0 < errs[0] < errs[1]
    dot = img.copy()
    dot[100, 140] = 0  # (x=140, y=100): offset (40, 10) from the eye midpoint (100, 90)
    rot = Perturbation("rotate", 90).apply(dot, lm)
    assert rot.shape == img.shape and (rot[50, 110] == 0).all()  # +90° (counter-clockwise on screen) → offset (10, -40)
    assert len(perturbations()) == 27 and len(perturbations(["blur"], {"blur": (1.0,)})) == 1
    with pytest.raises(Exception, match="unknown perturbation"):
        Perturbation("melt", 1)
