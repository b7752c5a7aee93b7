"""Faces in video files and live streams: tracking, identity per track, timelines and annotated video.

``facelens.video.process_video(source, gallery=...)`` is the entry point (see ``facelens.video.process``).
"""

from facelens.video.process import FrameResult, VideoRun, annotate, process_video
from facelens.video.timeline import PersonRecord, Timeline, TrackRecord

__all__ = [
    "FrameResult",
    "PersonRecord",
    "Timeline",
    "TrackRecord",
    "VideoRun",
    "annotate",
    "process_video",
]
