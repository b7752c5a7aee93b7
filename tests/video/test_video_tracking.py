"""Shot cuts and tracks that stop at them, on the real clips (the Hamilton clip's cuts checked by eye, see
test_video_process.py)."""

from __future__ import annotations

import itertools

import cv2
import pytest
from helpers import need_data

from facelens.video import process_video
from facelens.video.tracking import ShotCuts

HAMILTON = ("video", "face_recognition", "short_hamilton_clip.mp4")
FACENET = ("video", "facenet_pytorch", "video.mp4")
HAMILTON_CUTS = [20, 82, 211]  # the first frame of each new shot
LIN = "lin-manuel-miranda"


def _frames(clip, start: int = 0, stop: int | None = None):
    """RGB frames ``start``..``stop`` of a clip."""
    cap = cv2.VideoCapture(str(clip))
    try:
        for index in itertools.count():
            ok, frame = cap.read()
            if not ok or (stop is not None and index >= stop):
                return
            if index >= start:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def _cuts(frames, grey: bool = False) -> list[int]:
    cuts = ShotCuts()
    return [i for i, f in enumerate(frames) if cuts.is_cut(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) if grey else f)]


@pytest.mark.parametrize("grey", [False, True])
def test_shot_cuts_found_where_the_hamilton_clip_cuts(grey):
    assert _cuts(_frames(need_data(*HAMILTON)), grey) == HAMILTON_CUTS


def test_no_shot_cut_in_a_single_shot_clip():
    """facenet-pytorch's clip is one shot of people walking towards a hand-held camera."""
    assert _cuts(_frames(need_data(*FACENET))) == []


def test_a_face_that_stays_keeps_its_track_across_a_cut():
    """A clip spliced from two LFW photos of one sitting (Gary Winnick, eyes open and closed): every splice is a cut,
    and the face, where it was (IoU 0.81), is one track over every frame."""
    from facelens.io.image import decode_image

    folder = need_data("identity", "lfw", "lfw_deepfunneled", "Gary_Winnick")
    opened, closed = decode_image(folder / "Gary_Winnick_0001.jpg"), decode_image(folder / "Gary_Winnick_0002.jpg")
    frames = [opened] * 12 + [closed] * 4 + [opened] * 12 + [closed] * 3 + [opened] * 10
    assert _cuts(frames) == [12, 16, 28, 31]
    timeline = process_video(iter(frames), fps=25, detector="centerface").run()
    (track,) = timeline.tracks
    assert track.frames == len(frames)


def test_the_singers_track_and_name_stop_at_the_cut(lin_gallery):
    """With CenterFace boxes, an audience face after the Hamilton clip's last cut overlaps the singer's last box by
    IoU 0.45: before tracks stopped at cuts, his track and name carried over onto that face."""
    start = 150  # Lin sings until frame 210; the audience from 211
    cut = HAMILTON_CUTS[-1] - start
    run = process_video(_frames(need_data(*HAMILTON), start), lin_gallery, every=3, fps=29.97,
                        detector="centerface")
    results = list(run)
    assert len(results) == 275 - start
    named = [r.index for r in results if any(f.name == LIN for f in r.faces)]
    assert named and min(named) < 10 and max(named) < cut  # named in his shot, never after it
    before = {int(t) for r in results[:cut] for t in r.faces.track_id}
    after = {int(t) for r in results[cut:] for t in r.faces.track_id}
    assert before and after and not before & after
    disappear = [e for r in results for e in r.events if e["event"] == "disappear" and e["person"] == LIN]
    assert disappear and all(e["frame"] < cut for e in disappear)
    assert all(t.last_seen < cut / 29.97 for t in run.timeline.tracks if t.person == LIN)
