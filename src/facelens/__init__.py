"""facelens: find, embed, verify and identify faces; analyse them; say how much to trust each answer.

The public API is a few verbs::

    import facelens
    facelens.detect("group.jpg")                      # boxes, scores, 5 landmarks
    facelens.verify("a.jpg", "b.jpg").is_match
    gallery = facelens.open_gallery("./people")
    gallery.enroll("ada", ["ada1.jpg", "ada2.jpg"])
    gallery.identify("door.jpg")                      # [Match(name="ada", score=..., ...)]
    facelens.analyze("face.jpg")                      # expression, age/gender, quality
    facelens.process_video("clip.mp4", gallery).run() # tracks, names over time, timeline
"""

from __future__ import annotations

import importlib
from typing import Any

from facelens.errors import FacelensError

# Loaded on first use, so `import facelens` (and every CLI command) pays only for what it touches.
_LAZY = {
    "VerifyResult": "facelens.api",
    "detect": "facelens.api",
    "embed": "facelens.api",
    "identify": "facelens.api",
    "open_gallery": "facelens.api",
    "verify": "facelens.api",
    "DetectedFace": "facelens.types",
    "Face": "facelens.types",
    "process_video": "facelens.video",
}


def __getattr__(name: str) -> Any:
    if name == "analyze":  # the subpackage is callable: facelens.analyze(image)
        return importlib.import_module("facelens.analyze")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'facelens' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "DetectedFace",
    "Face",
    "FacelensError",
    "VerifyResult",
    "__version__",
    "analyze",
    "detect",
    "embed",
    "identify",
    "open_gallery",
    "process_video",
    "verify",
]
