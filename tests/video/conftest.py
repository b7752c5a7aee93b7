"""Video fixtures: each clip is processed once per session (annotated video, timeline and thumbnails written)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import need_data

HAMILTON = ("video", "face_recognition", "short_hamilton_clip.mp4")
LIN = ("video", "face_recognition", "lin-manuel-miranda.png")
FACENET = ("video", "facenet_pytorch", "video.mp4")


@dataclass
class Processed:
    clip: Path
    out: Path
    timeline_path: Path
    timeline: object
    results: list  # FrameResult per frame, without images


@pytest.fixture(scope="session")
def lin_gallery(tmp_path_factory):
    from facelens.api import enroll
    from facelens.gallery import open_gallery

    still = need_data(*LIN)
    gallery = open_gallery(tmp_path_factory.mktemp("video_gallery") / "people")
    result = enroll(gallery, "lin-manuel-miranda", [str(still)])
    assert result.added, result.skipped
    yield gallery
    gallery.close()


def _process(clip: Path, folder: Path, gallery, every: int | None = None) -> Processed:
    from facelens.video import process_video

    run = process_video(
        clip, gallery, every, out=folder / "annotated.mp4", timeline=folder / "timeline.json",
        thumbnails=folder / "faces",
    )
    results = list(run)
    return Processed(clip, folder / "annotated.mp4", folder / "timeline.json", run.timeline, results)


@pytest.fixture(scope="session")
def hamilton(tmp_path_factory, lin_gallery) -> Processed:
    return _process(need_data(*HAMILTON), tmp_path_factory.mktemp("hamilton"), lin_gallery)


@pytest.fixture(scope="session")
def facenet(tmp_path_factory, lin_gallery) -> Processed:
    # a fixed cadence: the adaptive one follows the machine's load (a loaded CI run detected so rarely that the
    # boy's track ended at 3.76 s of 4.2 with the follower lost); these tests are about tracking, not that rule
    return _process(need_data(*FACENET), tmp_path_factory.mktemp("facenet"), lin_gallery, every=8)
