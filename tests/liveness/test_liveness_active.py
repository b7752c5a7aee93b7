"""Active liveness on clips: blinks from the eye aspect ratio, head movement, and a still photo made into a video.

The shared clips were checked by eye with frame dumps: in neither is a blink visible on the main face (the
Hamilton clip's longest shot, 4.0–7.0 s, keeps the eyes open; facenet-pytorch's crowd clip has faces too small and
blurred to see eyelids), so they serve as "no blink" cases. The blink case is a clip written from two real LFW
photos of one person, eyes open (Bill_McBride_0004) and closed (Bill_McBride_0007, checked by eye), in the
sequence open ×12, closed ×4, open ×12, closed ×3, open ×10 at 25 fps.
"""

from __future__ import annotations

import cv2
import pytest

from facelens.errors import VideoError
from facelens.liveness.active import check_clip, eye_aspect_ratio


def _write(path, frames, fps=25):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(scope="module")
def blink_clip(data_dir, tmp_path_factory):
    folder = data_dir / "identity" / "lfw" / "lfw_deepfunneled" / "Bill_McBride"
    opened = cv2.imread(str(folder / "Bill_McBride_0004.jpg"))
    closed = cv2.imread(str(folder / "Bill_McBride_0007.jpg"))
    if opened is None or closed is None:
        pytest.skip("LFW Bill_McBride images not found")
    frames = [opened] * 12 + [closed] * 4 + [opened] * 12 + [closed] * 3 + [opened] * 10
    return _write(tmp_path_factory.mktemp("clips") / "blink.mp4", frames)


def test_ear_separates_open_from_closed_eyes(data_dir):
    from facelens.align import landmarks_68
    from facelens.io.image import decode_image
    from facelens.engine import models

    folder = data_dir / "identity" / "lfw" / "lfw_deepfunneled" / "Bill_McBride"
    ears = {}
    for name in ("Bill_McBride_0004.jpg", "Bill_McBride_0007.jpg"):
        image = decode_image(folder / name)
        face = models().detector.detect(image)[0]
        ears[name] = eye_aspect_ratio(landmarks_68(image, face.box))
    assert ears["Bill_McBride_0007.jpg"] < 0.2 < ears["Bill_McBride_0004.jpg"]


def test_blinks_are_found_at_their_times(blink_clip):
    result = check_clip(blink_clip, signal="ear")
    assert result.is_live
    assert [(b["start"], b["end"]) for b in result.blinks] == [(0.48, 0.6), (1.12, 1.2)]


def test_still_photo_as_video_has_no_blink_and_no_motion(spoof_dir, tmp_path):
    still = cv2.imread(str(spoof_dir / "minivision_silent_face" / "live" / "image_T1.jpg"))
    clip = _write(tmp_path / "still.mp4", [still] * 50)
    result = check_clip(clip)
    assert not result.is_live and result.blinks == []
    assert result.frames_with_face == 50
    # a re-encoded still moves the boxes by compression noise only: 0.018 face sizes with CenterFace (0 with HOG),
    # against 1.7 in the Hamilton clip's shot of the singer
    assert result.translation < 0.05 and result.pose_range < 0.05


def test_shared_clip_without_visible_blink(data_dir):
    result = check_clip(data_dir / "video" / "face_recognition" / "short_hamilton_clip.mp4")
    assert result.blinks == [] and not result.is_live
    # the longest shot of one face is followed (the singer, frames 82-210: 2.74-7.0 s; HOG found him from 4.0 s
    # only), not the cuts to other people
    assert 120 <= result.frames_with_face <= 129


def test_unreadable_clip(tmp_path):
    with pytest.raises(VideoError, match="cannot open"):
        check_clip(tmp_path / "missing.mp4")


def test_a_one_frame_dip_is_no_blink_at_30_fps():
    """A blink closes the eye for 100-400 ms: one frame below the level at 30 fps (33 ms) is landmark jitter; two
    frames are a blink; at 10 fps one frame (100 ms) is."""
    import numpy as np

    from facelens.liveness.active import find_blinks

    ear = np.full(30, 0.3)
    one, two = ear.copy(), ear.copy()
    one[10] = 0.1
    two[10:12] = 0.1
    at_30 = np.arange(30) / 30
    assert find_blinks(at_30, one) == []
    assert [b["start"] for b in find_blinks(at_30, two)] == [round(10 / 30, 3)]
    assert [b["start"] for b in find_blinks(np.arange(30) / 10, one)] == [1.0]


# -- the blink signal by name (blendshapes or EAR), one blink algorithm over either series ---------------------------
#: Real LFW photos of one person, checked by eye: eyes open in the first, both eyes closed in the second (they are two
#: of benchmarks/liveness.py's BLINK_PAIRS, where EAR misses both blinks of the Gary Winnick clip).
GARY = ("Gary_Winnick_0001", "Gary_Winnick_0002")
#: Annotated closures of the spliced clip: (first, last) frame.
CLOSURES = [(12, 15), (28, 30)]


@pytest.fixture(scope="module")
def gary_clip(data_dir, tmp_path_factory):
    folder = data_dir / "identity" / "lfw" / "lfw_deepfunneled" / "Gary_Winnick"
    opened, closed = (cv2.imread(str(folder / f"{name}.jpg")) for name in GARY)
    if opened is None or closed is None:
        pytest.skip("LFW Gary_Winnick images not found")
    frames = [opened] * 12 + [closed] * 4 + [opened] * 12 + [closed] * 3 + [opened] * 10
    return _write(tmp_path_factory.mktemp("clips") / "gary.mp4", frames)


