"""facelens: find, embed, verify and identify faces; analyse them; say how much to trust each answer.

The public API is a few verbs, each returning one :class:`ImageResult` per image (its faces as columns)::

    import facelens
    facelens.detect("group.jpg").faces.box             # boxes, scores, 5 landmarks
    facelens.verify("a.jpg", "b.jpg").is_match
    gallery = facelens.open_gallery("./people")
    facelens.enroll(gallery, "ada", ["ada1.jpg", "ada2.jpg"])
    facelens.identify("door.jpg", gallery).faces.name  # ["ada", None, ...]
    facelens.analyze("face.jpg")                       # expression, age/gender, quality
    facelens.process_video("clip.mp4", gallery).run()  # tracks, names over time, timeline

Many images at once, on every core: ``FaceAnalyzer(tasks=("embed", "analyze")).run(paths)``.
"""

from __future__ import annotations

import importlib
from typing import Any

# The verbs are bound here, after their subpackages of the same name (facelens.detect, facelens.embed) are loaded by
# facelens.api, so the names stay the functions. They cost numpy and PIL; everything heavier loads on first use.
from facelens.api import VerifyResult, detect, embed, enroll, enroll_people, identify, open_gallery, verify
from facelens.engine import FaceAnalyzer
from facelens.errors import FacelensError
from facelens.result import Faces, ImageResult
from facelens.types import DetectedFace, Face


def __getattr__(name: str) -> Any:
    """``facelens.analyze`` (the callable subpackage), ``facelens.process_video`` and ``facelens.anonymize``, imported
    on first use."""
    if name == "analyze":
        return importlib.import_module("facelens.analyze")
    if name == "anonymize":
        value = importlib.import_module("facelens.privacy").anonymize
        globals()[name] = value
        return value
    if name == "process_video":
        value = importlib.import_module("facelens.video").process_video
        globals()[name] = value
        return value
    raise AttributeError(f"module 'facelens' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "DetectedFace",
    "Face",
    "FaceAnalyzer",
    "FacelensError",
    "Faces",
    "ImageResult",
    "VerifyResult",
    "__version__",
    "analyze",
    "detect",
    "embed",
    "enroll",
    "enroll_people",
    "identify",
    "open_gallery",
    "process_video",
    "verify",
]
