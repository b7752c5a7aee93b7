"""Detectors: face counts on the labelled photos, landmark order, options."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from helpers import need_data
from facelens.detect import get_detector
from facelens.io.image import decode_image


def _labelled():
    root = need_data("identity", "face_recognition")
    with open(root / "labels.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["num_faces_expected"]]
    return root, rows


def test_hog_face_counts_on_labelled_images(pipeline):
    root, rows = _labelled()
    wrong = []
    for row in rows:
        found = pipeline.detector.detect(pipeline.decode(root / row["image"]))
        if len(found) != int(row["num_faces_expected"]):
            wrong.append((row["image"], len(found), row["num_faces_expected"]))
    assert not wrong, wrong


@pytest.mark.parametrize("name", ["yunet", "hog"])
def test_group_photo_and_landmark_order(name):
    root, _ = _labelled()
    image = decode_image(root / "examples" / "two_people.jpg")
    faces = get_detector(name).detect(image)
    assert len(faces) == 2
    assert faces[0].area >= faces[1].area  # largest first
    for face in faces:
        eye_r, eye_l, nose, mouth_r, mouth_l = face.landmarks
        assert eye_r[0] < eye_l[0] and mouth_r[0] < mouth_l[0]  # image-left first
        assert eye_r[1] < nose[1] < (mouth_r[1] + mouth_l[1]) / 2 + 1
        x1, y1, x2, y2 = face.box
        assert x1 <= nose[0] <= x2 and y1 <= nose[1] <= y2


def test_cnn_detector_and_68_landmarks():
    root, _ = _labelled()
    image = decode_image(root / "examples" / "obama_small.jpg")
    faces = get_detector("cnn", upsample=1, landmarks68=True).detect(image)
    assert len(faces) == 1 and faces[0].landmarks68.shape == (68, 2)


def test_min_face_size_and_large_image_downscale():
    root, _ = _labelled()
    image = decode_image(root / "examples" / "obama-1080p.jpg")
    full = get_detector("hog", max_side=None).detect(image)
    small = get_detector("hog", max_side=800).detect(image)
    assert len(full) == len(small) == 1
    assert np.abs(full[0].box - small[0].box).max() < 0.08 * full[0].width  # mapped back to full-size pixels
    assert get_detector("hog", min_face_size=2000).detect(image) == []


def test_no_face_and_tiny_image(pipeline):
    assert pipeline.detector.detect(np.full((300, 300, 3), 127, np.uint8)) == []
    assert pipeline.detector.detect(np.zeros((1, 1, 3), np.uint8)) == []


def test_saved_hog_detector_is_dlibs_own_and_a_damaged_copy_is_remade(monkeypatch, tmp_path):
    """The HOG detector read from the cache finds exactly what dlib's compiled-in one finds; a damaged copy is
    replaced, never used."""
    import dlib

    from facelens.detect.dlib_detectors import frontal_face_detector
    from facelens.io.image import decode_image

    monkeypatch.setenv("FACELENS_CACHE_DIR", str(tmp_path / "cache"))
    image = decode_image(need_data("identity", "face_recognition", "examples", "two_people.jpg"))
    builtin = dlib.get_frontal_face_detector().run(image, 1, 0.0)
    made = frontal_face_detector()  # first use: saves the copy
    saved = next((tmp_path / "cache" / "models" / "dlib_hog").glob("*.svm"))
    loaded = frontal_face_detector()  # read back from the copy
    for detector in (made, loaded):
        rects, scores, _ = detector.run(image, 1, 0.0)
        assert [tuple((r.left(), r.top(), r.right(), r.bottom())) for r in rects] == \
               [tuple((r.left(), r.top(), r.right(), r.bottom())) for r in builtin[0]] and len(rects) == 2
        assert scores == builtin[1]
    saved.write_bytes(saved.read_bytes()[:1000])  # truncated
    rects, scores, _ = frontal_face_detector().run(image, 1, 0.0)
    assert scores == builtin[1] and saved.stat().st_size > 1000  # remade from dlib's own
