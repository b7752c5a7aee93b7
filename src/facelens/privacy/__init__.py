"""Privacy: anonymise faces in images and video (``anonymize``), keep chosen people visible or cover only them
(``People``), and measure what still leaks (``facelens.evaluate.anonymization``)."""

from facelens.privacy.anonymize import HOLD, LOOKBACK, MODES, Anonymizer, ImageOutcome, People, VideoOutcome, anonymize
from facelens.privacy.methods import DEFAULT_MARGIN, DEFAULT_STRENGTH, METHODS, Cover

__all__ = ["DEFAULT_MARGIN", "DEFAULT_STRENGTH", "HOLD", "LOOKBACK", "METHODS", "MODES", "Anonymizer", "Cover",
           "ImageOutcome", "People", "VideoOutcome", "anonymize"]
