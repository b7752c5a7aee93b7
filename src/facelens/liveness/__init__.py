"""Presentation-attack detection (liveness): passive models on detected faces, model-free frequency/texture cues
with a fitted fusion, active blink/motion checks on clips, and ISO/IEC 30107-3 evaluation.

``LivenessChecker().check(image, detection)`` is the entry point for verify/identify/video; see ``checker``.
"""

from facelens.liveness.checker import (
    DEFAULT_MODEL,
    LivenessChecker,
    LivenessResult,
    fill_liveness,
    get_checker,
)

__all__ = ["DEFAULT_MODEL", "LivenessChecker", "LivenessResult", "fill_liveness", "get_checker"]
