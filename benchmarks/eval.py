"""Benchmark: verification evaluation speed on the LFW DevTest pairs.

1. From cached embeddings: pairs/s for scoring the pairs and computing every verification figure (ROC, AUC, EER,
   TAR@FAR, 10-fold accuracy, FMR thresholds).
2. End to end: pairs/s including decoding, detecting and embedding every image once (the embedding dominates).
The issue names no external reference, so the ratio printed is end-to-end against cached (how much of the cost
is the model), plus scikit-learn's bare ``roc_auc_score`` as the floor for the metric step.

    python benchmarks/eval.py [--data ../shared/data] [--repeat 20] [--skip-e2e]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("FACELENS_TEST_DATA", root.parent / "shared" / "data"))
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--skip-e2e", action="store_true", help="reuse --cache instead of embedding (no end-to-end figure)")
    ap.add_argument("--cache", default=None, help=".npz of embeddings to reuse or write")
    args = ap.parse_args()
    os.environ.setdefault("FACELENS_MODEL_DIR", str(root.parent / "shared" / "models"))

    from sklearn.metrics import roc_auc_score

    from facelens.evaluate.embeddings import EmbeddingSet, embed_images
    from facelens.evaluate.protocols import read_pairs
    from facelens.evaluate.verification import evaluate_scored, score_pairs
    from facelens.engine import models

    lfw = Path(args.data) / "identity" / "lfw"
    pairs = read_pairs(lfw / "pairsDevTest.txt", lfw)
    n = len(pairs.pairs)
    pipe = models()
    e2e = None
    if args.skip_e2e and args.cache and Path(args.cache).is_file():
        emb = EmbeddingSet.load(args.cache)
    else:
        _ = (pipe.embedder, pipe.detector)  # load the models before timing
        t0 = time.perf_counter()
        emb = embed_images(pairs.images(), pipeline=pipe)
        metrics = evaluate_scored(score_pairs(pairs, emb))
        e2e = time.perf_counter() - t0
        if args.cache:
            emb.save(args.cache)

    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        scored = score_pairs(pairs, emb)
        metrics = evaluate_scored(scored)
        times.append(time.perf_counter() - t0)
    cached = float(np.median(times))
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        roc_auc_score(scored.labels, scored.scores)
    floor = (time.perf_counter() - t0) / args.repeat

    print(f"DevTest: {n} pairs, {len(pairs.images())} images, {len(scored.failures)} failure(s) to enrol, model {emb.model_id}")
    print(f"AUC {metrics.auc:.4f}  EER {metrics.eer:.4f}  accuracy {metrics.accuracy:.4f} ({metrics.accuracy_protocol})")
    print(f"from cached embeddings: {n / cached:,.0f} pairs/s ({cached * 1e3:.1f} ms for all figures; median of {args.repeat})")
    print(f"  scikit-learn roc_auc_score alone: {floor * 1e3:.2f} ms -> full metrics cost {cached / floor:.0f}x the bare AUC")
    if e2e is not None:
        print(f"end to end (decode+detect+embed+metrics): {n / e2e:.1f} pairs/s, {len(pairs.images()) / e2e:.1f} images/s "
              f"({e2e:.1f} s)")
        print(f"  ratio cached/end-to-end: {e2e / cached:,.0f}x (the model dominates)")


if __name__ == "__main__":
    main()
