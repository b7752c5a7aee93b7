"""Benchmark: every expression model and trained head on FER+ valid, CK+48 and fer2013_sample.

Per model and set: accuracy over the seven FER2013 classes (contempt faces left out, the classes every model
has), accuracy over all eight where the set has contempt, macro-F1, per-class recall, and faces/s (crops +
features + classify on 48x48 face crops, landmarks included where the model needs them; one process, one thread).
CK+ also gets a subject-split linear probe per backbone (5-fold GroupKFold by subject, logistic regression on the
backbone's features): CK+ holds ~8 near-identical frames per sequence, so any fit on CK+ must be split by subject.

FER+ valid chose each head's L2 strength (see analyze/expression_heads.py), so its FER+ valid figures lean
optimistic; fer2013_sample (FER2013 PrivateTest, in neither FER+ train nor valid) and CK+ are the held-out checks.
Features are computed once per model and set and cached next to the fitted heads (``--cache``).

    python benchmarks/expression.py [--data ../shared/data] [--models a,b] [--cache DIR] [--speed-faces 100]

Measured 2026-12-02 (`python benchmarks/expression.py --speed-faces 60`; FER+ heads fitted on all 28,385 FER+ train
faces; faces/s on a 2-core machine shared with 7 other jobs under a varying load, so they are rough, and the heads'
rows were timed in a later, quieter run than the CNNs'):

    model                  set              acc(7)  macroF1  acc(8)  faces/s  lowest recalls
     mini_xception          ferplus_valid    0.660   0.586    0.655   702.6  disgust 0.41, neutral 0.45
     mini_xception          ckplus48         0.687   0.632    0.649   702.6  disgust 0.31, angry 0.40
     mini_xception          fer2013_sample   0.557   0.555      -     702.6  fear 0.25, disgust 0.40
     opencv_fer             ferplus_valid    0.701   0.573    0.696    34.1  fear 0.36, disgust 0.44
     opencv_fer             ckplus48         0.737   0.618    0.696    34.1  angry 0.02, fear 0.24
     opencv_fer             fer2013_sample   0.464   0.429      -      34.1  fear 0.03, angry 0.30
     cnn_ensemble           ferplus_valid    0.747   0.636    0.742    35.2  disgust 0.51, fear 0.55
     cnn_ensemble           ckplus48         0.744   0.659    0.703    35.2  angry 0.13, fear 0.31
     cnn_ensemble           fer2013_sample   0.511   0.479      -      35.2  fear 0.07, angry 0.35
     ferplus_opencv_fer     ferplus_valid    0.773   0.632    0.767    32.3  disgust 0.13, fear 0.35
     ferplus_opencv_fer     ckplus48         0.628   0.571    0.593    32.3  angry 0.10, fear 0.20
     ferplus_opencv_fer     fer2013_sample   0.400   0.356      -      32.3  disgust 0.03, fear 0.03
     ferplus_mini_xception  ferplus_valid    0.794   0.692    0.789   257.0  fear 0.35, disgust 0.36
     ferplus_mini_xception  ckplus48         0.619   0.542    0.585   257.0  fear 0.05, angry 0.20
     ferplus_mini_xception  fer2013_sample   0.443   0.398      -     257.0  fear 0.03, disgust 0.10
    *ferplus_both           ferplus_valid    0.807   0.706    0.801    64.9  disgust 0.36, fear 0.40
    *ferplus_both           ckplus48         0.670   0.616    0.633    64.9  fear 0.13, angry 0.25
    *ferplus_both           fer2013_sample   0.446   0.394      -      64.9  fear 0.03, disgust 0.05
     probe mini_xception    ckplus48 by subject (8 classes): accuracy 0.944, macro-F1 0.920
     probe opencv_fer       ckplus48 by subject (8 classes): accuracy 0.932, macro-F1 0.904

Reading: the FER+ heads win on FER+ (the default is chosen there) but lose on posed CK+ and on fer2013_sample.
fer2013_sample carries FER2013's original labels, which FER+'s crowd relabelled (FER+ keeps few disgust/fear
faces, so heads fitted to its votes rarely answer them): it measures agreement with the old labels as much as
accuracy. On CK+, cnn_ensemble (no training) is best; a probe fitted on CK+ itself, split by subject, reaches 0.94.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

CK_TO_FER = {"anger": "angry", "sadness": "sad"}


def folder_set(root: Path, pattern: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    files = sorted(root.glob(pattern))
    images = np.stack([cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), (48, 48)) for f in files])
    labels = np.array([CK_TO_FER.get(f.parent.name, f.parent.name) for f in files])
    return images, labels, [f.stem for f in files]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--models", default="", help="comma-separated expression models (default: all ready)")
    parser.add_argument("--cache", type=Path, default=None, help="feature cache (default: the heads folder)")
    parser.add_argument("--speed-faces", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("FACELENS_MODEL_DIR", str(args.data.parent / "models"))

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from facelens.analyze.expression import DEFAULT_EXPRESSION_MODEL, expression_model_names, get_expression_model
    from facelens.analyze.expression_heads import FerPlus, cached_features, heads_dir, whole_crops
    from facelens.errors import FacelensError
    from facelens.evaluate.expression import expression_report

    expression = args.data / "expression"
    ferplus = FerPlus.load(expression / "ferplus" / "ferplus_valid.npz")
    ck_images, ck_labels, ck_names = folder_set(expression / "ckplus48", "*/*.png")
    fer_images, fer_labels, _ = folder_set(expression / "fer2013_sample", "*/*.jpg")
    sets = {
        "ferplus_valid": (expression / "ferplus" / "ferplus_valid.npz", ferplus.images, ferplus.labels),
        "ckplus48": (expression / "ckplus48.set", ck_images, ck_labels),
        "fer2013_sample": (expression / "fer2013_sample.set", fer_images, fer_labels),
    }
    subjects = np.array([n.split("_")[0] for n in ck_names])
    cache = args.cache or heads_dir() / "features"

    names = [n for n in (args.models.split(",") if args.models else expression_model_names()) if n]
    models = {}
    for name in names:
        try:
            models[name] = get_expression_model(name)
        except FacelensError as exc:
            print(f"{name}: skipped ({' '.join(str(exc).split())})")
    backbones = sorted({b for m in models.values() for b in getattr(m, "backbones", (m.name,))})
    features = {(s, b): cached_features(path, b, images, cache) for s, (path, images, _) in sets.items() for b in backbones}

    rows = []
    for name, model in models.items():
        used = getattr(model, "backbones", (model.name,))
        sample = ferplus.images[: args.speed_faces]
        start = time.perf_counter()
        model.probabilities(whole_crops(sample, model))
        speed = len(sample) / (time.perf_counter() - start)
        for set_name, (_, _, labels) in sets.items():
            probs = model.classify(np.hstack([features[(set_name, b)] for b in used]))
            pred = np.array(model.labels)[probs.argmax(1)]
            keep = labels != "contempt"
            seven = expression_report(labels[keep], list(pred[keep]), name, model.labels)
            row = {"model": name, "set": set_name, "n": int(keep.sum()), "accuracy7": round(seven.accuracy, 4),
                   "macro_f1_7": round(seven.macro_f1, 4), "recall": {k: round(v, 3) for k, v in seven.recall.items()},
                   "faces_per_s": round(speed, 1), "default": name == DEFAULT_EXPRESSION_MODEL}  # fmt: skip
            if (~keep).any():
                row["accuracy8"] = round(expression_report(labels, list(pred), name, model.labels).accuracy, 4)
            rows.append(row)
            print(json.dumps(row), flush=True)

    probe = []
    for b in backbones:
        X, y = features[("ckplus48", b)], ck_labels
        estimator = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
        pred = cross_val_predict(estimator, X, y, cv=GroupKFold(5), groups=subjects)
        report = expression_report(y, list(pred), b)
        probe.append((b, report.accuracy, report.macro_f1))
        print(json.dumps({"probe": b, "set": "ckplus48 subject 5-fold", "n": len(y), "accuracy8": round(report.accuracy, 4),
                          "macro_f1": round(report.macro_f1, 4)}))  # fmt: skip

    print("\nmodel                  set              acc(7)  macroF1  acc(8)  faces/s  lowest recalls")
    for r in rows:
        worst = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["recall"].items(), key=lambda kv: kv[1])[:2])
        mark = "*" if r["default"] else " "
        print(f"{mark}{r['model']:<22} {r['set']:<16} {r['accuracy7']:.3f}   {r['macro_f1_7']:.3f}    "
              f"{r.get('accuracy8', float('nan')):.3f}   {r['faces_per_s']:7.1f}  {worst}")  # fmt: skip
    for b, acc, f1 in probe:
        print(f" probe {b:<16} ckplus48 by subject (8 classes): accuracy {acc:.3f}, macro-F1 {f1:.3f}")
    print("* = default; faces/s measured on a shared, loaded machine (one thread)")


if __name__ == "__main__":
    main()
