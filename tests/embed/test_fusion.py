"""The fused embedder (dlib flip + MobileFaceNet): its vector is unit length and one inner product of two fused
vectors is Σ wᵢ·cosᵢ of the members, so a plain gallery search answers with fused scores; its weights and
thresholds come from its measured profile; galleries of one model refuse another's probes."""

from __future__ import annotations

import numpy as np
import pytest

FUSION = "dlib+mobilefacenet"


@pytest.fixture(scope="module")
def fused():
    from facelens.embed import get_embedder

    return get_embedder(FUSION)


@pytest.fixture(scope="module")
def sample(fused, devtest_detections):
    """(paths, fused crops, fused vectors, member vectors) of 24 DevTest faces."""
    paths = list(devtest_detections)[:24]
    crops = [fused.crops(*_one(devtest_detections[p]))[0] for p in paths]
    return paths, crops, fused.embed_crops(crops), fused.member_vectors(crops)


def _one(found):
    image, face = found
    return image, [face]


def test_model_id_weights_and_dimension(fused):
    from facelens.decide import profile, verify_threshold

    assert fused.model_id == "fusion(dlib_resnet_v1+flip,mobilefacenet_foamliu+flip)"
    assert fused.dim == 256 and len(fused.weights) == 2
    assert abs(float(fused.weights.sum()) - 1) < 1e-9 and (fused.weights > 0).all()
    # its own measured profile (not a member's): thresholds and FPIR-by-size work on fused scores unchanged
    assert profile(fused.model_id).model_id == fused.model_id
    assert 0 < verify_threshold(fused.model_id) < 1


def test_fused_vectors_are_unit_and_their_inner_product_is_the_weighted_sum(fused, sample):
    _, _, vectors, members = sample
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    fused_scores = vectors @ vectors.T
    weighted = sum(w * (m @ m.T) for w, m in zip(fused.weights, members))
    np.testing.assert_allclose(fused_scores, weighted, atol=1e-5)
    # the members are the registered embedders themselves, each run once on the batch
    from facelens.embed import get_embedder

    dlib_part = get_embedder("dlib_onnx_flip").embed_crops([c.parts[0] for c in sample[1]])
    np.testing.assert_allclose(members[0], dlib_part, atol=1e-6)
    np.testing.assert_allclose(fused.split(vectors)[1], members[1], atol=1e-5)


def test_crops_carry_each_members_geometry(sample):
    _, crops, _, _ = sample
    assert crops[0].parts[0].shape == (150, 150, 3) and crops[0].parts[1].shape == (112, 112, 3)


def test_embed_crops_rejects_foreign_crops(fused, sample):
    _, crops, _, _ = sample
    with pytest.raises(ValueError, match="crops"):
        fused.embed_crops([crops[0].parts[0]])
    assert fused.embed_crops([]).shape == (0, 256)


def test_weights_must_sum_to_one():
    from facelens.embed import get_embedder

    with pytest.raises(ValueError, match="sum"):
        get_embedder(FUSION, weights=[0.5, 0.6])
    other = get_embedder(FUSION, weights=[0.3, 0.7])
    assert other.weights.tolist() == [0.3, 0.7]
    # other weights, other vectors: another model id, so no gallery takes both
    assert other.model_id == "fusion(dlib_resnet_v1+flip,mobilefacenet_foamliu+flip;w=0.3,0.7)"
    stored = get_embedder(FUSION)
    assert get_embedder(FUSION, weights=stored.weights.tolist()).model_id == stored.model_id


def test_fused_gallery_answers_with_fused_scores(fused, sample, tmp_path):
    from facelens.gallery.local import LocalGallery

    paths, _, vectors, members = sample
    with LocalGallery(tmp_path / "g", model_id=fused.model_id, dim=fused.dim) as gallery:
        names = [f"p{i}" for i in range(len(paths) - 4)]
        gallery.add_embeddings(names, vectors[:-4], model_id=fused.model_id)
        probes = vectors[-4:]
        found = gallery.search(probes, k=3)
    for j, candidates in enumerate(found):
        q = len(paths) - 4 + j
        expected = {f"p{i}": sum(w * float(m[q] @ m[i]) for w, m in zip(fused.weights, members)) for i in range(len(names))}
        best = sorted(expected.items(), key=lambda kv: -kv[1])[:3]
        assert [c.name for c in candidates] == [name for name, _ in best]
        np.testing.assert_allclose([c.score for c in candidates], [s for _, s in best], atol=1e-5)


def test_gallery_of_one_model_refuses_another(fused, sample, tmp_path):
    from facelens.errors import ModelMismatchError
    from facelens.gallery.local import LocalGallery

    _, _, vectors, members = sample
    with LocalGallery(tmp_path / "g", model_id=fused.model_id, dim=fused.dim) as gallery:
        gallery.add_embeddings(["a"], vectors[:1], model_id=fused.model_id)
        with pytest.raises(ModelMismatchError):
            gallery.check_model("mobilefacenet_foamliu+flip")
        with pytest.raises(ModelMismatchError):
            gallery.add_embeddings(["b"], vectors[1:2], model_id="dlib_resnet_v1+flip")
        with pytest.raises(ModelMismatchError):
            gallery.search(members[1][:1])  # a member's own 128-D vector is not a fused probe
    with LocalGallery(tmp_path / "plain", model_id="dlib_resnet_v1+flip") as gallery:
        with pytest.raises(ModelMismatchError):
            gallery.check_model(fused.model_id)
    with pytest.raises(ModelMismatchError):
        LocalGallery(tmp_path / "plain", model_id="dlib_resnet_v1")  # flip and plain dlib are different models


def test_fit_weights_recovers_the_better_member_and_cross_validates():
    """On synthetic scores where member 0 separates and member 1 is noise, the fit leans on member 0."""
    from facelens.embed.fusion import fit_weights, nested_cv_accuracy, weight_grid

    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    good = np.where(labels, 0.7, 0.3) + rng.normal(0, 0.1, 400)
    noise = rng.normal(0.5, 0.1, 400)
    weights, report = fit_weights(np.c_[good, noise], labels)
    assert weights[0] > 0.8 and abs(weights.sum() - 1) < 1e-9
    assert report["cv_accuracy"] >= report["members_cv_accuracy"][1] + 0.3
    assert 0.9 < nested_cv_accuracy(np.c_[good, noise], labels) <= report["cv_accuracy"] + 0.01
    assert len(weight_grid(2, 0.01)) == 101 and np.allclose(weight_grid(3, 0.5).sum(axis=1), 1)


def test_missing_weights_say_how_to_fit_them(monkeypatch):
    from facelens.embed import fusion
    from facelens.errors import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="measure_thresholds"):
        fusion.stored_weights("fusion(nothing,here)", ["nothing", "here"])
