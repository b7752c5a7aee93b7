"""Embedders on ArcFace-aligned 112×112 crops (MobileFaceNet, SFace, InsightFace w600k_mbf): real LFW accuracy,
batching, flip symmetry, landmarks from the detection or from the box, SFace against OpenCV's own FaceRecognizerSF,
and the non-commercial licence notice."""

from __future__ import annotations

import logging

import numpy as np
import pytest

NAMES = ("mobilefacenet", "sface", "sface_flip", "insightface_mbf")


@pytest.fixture(scope="module", params=NAMES)
def embedded(request, devtest_detections):
    """(embedder, crops by path, vectors by path) for each model on the DevTest subset."""
    from facelens.embed import get_embedder

    embedder = get_embedder(request.param)
    _need_session(embedder)
    paths = list(devtest_detections)
    crops = {p: embedder.crops(*_image_and_faces(devtest_detections[p]))[0] for p in paths}
    vectors = embedder.embed_crops([crops[p] for p in paths])
    return embedder, crops, dict(zip(paths, vectors))


def _need_session(embedder):
    from facelens.errors import ModelUnavailableError

    try:
        embedder.session()
    except ModelUnavailableError as exc:
        pytest.skip(f"{embedder.name}'s model is not available here: {exc}")


def _image_and_faces(found):
    image, face = found
    return image, [face]


def test_recognises_lfw_faces_at_its_measured_threshold(embedded, devtest_pairs):
    from facelens.decide import verify_threshold

    embedder, _, vectors = embedded
    threshold = verify_threshold(embedder.model_id)
    correct = 0
    for pair in devtest_pairs.pairs:
        va, vb = vectors.get(pair.a), vectors.get(pair.b)
        correct += int((va is not None and vb is not None and float(va @ vb) >= threshold) == pair.same)
    accuracy = correct / len(devtest_pairs.pairs)
    print(f"{embedder.model_id}: DevTest subset accuracy {accuracy:.4f} at {threshold:.4f}")
    assert accuracy >= 0.95
    some = next(iter(vectors.values()))
    assert some.shape == (embedder.dim,) and abs(float(np.linalg.norm(some)) - 1) < 1e-5


def test_batched_equals_one_at_a_time(embedded):
    embedder, crops, _ = embedded
    sample = list(crops.values())[:9]
    batched = embedder.embed_crops(sample)
    single = np.concatenate([embedder.embed_crops([c]) for c in sample])
    assert float(np.abs(batched - single).max()) <= 1e-5


def test_sface_gives_opencvs_own_features(embedded):
    """Our SFace (batched onnxruntime, RGB 0–255) gives the vectors of OpenCV's FaceRecognizerSF.feature, the
    model's reference runtime, on the same aligned crops (which it takes as BGR)."""
    import cv2

    from facelens.models.registry import model_path

    embedder, crops, vectors = embedded
    if embedder.name != "sface":
        pytest.skip("OpenCV's recogniser runs SFace only")
    reference = cv2.FaceRecognizerSF.create(str(model_path("sface")), "")
    for path in list(crops)[:5]:
        theirs = reference.feature(np.ascontiguousarray(crops[path][:, :, ::-1])).ravel()
        np.testing.assert_allclose(vectors[path], theirs / np.linalg.norm(theirs), atol=1e-4)


def test_sface_crop_is_opencvs_align_crop(embedded, devtest_detections):
    """The crop is the one OpenCV's alignCrop cuts from the same 5 landmarks (the template SFace was trained on),
    to rounding for most faces; where our robust fit (LMEDS) sets a landmark aside and OpenCV's least squares
    does not, the two crops still give the same person."""
    import cv2

    from facelens.models.registry import model_path

    embedder, crops, vectors = embedded
    if embedder.name != "sface":
        pytest.skip("alignCrop belongs to OpenCV's SFace recogniser")
    reference = cv2.FaceRecognizerSF.create(str(model_path("sface")), "")
    paths = list(crops)[:10]
    same, theirs = 0, []
    for path in paths:
        image, face = devtest_detections[path]
        x1, y1, x2, y2 = (float(v) for v in face.box)
        row = np.array([x1, y1, x2 - x1, y2 - y1, *np.asarray(face.landmarks).ravel(), face.score], np.float32)
        theirs.append(reference.alignCrop(image, row[None]))  # a YuNet row: box xywh, 5 landmarks, score
        same += int(np.abs(theirs[-1].astype(np.int16) - crops[path]).mean() < 0.05)  # a few pixels ±1
    assert same >= 7, f"{same} of {len(paths)} crops match alignCrop's"
    similarity = np.sum(embedder.embed_crops(theirs) * np.stack([vectors[p] for p in paths]), axis=1)
    assert float(similarity.min()) >= 0.95, similarity


