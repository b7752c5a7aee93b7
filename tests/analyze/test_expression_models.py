"""Expression models by name: opencv_fer, the mini-Xception's features/classify split, the FER+ heads, and the
default model's FER+ valid accuracy (a fixed subset, features computed once per session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import need_data, need_model

#: Every 12th FER+ valid face (297 faces, 290 without contempt).
SUBSET_STEP = 12
#: Measured on that subset: ferplus_both 0.784 (0.807 on the whole split, benchmarks/expression.py), opencv_fer
#: 0.682. The margins cover onnxruntime / OpenCV / dlib version differences, not a weaker model.
DEFAULT_FLOOR = 0.75
OPENCV_FER_FLOOR = 0.64
#: Every 6th CK+48 face: ferplus_both measured 0.645 (0.670 on all); cnn_ensemble does better on posed CK+ (0.744)
#: (see benchmarks/expression.py): the FER+ head is tuned to FER2013's in-the-wild faces.
CKPLUS_FLOOR = 0.60


@pytest.fixture(scope="session")
def ferplus_subset():
    from facelens.analyze.expression_heads import FerPlus

    return FerPlus.load(need_data("expression", "ferplus", "ferplus_valid.npz")).every(SUBSET_STEP)


@pytest.fixture(scope="session")
def default_probs(ferplus_subset):
    from facelens.analyze.expression import get_expression_model
    from facelens.analyze.expression_heads import whole_crops

    model = get_expression_model()
    features = model.features(whole_crops(ferplus_subset.images, model))
    return model, features, model.classify(features)


@pytest.fixture(scope="session")
def opencv_fer_features(ferplus_subset, default_probs):
    """opencv_fer's features of the subset (the default head's first block when it reads them: not recomputed)."""
    need_model("opencv_fer", "facial_expression_recognition_mobilefacenet_2022july_int8.onnx")
    from facelens.analyze.expression import get_expression_model
    from facelens.analyze.expression_heads import whole_crops

    model = get_expression_model("opencv_fer")
    crops = whole_crops(ferplus_subset.images[:64], model)
    head, features, _ = default_probs
    if getattr(head, "backbones", ())[:1] == ("opencv_fer",):
        return model, crops, features[:, :512]
    return model, crops, model.features(whole_crops(ferplus_subset.images, model))


def test_default_model_ferplus_valid_accuracy(ferplus_subset, default_probs):
    from facelens.analyze.expression_heads import accuracy

    model, features, probs = default_probs
    assert probs.shape == (len(ferplus_subset.labels), len(model.labels))
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    acc = accuracy(ferplus_subset.labels, probs, model.labels)
    print(f"\n{model.name}: FER+ valid subset accuracy (7 classes) {acc:.3f} on {len(probs)}")
    assert acc >= DEFAULT_FLOOR


def test_default_head_exposes_features_and_classify(default_probs):
    """What test-time adaptation needs: per-face features, and probabilities computed from them alone."""
    model, features, probs = default_probs
    assert features.ndim == 2 and features.shape[0] == len(probs) and features.dtype == np.float32
    np.testing.assert_allclose(model.classify(features[:5]), probs[:5], atol=1e-6)


def test_opencv_fer_matches_its_own_graph(ferplus_subset, opencv_fer_features):
    """The fc layer applied in numpy gives the published graph's answer; accuracy is well above chance."""
    from facelens.analyze.expression_heads import accuracy
    from facelens.analyze.opencv_fer import load_graph
    from facelens.models.registry import model_path
    from facelens.models.runtime import onnx_session

    model, crops, features = opencv_fer_features
    assert features.shape == (len(ferplus_subset.labels), 512)
    np.testing.assert_allclose(model.features(crops[:8]), features[:8], atol=1e-4)
    probs = model.classify(features)
    graph, _, _ = load_graph(model_path("opencv_fer"))
    session = onnx_session(graph, threads=1)
    batch = ((np.stack(crops[:64]).astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(0, 3, 1, 2)
    logits = session.run(["label"], {"data": np.ascontiguousarray(batch)})[0]
    assert (logits.argmax(1) == probs[:64].argmax(1)).mean() >= 0.97
    acc = accuracy(ferplus_subset.labels, probs, model.labels)
    print(f"\nopencv_fer zero-shot: FER+ valid subset accuracy (7 classes) {acc:.3f}")
    assert acc >= OPENCV_FER_FLOOR


def test_mini_xception_head_is_exactly_linear(fer_set):
    """The 3x3 conv + global average pool rewritten as one matrix gives the graph's own probabilities."""
    from facelens.analyze.expression import get_expression_model, preprocess

    _, _, crops, _ = fer_set
    model = get_expression_model("mini_xception")
    runner = model._get_runner()
    batch = preprocess(crops[:32])
    graph = runner.session.run(["probabilities"], {"input": batch})[0]
    np.testing.assert_allclose(runner.classify(runner.features(batch)), graph, atol=1e-5)


def test_soft_targets_fit_beats_the_zero_shot_model(ferplus_subset, opencv_fer_features):
    """A softmax regression on opencv_fer features fitted to half the subset's vote distributions classifies
    the other half better than opencv_fer's own layer does."""
    from facelens.analyze.expression_heads import SoftmaxRegression, accuracy
    from facelens.analyze.models import EXPRESSIONS8

    model, _, features = opencv_fer_features
    half = len(features) // 2
    fitted = SoftmaxRegression(l2=0.1).fit(features[:half], ferplus_subset.targets[:half])
    held = ferplus_subset.labels[half:]
    ours = accuracy(held, fitted.predict_proba(features[half:]), EXPRESSIONS8)
    zero_shot = accuracy(held, model.classify(features[half:]), model.labels)
    print(f"\nfit on {half} faces: {ours:.3f} vs zero-shot {zero_shot:.3f}")
    assert ours > zero_shot


def test_head_file_round_trip_and_errors(tmp_path, monkeypatch, ferplus_subset, opencv_fer_features):
    from facelens.analyze.expression_heads import SoftmaxRegression, TrainedExpressionHead, head_file
    from facelens.errors import FacelensError, ModelUnavailableError

    _, _, features = opencv_fer_features
    head = TrainedExpressionHead(name="ferplus_opencv_fer", backbones=("opencv_fer",),
                                 regression=SoftmaxRegression(l2=0.1).fit(features, ferplus_subset.targets))
    path = head.save(tmp_path / "heads" / "ferplus_opencv_fer.npz")
    loaded = TrainedExpressionHead.load(path)
    np.testing.assert_array_equal(loaded.classify(features), head.classify(features))
    monkeypatch.setenv("FACELENS_CACHE_DIR", str(tmp_path))
    assert head_file("ferplus_opencv_fer") == path  # the user's fitted head comes first
    with pytest.raises(ModelUnavailableError, match="facelens analyze train"):
        head_file("no_such_head")
    (tmp_path / "bad.npz").write_bytes(b"not a head")
    with pytest.raises(FacelensError, match="not a facelens expression head"):
        TrainedExpressionHead.load(tmp_path / "bad.npz")


def test_unknown_model_name_is_refused():
    from facelens.analyze.expression import get_expression_model

    with pytest.raises(ValueError, match="opencv_fer"):
        get_expression_model("no_such_model")


def test_cli_train_then_use_the_head(tmp_path: Path, monkeypatch):
    """`facelens analyze train` on a small FER+ cut writes a head that `--expression-model` then runs."""
    import json

    from typer.testing import CliRunner

    from facelens.cli.analyze import app

    root = tmp_path / "ferplus"
    root.mkdir()
    for split, step in (("train", 40), ("valid", 20)):
        with np.load(need_data("expression", "ferplus", f"ferplus_{split}.npz")) as data:
            np.savez(root / f"ferplus_{split}.npz", images=data["images"][::step], votes=data["votes"][::step],
                     names=data["names"][::step])  # fmt: skip
    monkeypatch.setenv("FACELENS_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--ferplus", str(root), "--heads", "ferplus_mini_xception", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert row["head"] == "ferplus_mini_xception" and row["train_faces"] > 600
    assert Path(row["path"]).is_file() and 0.4 < row["valid_accuracy7"] <= 1.0
    labels = []
    for face in sorted(need_data("expression", "fer2013_sample", "happy").glob("*.jpg"))[:5]:
        # one image at a time runs in this process, which sees this test's cache folder
        result = runner.invoke(app, [str(face), "--face-crops", "--heads", "expression",
                                     "--expression-model", "ferplus_mini_xception", "--json"])  # fmt: skip
        assert result.exit_code == 0, result.output
        expression = json.loads(result.stdout.strip().splitlines()[-1])["faces"][0]["expression"]
        assert set(expression["probabilities"]) >= {"happy", "contempt"}  # the head's 8 FER+ classes
        labels.append(expression["label"])
    assert labels.count("happy") >= 3, labels
    result = runner.invoke(app, [str(face), "--expression-model", "nope"])
    assert result.exit_code == 2 and "unknown expression model" in result.output


def test_cli_lists_models():
    import json

    from typer.testing import CliRunner

    from facelens.cli.analyze import app

    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in map(json.loads, result.stdout.strip().splitlines())}
    assert {"mini_xception", "opencv_fer", "cnn_ensemble", "ferplus_both"} <= set(rows)
    assert sum(r["default"] for r in rows.values()) == 1


def test_default_model_on_ckplus_held_out(expression_dir):
    """Every 6th CK+48 face (posed, never seen in training): the FER+ head transfers across datasets.
    No fit touches CK+, so no subject split is needed here (benchmarks/expression.py splits by subject where it
    fits a probe on CK+)."""
    import cv2

    from facelens.analyze.expression import get_expression_model
    from facelens.analyze.expression_heads import accuracy, whole_crops

    files = sorted((expression_dir / "ckplus48").glob("*/*.png"))[::6]
    names = {"anger": "angry", "sadness": "sad"}
    labels = np.array([names.get(f.parent.name, f.parent.name) for f in files])
    images = np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files])
    model = get_expression_model()
    probs = model.probabilities(whole_crops(images, model))
    acc = accuracy(labels, probs, model.labels)
    print(f"\n{model.name}: CK+48 every 6th face, accuracy (7 classes) {acc:.3f} on {(labels != 'contempt').sum()}")
    assert acc >= CKPLUS_FLOOR
