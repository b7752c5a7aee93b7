"""1:1 verification: LFW DevTest accuracy with the default pipeline and threshold."""

from __future__ import annotations

import numpy as np
import pytest

import facelens
from helpers import need_data
from facelens.decide import profile, threshold_for_fpir, verify_threshold
from facelens.embed import DEFAULT_MODEL_ID
from facelens.errors import NoFaceError


def test_lfw_devtest_accuracy(devtest_scored):
    """Failures to enrol count against us: a genuine pair without a face is a miss."""
    threshold = verify_threshold(DEFAULT_MODEL_ID)
    scores, labels = devtest_scored.scores, devtest_scored.labels
    accuracy = float(((scores >= threshold) == labels.astype(bool)).mean())
    print(f"LFW DevTest accuracy {accuracy:.4f} at threshold {threshold:.4f} ({int(devtest_scored.fte.sum())} FTE pairs)")
    assert len(scores) == 1000
    assert accuracy >= 0.985  # measured 0.987 (dlib_onnx, the default, 2 FTE pairs); MobileFaceNet 0.990


def test_verify_api_reports_face_used():
    root = need_data("identity", "face_recognition", "examples")
    same = facelens.verify(root / "obama.jpg", root / "obama2.jpg")
    other = facelens.verify(root / "obama.jpg", root / "biden.jpg")
    assert same.is_match and not other.is_match
    assert same.similarity > other.similarity
    assert abs(same.distance - np.sqrt(2 - 2 * same.similarity)) < 1e-6
    group = facelens.verify(root / "two_people.jpg", root / "biden.jpg", select="largest")
    assert group.faces_in_a == 2 and group.face_a["index"] == 0
    with pytest.raises(NoFaceError):
        facelens.verify(root / "two_people.jpg", root / "biden.jpg", select="only")
    d = same.to_dict()
    assert set(d) >= {"similarity", "distance", "threshold", "is_match", "face_a", "face_b"}


def test_no_face_is_a_typed_error():
    with pytest.raises(NoFaceError):
        facelens.verify(np.full((200, 200, 3), 90, np.uint8), np.full((200, 200, 3), 90, np.uint8))


def test_open_set_threshold_grows_with_gallery_size():
    values = [threshold_for_fpir("dlib_resnet_v1", 0.01, n) for n in (1, 50, 5_000, 50_000)]
    assert values == sorted(values) and values[-1] > values[0]
    prof = profile("dlib_resnet_v1")
    # the FMR→threshold map inverts: FMR at the threshold for 1e-3 is 1e-3
    assert abs(np.log10(prof.fmr_at(prof.threshold_for_fmr(1e-3))) + 3) < 0.05


def test_threshold_as_target_fmr():
    root = need_data("identity", "face_recognition", "examples")
    loose = facelens.verify(root / "obama.jpg", root / "obama2.jpg", fmr=1e-2)
    strict = facelens.verify(root / "obama.jpg", root / "obama2.jpg", fmr=1e-4)
    assert strict.threshold > loose.threshold
    assert abs(loose.threshold - profile(DEFAULT_MODEL_ID).threshold_for_fmr(1e-2)) < 1e-9  # verify uses the default


def test_one_threshold_policy_for_every_door():
    from facelens.decide import ThresholdPolicy

    model = "dlib_resnet_v1"
    prof = profile(model)
    assert ThresholdPolicy().threshold(model) == verify_threshold(model)
    assert ThresholdPolicy.for_verify(0.5, fmr=1e-3).threshold(model) == 0.5  # a fixed similarity wins
    assert ThresholdPolicy.for_verify(fmr=1e-3).threshold(model) == prof.threshold_for_fmr(1e-3)
    assert ThresholdPolicy.for_identify().mode == "fpir"
    small, large = (ThresholdPolicy.for_identify(fpir=0.01).threshold(model, n) for n in (10, 10_000))
    assert small == threshold_for_fpir(model, 0.01, 10) and large > small
    assert ThresholdPolicy.for_identify(threshold=0.8).threshold(model, 10_000) == 0.8
    with pytest.raises(ValueError):
        ThresholdPolicy(similarity=0.5, fmr=1e-3)
    with pytest.raises(ValueError):
        ThresholdPolicy(fpir=1.5)


def test_verify_batches_both_images_and_gates_on_liveness():
    """Liveness on: each face reports its liveness, and a spoof never matches even its own live photo."""
    spoof = need_data("spoof", "minivision_silent_face")
    live, fake = spoof / "live" / "image_T1.jpg", spoof / "spoof" / "image_F2.jpg"
    plain = facelens.verify(live, fake)
    gated = facelens.verify(live, fake, liveness=True)
    assert gated.similarity == pytest.approx(plain.similarity, abs=1e-6)
    assert gated.face_a["liveness"]["is_live"] and not gated.face_b["liveness"]["is_live"]
    assert not gated.is_match and "liveness" not in plain.face_a


def test_verify_select_centre_compares_the_centred_face(data_dir):
    """``select="centre"`` (library, CLI --select, service ?select=) takes the face nearest the image centre: in
    LFW's Tassos_Papadopoulos_0001 that is him, while the largest face is another man."""
    import facelens

    folder = data_dir / "identity" / "lfw" / "lfw_deepfunneled" / "Tassos_Papadopoulos"
    a, b = folder / "Tassos_Papadopoulos_0001.jpg", folder / "Tassos_Papadopoulos_0002.jpg"
    if not a.is_file():
        pytest.skip(f"{a} not staged")
    centre = facelens.verify(a, b, select="centre", detector="hog")
    largest = facelens.verify(a, b, select="largest", detector="hog")
    assert centre.is_match and not largest.is_match and centre.similarity > largest.similarity


def test_verify_and_embed_take_another_embedder_with_its_own_threshold():
    """``embedder=`` compares another model's vectors at that model's threshold (dlib's ResNet gives
    face_recognition's vectors); an unknown name is refused before any image is read."""
    from facelens.embed import MODELS

    root = need_data("identity", "face_recognition", "examples")
    default = facelens.verify(root / "obama.jpg", root / "obama2.jpg")
    dlib = facelens.verify(root / "obama.jpg", root / "obama2.jpg", embedder="dlib_onnx")
    assert default.model_id == DEFAULT_MODEL_ID and dlib.model_id == MODELS["dlib_onnx"].model_id
    assert dlib.threshold == pytest.approx(verify_threshold(dlib.model_id)) != default.threshold
    assert dlib.is_match and default.is_match
    vectors = facelens.embed(root / "obama.jpg", embedder="dlib_onnx")
    assert vectors.faces.model_id == dlib.model_id and vectors.faces.embedding.shape[1] == 128
    with pytest.raises(ValueError, match="unknown embedder"):
        facelens.verify(root / "obama.jpg", root / "obama2.jpg", embedder="nope")
