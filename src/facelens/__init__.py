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

from facelens.api import VerifyResult, detect, embed, identify, open_gallery, verify
from facelens.errors import FacelensError
from facelens.types import DetectedFace, Face

import facelens.analyze  # noqa: E402,F401  (the subpackage is callable: facelens.analyze(image))
from facelens.video import process_video  # noqa: E402

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
