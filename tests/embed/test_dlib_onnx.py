"""dlib's ResNet on onnxruntime gives dlib's own embeddings, batched or not, and is the default embedder."""

from __future__ import annotations

import numpy as np
import pytest


def _accuracy(pairs, vectors: dict, threshold: float) -> tuple[float, int]:
    """Accuracy on ``pairs`` (a missing face counts as "no match") and how many pairs were decided."""
    correct, decided = 0, 0
    for pair in pairs.pairs:
        va, vb = vectors.get(pair.a), vectors.get(pair.b)
        match = va is not None and vb is not None and float(va @ vb) >= threshold
        correct += int(match == pair.same)
        decided += int(va is not None and vb is not None)
    return correct / len(pairs.pairs), decided


def test_onnx_embeddings_equal_dlibs(devtest_chips, dlib_vectors, onnx_vectors):
    paths = list(devtest_chips)
    ours = np.stack([onnx_vectors[p] for p in paths])
    reference = np.stack([dlib_vectors[p] for p in paths])
    assert ours.shape == reference.shape == (len(paths), 128) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    worst = float(np.abs(ours - reference).max())
    print(f"{len(paths)} LFW chips: max |onnx - dlib| per component {worst:.2e}")
    assert worst <= 1e-4


def test_onnx_devtest_accuracy_equals_dlibs(devtest_pairs, dlib_vectors, onnx_vectors):
    from facelens.decide import verify_threshold

    threshold = verify_threshold("dlib_resnet_v1")
    ours, decided = _accuracy(devtest_pairs, onnx_vectors, threshold)
    reference, _ = _accuracy(devtest_pairs, dlib_vectors, threshold)
    print(f"DevTest subset ({len(devtest_pairs.pairs)} pairs, {decided} with both faces): "
          f"accuracy onnx {ours:.4f}, dlib {reference:.4f}")
    assert ours == reference
    assert ours > 0.95  # the model still recognises faces (the full DevTest figure is 0.989)


def test_batched_equals_one_at_a_time(devtest_chips, onnx_embedder):
    from facelens.embed.dlib_onnx import DlibOnnxEmbedder

    chips = list(devtest_chips.values())[:21]
    batched = onnx_embedder.embed_crops(chips)
    single = np.concatenate([onnx_embedder.embed_crops([c]) for c in chips])
    uneven = DlibOnnxEmbedder(batch_size=8, threads=1).embed_crops(chips)  # 8 + 8 + 5, one thread
    assert batched.shape == single.shape == uneven.shape == (21, 128)
    assert float(np.abs(batched - single).max()) <= 1e-5
    assert float(np.abs(batched - uneven).max()) <= 1e-5


def test_flip_averages_the_mirror_image(devtest_chips, onnx_embedder):
    from facelens.embed import get_embedder
    from facelens.embed.base import l2_normalise

    flip = get_embedder("dlib_onnx_flip")
    assert flip.model_id == "dlib_resnet_v1+flip" and onnx_embedder.model_id == "dlib_resnet_v1"
    chips = list(devtest_chips.values())[:6]
    plain = onnx_embedder.embed_crops(chips)
    mirrored = onnx_embedder.embed_crops([c[:, ::-1] for c in chips])
    expected = l2_normalise(plain + mirrored)  # both unit vectors: the direction of their mean
    got = flip.embed_crops(chips)
    assert float(np.abs(got - expected).max()) <= 1e-5
    assert float(np.abs(got - plain).max()) > 1e-3  # different vectors, hence a model id of their own


def test_empty_and_bad_chips(onnx_embedder):
    assert onnx_embedder.embed_crops([]).shape == (0, 128)
    with pytest.raises(ValueError, match="150x150"):
        onnx_embedder.embed_crops([np.zeros((112, 112, 3), np.uint8)])


def test_threads_from_the_environment(monkeypatch):
    from facelens.embed.dlib_onnx import default_threads

    monkeypatch.setenv("FACELENS_EMBED_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("FACELENS_EMBED_THREADS", "lots")
    assert default_threads() >= 1


def test_dlibs_model_id_is_served_by_onnx_with_dlib_as_fallback():
    """dlib galleries (model id dlib_resnet_v1, the default until 2026-12) are searched with the batched ONNX
    runtime; dlib's own runtime gives the same model id."""
    from facelens.embed import embedder_for_model, get_embedder
    from facelens.engine import models

    assert embedder_for_model("dlib_resnet_v1") == "dlib_onnx"
    dlib = models(embedder=embedder_for_model("dlib_resnet_v1"))
    assert dlib.embedder.runtime == "onnx" and dlib.model_id == "dlib_resnet_v1"
    fallback = get_embedder("dlib")
    assert fallback.runtime == "dlib" and fallback.model_id == "dlib_resnet_v1"


def test_flip_has_its_own_measured_profile():
    from facelens.decide import profile

    flip, plain = profile("dlib_resnet_v1+flip"), profile("dlib_resnet_v1")
    assert flip.model_id == "dlib_resnet_v1+flip" and plain.model_id == "dlib_resnet_v1"
    assert flip.verify_threshold != plain.verify_threshold
    assert profile("dlib_resnet_v1+jitter2").model_id == "dlib_resnet_v1"  # variants without a profile: the base one


def test_session_is_created_once_across_threads(devtest_chips):
    from concurrent.futures import ThreadPoolExecutor

    from facelens.embed.dlib_onnx import DlibOnnxEmbedder

    embedder = DlibOnnxEmbedder(threads=1)
    chips = list(devtest_chips.values())[:4]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: (embedder.session(), embedder.embed_crops([c])), chips))
    assert len({id(session) for session, _ in results}) == 1
    expected = embedder.embed_crops(chips)
    assert float(np.abs(np.concatenate([v for _, v in results]) - expected).max()) <= 1e-5


def test_unusable_cache_says_how_to_fall_back(monkeypatch, tmp_path, devtest_chips):
    from facelens.embed.dlib_onnx import DlibOnnxEmbedder
    from facelens.errors import FacelensError

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("FACELENS_CACHE_DIR", str(blocked))
    with pytest.raises(FacelensError, match='embedder="dlib"'):
        DlibOnnxEmbedder().embed_crops(list(devtest_chips.values())[:1])