@pytest.fixture(scope="module")
def still_clip(spoof_dir, tmp_path_factory):
    still = cv2.imread(str(spoof_dir / "minivision_silent_face" / "live" / "image_T1.jpg"))
    return _write(tmp_path_factory.mktemp("clips") / "still.mp4", [still] * 30)


def test_blendshape_signal_finds_the_annotated_blinks(gary_clip):
    pytest.importorskip("ai_edge_litert", reason="the blendshapes signal runs on LiteRT (facelens[litert])")
    result = check_clip(gary_clip, signal="blendshapes")
    assert result.signal == "blendshapes" and result.is_live
    assert len(result.blinks) == len(CLOSURES)
    for blink, (first, last) in zip(result.blinks, CLOSURES):
        assert abs(blink["start_frame"] - first) <= 2 and abs(blink["end_frame"] - last) <= 2
    # open eyes score near 1 (1 - eyeBlink), the closed photo well under it
    assert result.open_level > 0.8 and max(b["min_openness"] for b in result.blinks) < 0.5


def test_default_signal_is_blendshapes_when_litert_is_there(gary_clip):
    pytest.importorskip("ai_edge_litert", reason="the blendshapes signal runs on LiteRT (facelens[litert])")
    from facelens.liveness.active import default_signal

    assert default_signal() == "blendshapes"
    assert check_clip(gary_clip).signal == "blendshapes"


@pytest.mark.parametrize("signal", ["ear", "blendshapes", "eye_state"])
def test_still_photo_has_no_blink_with_any_signal(still_clip, signal):
    if signal == "blendshapes":
        pytest.importorskip("ai_edge_litert", reason="the blendshapes signal runs on LiteRT (facelens[litert])")
    result = check_clip(still_clip, signal=signal)
    assert result.signal == signal and result.blinks == [] and not result.is_live
    assert result.frames_with_face == 30


def test_eye_state_signal_finds_the_annotated_blinks(data_dir, tmp_path):
    """Open Model Zoo's open/closed-eye classifier on Barbara Brezigar's LFW photos (open 0002, closed 0001,
    checked by eye), spliced as the Gary Winnick clip."""
    folder = data_dir / "identity" / "lfw" / "lfw_deepfunneled" / "Barbara_Brezigar"
    opened, closed = (cv2.imread(str(folder / f"Barbara_Brezigar_000{i}.jpg")) for i in (2, 1))
    frames = [opened] * 12 + [closed] * 4 + [opened] * 12 + [closed] * 3 + [opened] * 10
    result = check_clip(_write(tmp_path / "barbara.mp4", frames), signal="eye_state")
    assert result.signal == "eye_state" and len(result.blinks) == len(CLOSURES)
    for blink, (first, last) in zip(result.blinks, CLOSURES):
        assert abs(blink["start_frame"] - first) <= 2 and abs(blink["end_frame"] - last) <= 2


def test_eye_state_model_tells_open_from_closed_eyes(data_dir):
    from facelens.align import landmarks_68
    from facelens.engine import models
    from facelens.io.image import decode_image
    from facelens.liveness.eye_state import get_eye_state_model

    folder = data_dir / "identity" / "lfw" / "lfw_deepfunneled" / "Denise_Johnson"
    p_open = {}
    for name in ("Denise_Johnson_0001", "Denise_Johnson_0002"):
        image = decode_image(folder / f"{name}.jpg")
        face = models().detector.detect(image)[0]
        p_open[name] = get_eye_state_model().open_probability(image, [landmarks_68(image, face.box)])[0]
    assert p_open["Denise_Johnson_0001"].mean() > 0.8 and p_open["Denise_Johnson_0002"].max() < 0.2


def test_unknown_signal_is_refused_before_reading(tmp_path):
    with pytest.raises(ValueError, match="unknown blink signal 'eyes'.*ear, blendshapes, eye_state"):
        check_clip(tmp_path / "missing.mp4", signal="eyes")


def test_blinks_carry_their_frames():
    import numpy as np

    from facelens.liveness.active import find_blinks

    openness = np.full(20, 0.95)
    openness[8:11] = 0.3
    frames = np.arange(100, 120)
    (blink,) = find_blinks(np.arange(20) / 25, openness, frames=frames)
    assert (blink["start_frame"], blink["end_frame"]) == (108, 110) and blink["min_openness"] == 0.3


def test_a_missing_signal_model_fails_fast_and_the_default_falls_back_to_ear(monkeypatch, tmp_path):
    """Offline with no model files: an explicit eye_state/blendshapes signal is refused before any frame is read
    (the error names the file); the default signal falls back to EAR, which needs only dlib's bundled models."""
    from facelens.errors import ModelUnavailableError
    from facelens.liveness.active import check_signal, default_signal

    monkeypatch.setenv("FACELENS_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("FACELENS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FACELENS_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="open_closed_eye_0001.onnx"):
        check_signal("eye_state")
    with pytest.raises(ModelUnavailableError):
        check_signal("blendshapes")
    assert default_signal() == "ear"
    with pytest.raises(ModelUnavailableError):
        check_clip(tmp_path / "missing.mp4", signal="eye_state")
