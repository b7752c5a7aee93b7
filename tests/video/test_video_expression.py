"""Expression over time (``analyze=True``): a clip made of real CK+ and FER2013 faces with a known expression
sequence; the episodes the video pipeline spots land within two frames of the truth."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import need_data

FPS = 25.0
#: (expression, frames): neutral, then a smile, neutral again, then surprise, neutral to the end.
SEQUENCE = [("neutral", 12), ("happy", 10), ("neutral", 12), ("surprise", 10), ("neutral", 12)]
TOLERANCE = 2  # frames


def _frame(path: Path, side: int = 160) -> np.ndarray:
    """A 48x48 grey face scaled up and placed on a plain 320x240 background (the detector needs a margin)."""
    face = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (side, side), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((240, 320), 128, np.uint8)
    canvas[40 : 40 + side, 80 : 80 + side] = face
    return cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB)


@pytest.fixture(scope="module")
def expression_clip():
    """Frames of the sequence and the truth (label, first frame, last frame) of each non-neutral stretch.

    Each stretch holds one real face: a neutral FER2013 face, or the last three frames of one posed CK+ sequence
    (its peak, near-duplicates) in turn, as a nearly still face in a video would be; the face changes at each
    stretch. Only faces the engine's default expression head labels as their set are used, so that what is tested
    is the temporal part: tracking across the changes, per-frame analysis, smoothing and spotting."""
    from facelens.engine import FaceAnalyzer

    root = need_data("expression")
    engine = FaceAnalyzer(tasks=("detect", "analyze"), heads=("expression",), workers=1)

    def agreed(paths: list[Path], label: str) -> list[Path]:
        results = engine.run([_frame(p) for p in paths])
        return [p for p, r in zip(paths, results) if len(r.faces) == 1 and r.faces[0].expression_label == label]

    def sequences(label: str) -> list[list[Path]]:
        """CK+ sequences (subject_sequence) whose three peak frames the head all labels ``label``."""
        paths = sorted((root / "ckplus48" / label).glob("*.png"))[:60]
        good = set(agreed(paths, label))
        groups: dict[str, list[Path]] = {}
        for p in paths:
            groups.setdefault("_".join(p.stem.split("_")[:2]), []).append(p)
        return [g for g in groups.values() if len(g) == 3 and all(p in good for p in g)]

    neutral = agreed(sorted((root / "fer2013_sample" / "neutral").glob("*.jpg")), "neutral")
    held = {"happy": sequences("happy"), "surprise": sequences("surprise")}
    assert len(neutral) >= 3 and held["happy"] and held["surprise"], "too few faces the head agrees with"
    frames, truth, stretch = [], [], 0
    for label, count in SEQUENCE:
        if label == "neutral":
            faces = [neutral[stretch]]
            stretch += 1
        else:
            faces = held[label][0]
            truth.append((label, len(frames), len(frames) + count - 1))
        frames += [_frame(faces[i % len(faces)]) for i in range(count)]
    return frames, truth


def test_video_expression_episodes_match_the_sequence(expression_clip, tmp_path):
    from facelens.video import process_video

    frames, truth = expression_clip
    run = process_video(iter(frames), None, fps=FPS, analyze=True, out=tmp_path / "annotated.avi",
                        timeline=tmp_path / "timeline.json")
    results = list(run)
    timeline = run.timeline
    assert timeline.complete and timeline.frames == len(frames)
    # the face at the same place is one track across the changing faces
    main = max(timeline.tracks, key=lambda t: t.frames)
    assert main.frames >= len(frames) - 4
    record = main.expression
    assert record is not None and record["window"] == 5
    spotted = [(e["label"], e["onset"], e["apex"], e["offset"]) for e in record["episodes"]]
    assert [label for label, *_ in spotted] == [label for label, *_ in truth], spotted
    for (label, onset, apex, offset), (_, first, last) in zip(spotted, truth):
        assert abs(onset - first) <= TOLERANCE and abs(offset - last) <= TOLERANCE, (label, onset, offset, first, last)
        assert onset <= apex <= offset
    # summary: neutral most of the time, the two expressions for their share of it
    summary = record["summary"]
    assert summary["dominant"] == "neutral"
    for label, first, last in truth:
        share = (last - first + 1) / len(frames)
        assert summary["shares"][label] == pytest.approx(share, abs=3 / len(frames))
    # per person and for the whole video, the same episodes
    person = timeline.person(main.person)
    assert [(e["label"], e["onset"], e["offset"]) for e in person.expression["episodes"]] == [
        (label, onset, offset) for label, onset, _, offset in spotted
    ]
    assert timeline.expression["summary"]["dominant"] == "neutral"
    # per frame: the engine's raw expression on every tracked face
    mid = results[truth[0][1] + 5]
    assert mid.faces.expression is not None and mid.faces[0].expression_label == "happy"
    assert mid.to_dict()["faces"][0]["expression"]["label"] == "happy"
    # the JSON and CSV timelines carry it
    saved = json.loads((tmp_path / "timeline.json").read_text())
    assert saved["tracks"][0]["expression"]["episodes"] == timeline.tracks[0].expression["episodes"]
    csv_text = timeline.save(tmp_path / "timeline.csv").read_text()
    header, row = csv_text.splitlines()[0].split(","), csv_text.splitlines()[1 + timeline.tracks.index(main)]
    assert "expression" in header and "episodes" in header
    assert f"happy {spotted[0][1]}-{spotted[0][3]}" in row and f"surprise {spotted[1][1]}-{spotted[1][3]}" in row


def test_video_expression_drawn_on_the_annotated_video(expression_clip, tmp_path):
    """With analyze on, the label drawn above the face carries the expression: wider than without it."""
    from facelens.video import process_video

    frames, truth = expression_clip
    apex = truth[0][1] + 5
    drawn = {}
    for analyze in (False, True):
        out = tmp_path / f"annotated-{analyze}.avi"
        process_video(iter(frames[: apex + 1]), None, fps=FPS, analyze=analyze, out=out, every=2).run()
        cap = cv2.VideoCapture(str(out))
        cap.set(cv2.CAP_PROP_POS_FRAMES, apex)
        drawn[analyze] = cap.read()[1].astype(int)
        cap.release()
    source = cv2.cvtColor(frames[apex], cv2.COLOR_RGB2BGR).astype(int)
    width = {k: (np.abs(v - source).max(axis=2) > 60).any(axis=0).sum() for k, v in drawn.items()}  # drawn columns
    assert width[False] > 100  # the box and its label
    difference = np.abs(drawn[True] - drawn[False]).max(axis=2) > 60
    assert difference.sum() > 200  # the same box, another label: " happy" added to it


def test_video_cli_analyze(expression_clip, tmp_path):
    """``facelens video CLIP --analyze --json``: the timeline's tracks, people and video carry the expression."""
    from typer.testing import CliRunner

    from facelens.cli.video import app

    frames, truth = expression_clip
    clip = tmp_path / "expressions.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (320, 240))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    result = CliRunner().invoke(app, [str(clip), "--analyze", "--json", "--timeline", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    main = max(data["tracks"], key=lambda t: t["frames"])
    spotted = [(e["label"], e["onset"], e["offset"]) for e in main["expression"]["episodes"]]
    assert [label for label, *_ in spotted] == [label for label, *_ in truth]
    for (_, onset, offset), (_, first, last) in zip(spotted, truth):
        assert abs(onset - first) <= TOLERANCE and abs(offset - last) <= TOLERANCE
    assert data["people"][0]["expression"]["summary"]["dominant"] == "neutral"
    assert data["expression"]["episodes"]
    assert "episodes" in (tmp_path / "t.csv").read_text().splitlines()[0]
