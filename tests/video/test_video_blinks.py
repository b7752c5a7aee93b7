"""Blinks per track in video (``analyze``/``liveness``), and the passive + active verdict per track.

The blink clip is spliced from two real LFW photos of Gary Winnick, checked by eye: both eyes open (0001) and both
closed (0002), in the sequence open ×12, closed ×4, open ×12, closed ×3, open ×10 at 25 fps, so the annotated
closures are frames 12-15 and 28-30 (one of benchmarks/liveness.py's annotated clips). The still is minivision's
live sample repeated.
"""

from __future__ import annotations

import json

import cv2
import pytest

from tests.helpers import need_data

LFW = ("identity", "lfw", "lfw_deepfunneled", "Gary_Winnick")
STILL = ("spoof", "minivision_silent_face", "live", "image_T1.jpg")
CLOSURES = [(12, 15), (28, 30)]
FPS = 25


@pytest.fixture(scope="module")
def blink_frames():
    from facelens.io.image import decode_image

    folder = need_data(*LFW)
    opened, closed = decode_image(folder / "Gary_Winnick_0001.jpg"), decode_image(folder / "Gary_Winnick_0002.jpg")
    return [opened] * 12 + [closed] * 4 + [opened] * 12 + [closed] * 3 + [opened] * 10


@pytest.fixture(scope="module")
def still_frames():
    from facelens.io.image import decode_image

    return [decode_image(need_data(*STILL))] * 40


@pytest.fixture(scope="module")
def blink_run(blink_frames, tmp_path_factory):
    """The blink clip through ``liveness`` (blinks on the default signal), timeline written as JSON and CSV."""
    pytest.importorskip("ai_edge_litert", reason="the default blink signal runs on LiteRT (facelens[litert])")
    from facelens.video import process_video

    folder = tmp_path_factory.mktemp("blinks")
    timeline = process_video(iter(blink_frames), fps=FPS, liveness=True, timeline=folder / "t.json").run()
    timeline.save(folder / "t.csv")
    return timeline, folder


def test_blinks_per_track_in_the_timeline(blink_run, blink_frames):
    timeline, folder = blink_run
    (track,) = timeline.tracks
    assert track.frames == len(blink_frames)
    record = track.blinks
    assert record["signal"] == "blendshapes" and record["count"] == len(CLOSURES)
    for blink, (first, last) in zip(record["blinks"], CLOSURES):
        assert abs(blink["start_frame"] - first) <= 2 and abs(blink["end_frame"] - last) <= 2
    assert record["measured_s"] == pytest.approx((len(blink_frames) - 1) / FPS, abs=0.05)
    # the JSON and CSV timelines carry them
    saved = json.loads((folder / "t.json").read_text())["tracks"][0]
    assert saved["blinks"]["count"] == 2 and [b["start_frame"] for b in saved["blinks"]["blinks"]] == [
        b["start_frame"] for b in record["blinks"]
    ]
    header, row = ((folder / "t.csv").read_text().splitlines()[i].split(",") for i in (0, 1))
    cells = dict(zip(header, row))
    assert cells["blinks"] == "2" and cells["blink_times"] == "; ".join(f"{b['start']:.2f}" for b in record["blinks"])


def test_passive_pass_with_blinks_is_live(blink_run):
    timeline, _ = blink_run
    (track,) = timeline.tracks
    if not track.is_live:
        pytest.skip(f"the passive check does not pass this LFW photo (score {track.liveness})")
    assert track.liveness_verdict == "live"


def test_still_photo_track_has_no_blink_and_a_verdict_by_its_span(still_frames, monkeypatch):
    """A still photo: no blink with either signal; a passive pass over a short span is only passive, over
    NO_BLINK_SPAN_S (shortened here so that the test stays fast) it is reported as ``no_blink``."""
    from facelens.video import blinks, process_video

    for signal in ("ear", "blendshapes"):
        if signal == "blendshapes":
            pytest.importorskip("ai_edge_litert", reason="the blendshapes signal runs on LiteRT (facelens[litert])")
        (track,) = process_video(iter(still_frames), fps=FPS, liveness=True, blink_signal=signal).run().tracks
        assert track.blinks["signal"] == signal and track.blinks["count"] == 0 and track.blinks["blinks"] == []
        assert track.is_live, track.liveness  # minivision's live sample passes the passive check
        assert track.liveness_verdict == "passive_only"
    monkeypatch.setattr(blinks, "NO_BLINK_SPAN_S", 1.0)
    (track,) = process_video(iter(still_frames), fps=FPS, liveness=True, blink_signal="ear").run().tracks
    assert track.blinks["measured_s"] > 1.0 and track.liveness_verdict == "no_blink"


def test_verdict_rule():
    from facelens.video.blinks import NO_BLINK_SPAN_S, liveness_verdict

    def record(count, span):
        return {"count": count, "measured_s": span}

    assert liveness_verdict(None, record(3, 20.0)) is None  # passive never ran
    assert liveness_verdict(False, record(3, 20.0)) == "spoof"  # a replayed video blinks too
    assert liveness_verdict(True, record(1, 2.0)) == "live"
    assert liveness_verdict(True, record(0, NO_BLINK_SPAN_S)) == "no_blink"
    assert liveness_verdict(True, record(0, NO_BLINK_SPAN_S - 0.1)) == "passive_only"
    assert liveness_verdict(True, None) == "passive_only"


def test_blink_signal_is_checked_before_the_video_opens(tmp_path):
    from facelens.video import process_video

    with pytest.raises(ValueError, match="unknown blink signal 'eyes'"):
        process_video(tmp_path / "absent.mp4", liveness=True, blink_signal="eyes")
    with pytest.raises(ValueError, match="analyze or liveness"):
        process_video(tmp_path / "absent.mp4", blink_signal="ear")


def test_video_cli_liveness_reports_blinks(still_frames, tmp_path):
    from typer.testing import CliRunner

    from facelens.cli.video import app

    clip = tmp_path / "still.avi"
    h, w = still_frames[0].shape[:2]
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (w, h))
    for frame in still_frames[:20]:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    runner = CliRunner()
    result = runner.invoke(app, [str(clip), "--liveness", "--blink-signal", "ear", "--json"])
    assert result.exit_code == 0, result.output
    (track,) = json.loads(result.stdout.strip().splitlines()[-1])["tracks"]
    assert track["blinks"]["signal"] == "ear" and track["blinks"]["count"] == 0
    assert track["liveness_verdict"] == "passive_only"
    result = runner.invoke(app, [str(clip), "--liveness", "--blink-signal", "ear"])
    assert result.exit_code == 0 and "passive_only" in result.output and "0 in" in result.output
    result = runner.invoke(app, [str(clip), "--blink-signal", "eyes", "--liveness"])
    assert result.exit_code == 2 and "unknown blink signal" in result.output


def test_analyze_counts_blinks_too(blink_frames):
    """``analyze`` alone measures the eyes as well (no passive check: no verdict)."""
    pytest.importorskip("ai_edge_litert", reason="the default blink signal runs on LiteRT (facelens[litert])")
    from facelens.video import process_video

    (track,) = process_video(iter(blink_frames), fps=FPS, analyze=True).run().tracks
    assert track.expression is not None and track.blinks["count"] == len(CLOSURES)
    assert track.liveness is None and track.liveness_verdict is None