def test_landmarks_from_the_box_match_the_detections(embedded, devtest_detections):
    """Given a bare box, the embedder finds the 5 landmarks itself the way the dlib detectors do (HOG's faces, whatever
    the default detector is: other detectors bring landmarks of their own)."""
    from facelens.detect import get_detector

    embedder, _, _ = embedded
    image, _ = next(iter(devtest_detections.values()))
    (face,) = get_detector("hog").detect(image)
    assert face.landmarks is not None
    np.testing.assert_array_equal(embedder.crops(image, [face.box])[0], embedder.crops(image, [face])[0])


def test_flip_averaged_model_ignores_mirroring(devtest_chips, devtest_detections):
    from facelens.embed import get_embedder

    for name in ("mobilefacenet", "sface_flip", "dlib_onnx_flip"):
        embedder = get_embedder(name)
        image, face = next(iter(devtest_detections.values()))
        crop = embedder.crops(image, [face])[0]
        plain, mirrored = embedder.embed_crops([crop, np.ascontiguousarray(crop[:, ::-1])])
        assert float(np.abs(plain - mirrored).max()) <= 1e-5, name


def test_model_ids_and_defaults():
    from facelens.embed import DEFAULT_EMBEDDER, EMBEDDERS, get_embedder

    ids = {name: get_embedder(name).model_id for name in NAMES}
    assert ids == {"mobilefacenet": "mobilefacenet_foamliu+flip", "sface": "sface_2021dec",
                   "sface_flip": "sface_2021dec+flip", "insightface_mbf": "insightface_w600k_mbf_int8"}
    assert DEFAULT_EMBEDDER != "insightface_mbf" and set(NAMES) <= set(EMBEDDERS)
    assert get_embedder("insightface_mbf").dim == 512 and get_embedder("mobilefacenet").dim == 128


def test_non_commercial_licence_is_shown_once(monkeypatch, caplog):
    from facelens.embed import arcface_onnx, get_embedder

    monkeypatch.setattr(arcface_onnx, "_NOTICES_SHOWN", set())
    with caplog.at_level(logging.WARNING, logger="facelens.embed.arcface_onnx"):
        get_embedder("insightface_mbf").session()
        get_embedder("insightface_mbf").session()
        get_embedder("mobilefacenet").session()
    notices = [r for r in caplog.records if "NON-COMMERCIAL" in r.getMessage()]
    assert len(notices) == 1 and "insightface" in notices[0].getMessage()


def test_insightface_is_never_chosen_implicitly():
    """The non-commercial model is opt-in only: not the default, not a fusion member, not any door's fallback."""
    from pathlib import Path

    import facelens
    from facelens.embed import DEFAULT_EMBEDDER
    from facelens.embed.fusion import FUSIONS
    from facelens.engine import FaceAnalyzer, models

    assert DEFAULT_EMBEDDER != "insightface_mbf" and models().embedder_name != "insightface_mbf"
    assert FaceAnalyzer().embedder != "insightface_mbf"
    assert all("insightface_mbf" not in members for members in FUSIONS.values())
    # only the registry (by name) and the model's own module may name it: no code path picks it by itself
    package = Path(facelens.__file__).parent
    naming = {str(p.relative_to(package)) for p in package.rglob("*.py") if "insightface_mbf" in p.read_text()}
    assert naming <= {"embed/__init__.py", "embed/arcface_onnx.py"}, naming


def test_rewritten_graph_is_cached_so_a_start_does_not_import_onnx(embedded, tmp_path, monkeypatch):
    """Every model's graph is rewritten (batch relaxed, PRelu without branches) once into the user cache; a later
    embedder loads that file (no onnx import, ~0.6 CPU s of every process start) and gives the same vectors."""
    from facelens.embed import arcface_onnx, get_embedder
    from facelens.models import runtime

    embedder, crops, _ = embedded
    monkeypatch.setattr(runtime, "rewrite_dir", lambda: tmp_path / "rewritten")
    calls = []
    module, name = (arcface_onnx, "_batch_relaxed") if embedder.spec.fixed_batch else (runtime, "prelu_rewritten")
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda path: calls.append(path) or real(path))
    sample = list(crops.values())[:3]
    first = get_embedder(embedder.name).embed_crops(sample)
    assert len(calls) == 1 and len(list((tmp_path / "rewritten").glob("*.onnx"))) == 1
    second = get_embedder(embedder.name).embed_crops(sample)
    assert len(calls) == 1  # read from the cache
    assert float(np.abs(first - embedder.embed_crops(sample)).max()) <= 1e-6
    assert float(np.abs(second - first).max()) == 0.0
