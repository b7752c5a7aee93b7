"""``evaluate``: ISO/IEC 30107-3 figures of a checker configuration on a labelled live/spoof folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facelens.detect import DEFAULT_DETECTOR
from facelens.liveness.checker import DEFAULT_MODEL
from facelens.liveness.dataset import LabelledScores, score_folder
from facelens.liveness.fusion import Fusion
from facelens.liveness.metrics import pad_metrics, roc_auc, threshold_for_bpcer
from facelens.liveness.models import get_model


def final_scores(data: LabelledScores, fusion: Fusion | None) -> np.ndarray:
    """The checker's score per image; images without a face get −1 so they are rejected at any threshold."""
    scores = data.model_scores.copy()
    if fusion is not None and data.found.any():
        scores[data.found] = fusion.fused_score(data.model_scores[data.found], data.features[data.found])
    scores[~data.found] = -1.0
    return scores


def evaluate(
    data_dir: str | Path,
    model: str = DEFAULT_MODEL,
    detector: str = DEFAULT_DETECTOR,
    fusion: str | Path | Fusion | None = None,
    threshold: float | None = None,
    target_bpcer: float = 0.05,
    data: LabelledScores | None = None,
) -> dict:
    """Metrics at the operating threshold (given, else the fusion's, else the model's default), AUC, the number of
    images with no face (counted as rejected), and the threshold that meets ``target_bpcer`` with its metrics."""
    fusion = Fusion.load(fusion) if isinstance(fusion, (str, Path)) else fusion
    data = data if data is not None else score_folder(data_dir, model=model, detector=detector)
    scores = final_scores(data, fusion)
    t = threshold if threshold is not None else (fusion.threshold if fusion else get_model(model).threshold)
    t_target = threshold_for_bpcer(scores, data.is_live, target_bpcer)
    return {
        "data": str(data_dir),
        "model": f"{model}+frequency" if fusion else model,
        "detector": detector,
        "images": len(data.paths),
        "no_face": data.no_face,
        "unreadable": [{"path": path, "error": why} for path, why in data.unreadable],
        "auc": round(roc_auc(scores, data.is_live), 4),
        "metrics": pad_metrics(scores, data.is_live, t).to_dict(),
        "target_bpcer": target_bpcer,
        "at_target_bpcer": pad_metrics(scores, data.is_live, t_target).to_dict(),
    }
