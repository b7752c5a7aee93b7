"""The engine on real LFW images: batched across images and processes, it answers exactly what the one-image
path answers, in input order, and a bad input only fails itself."""

from __future__ import annotations

import numpy as np
import pytest

import facelens
from helpers import need_data
from facelens.decide import ThresholdPolicy, open_set_names
from facelens.engine import FaceAnalyzer


@pytest.fixture(scope="module")
def lfw_images(devtest) -> list[str]:
    return sorted(devtest.images())[:12]


@pytest.fixture(scope="module")
def one_by_one(lfw_images, pipeline) -> dict[str, object]:
    """The plain one-image path (decode → detect → embed with the models themselves, no engine) for each image:
    (image, boxes, embeddings)."""
    out = {}
    for path in lfw_images:
        image = pipeline.decode(path)
        found = pipeline.detector.detect(image)
        out[path] = (image, np.stack([f.box for f in found]), pipeline.embedder.embed(image, found))
    return out


@pytest.fixture(scope="module")
def pooled(lfw_images) -> list:
    """Two worker processes, one image per chunk, so chunks finish out of order."""
    return list(FaceAnalyzer(workers=2, chunk_size=1).run(lfw_images))


def test_pool_keeps_input_order_and_matches_the_one_image_path(lfw_images, one_by_one, pooled):
    assert [r.source for r in pooled] == lfw_images
    for result in pooled:
        image, boxes, embeddings = one_by_one[result.source]
        assert result.error is None and len(result.faces) == len(boxes) > 0
        assert (result.width, result.height) == (image.shape[1], image.shape[0])
        assert np.allclose(result.faces.box, boxes)
        assert np.allclose(result.faces.embedding, embeddings, atol=1e-5)
        assert result.faces.model_id == "dlib_resnet_v1"


def test_batched_chunk_equals_per_image(lfw_images, pooled):
    """All crops of a chunk in one embed_crops call give the per-image answers."""
    engine = FaceAnalyzer(workers=1, chunk_size=len(lfw_images))
    batched = list(engine.run(lfw_images))
    for together, alone, other in zip(batched, (engine.run_one(p) for p in lfw_images), pooled):
        assert together.to_dict() == alone.to_dict() == other.to_dict()
        assert np.allclose(together.faces.embedding, alone.faces.embedding, atol=1e-5)


def test_bad_inputs_get_error_records_and_the_rest_answer(lfw_images, tmp_path, pooled):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    blank = np.full((120, 120, 3), 128, np.uint8)
    inputs = [lfw_images[0], str(text), lfw_images[1], str(tmp_path / "missing.png"), b"\x00garbage", blank]
    seen = []
    for workers in (1, 2):
        results = list(FaceAnalyzer(workers=workers, chunk_size=2).run(inputs, progress=lambda d, t: seen.append((d, t))))
        assert [r.error is None for r in results] == [True, False, True, False, False, True]
        assert "notes.jpg" in results[1].error and "missing.png" in results[3].error
        assert len(results[5].faces) == 0 and results[5].faces.embedding.shape == (0, 128)
        assert results[0].to_dict() == pooled[0].to_dict() and results[2].to_dict() == pooled[1].to_dict()
        assert results[1].to_dict()["faces"] == [] and results[1].to_dict()["error"] == results[1].error
    assert seen[-1] == (6, 6) and len(seen) == 12


def test_select_embeds_one_face_per_image():
    root = need_data("identity", "face_recognition", "examples")
    every = FaceAnalyzer(workers=1).run_one(root / "two_people.jpg")
    largest = FaceAnalyzer(select="largest", workers=1).run_one(root / "two_people.jpg")
    only = FaceAnalyzer(select="only", workers=1).run_one(root / "two_people.jpg")
    assert len(every.faces) == 2 and len(largest.faces) == 1
    assert np.allclose(largest.faces.embedding[0], every.faces.embedding[0], atol=1e-6)
    assert only.error is not None and "exactly one" in only.error


def test_identify_task_matches_the_gallery_decisions(tmp_path):
    """The engine's one batched search per chunk decides as each face searched alone, with the policy's threshold."""
    root = need_data("identity", "face_recognition", "examples", "knn_examples")
    gallery = facelens.open_gallery(tmp_path / "knn")
    for folder in sorted((root / "train").iterdir()):
        assert facelens.enroll(gallery, folder.name, sorted(folder.iterdir())).added
    probes = sorted(str(p) for p in (root / "test").iterdir())
    engine = FaceAnalyzer(tasks=("identify",), gallery=gallery, k=2, workers=2, chunk_size=2)
    results = list(engine.run(probes))
    assert [r.source for r in results] == probes
    names = set()
    for result in results:
        limit = ThresholdPolicy.for_identify().threshold(gallery.model_id, gallery.face_count())
        alone = [gallery.search(vector[None], k=2)[0] for vector in result.faces.embedding]
        decided, scores = open_set_names(alone, limit)
        assert list(result.faces.name) == decided
        assert result.faces.identity_score.tolist() == pytest.approx(scores, abs=1e-6)
        assert result.faces.threshold.tolist() == pytest.approx([limit] * len(decided))
        names |= set(result.faces.name) - {None}
    assert {"obama", "biden", "kit_harington"} <= names
    one = facelens.identify(probes[0], gallery, k=2)
    assert one.to_dict() == results[0].to_dict()
    gallery.close()


def test_unknown_task_and_missing_gallery_are_refused():
    with pytest.raises(ValueError, match="unknown tasks"):
        FaceAnalyzer(tasks=("embed", "teleport"))
    with pytest.raises(ValueError, match="gallery"):
        FaceAnalyzer(tasks=("identify",))


def test_models_are_shared_by_configuration():
    """Code that loads "the default models" (the service at start-up, tests, benchmarks) gets the very objects the
    engine's in-process runs use; before, the service preloaded a second, never-used copy."""
    from facelens.engine import models

    assert FaceAnalyzer(workers=1).loaded_models() is models()
    assert FaceAnalyzer(tasks=("detect",), workers=1).loaded_models() is models()
    assert FaceAnalyzer(detector="cnn", workers=1).loaded_models() is models(detector="cnn") is not models()
