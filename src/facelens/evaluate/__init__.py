"""Evaluation on the user's own data: verification and identification accuracy, calibration of scores into
probabilities and likelihood ratios, fairness audits, robustness to perturbations and identity preservation.

Everything here works on similarities (cosine, from L2-normalised embeddings); :mod:`.embeddings` computes them
once per image with the shared pipeline and records every image without a usable face.
"""

from facelens.evaluate.calibration import Calibration, fit_calibration, load_calibration, verbal_scale
from facelens.evaluate.metrics import VerificationMetrics, verification_metrics

__all__ = [
    "Calibration",
    "VerificationMetrics",
    "fit_calibration",
    "load_calibration",
    "verbal_scale",
    "verification_metrics",
]
