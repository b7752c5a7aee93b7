"""Expression accuracy on the staged FER2013 and CK+ crops, and the two runtimes agreeing."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import need_data
from facelens.analyze.models import EXPRESSIONS

#: CK+ (contempt excluded) accuracy measured with the default runtime and flip averaging: 0.688 (638/927);
#: the floor leaves room for onnxruntime/OpenCV resize differences across versions.
CKPLUS_FLOOR = 0.65


def _report(name: str, labels: np.ndarray, probs: np.ndarray) -> float:
    pred = np.array(EXPRESSIONS)[probs.argmax(1)]
    accuracy = float((pred == labels).mean())
    recall = {c: float((pred[labels == c] == c).mean()) for c in EXPRESSIONS if (labels == c).any()}
    print(
        f"\n{name}: accuracy {accuracy:.3f} on {len(labels)}; recall "
        + ", ".join(f"{k} {v:.2f}" for k, v in recall.items())
    )
    return accuracy


def test_fer2013_accuracy(fer_set):
    _, labels, _, probs = fer_set
    assert probs.shape == (280, 7)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    assert _report("fer2013_sample", labels, probs) >= 0.55


def test_ckplus_accuracy(ck_set):
    _, labels, _, probs = ck_set
    keep = labels != "contempt"
    accuracy = _report("ckplus48 (7 FER classes)", labels[keep], probs[keep])
    contempt = np.array(EXPRESSIONS)[probs[~keep].argmax(1)]
    print("contempt (no FER class) predicted as:", dict(zip(*np.unique(contempt, return_counts=True))))
    assert accuracy >= CKPLUS_FLOOR


def test_litert_runtime_agrees(fer_set):
    pytest.importorskip("ai_edge_litert")
    from facelens.analyze.expression import get_expression_model

    _, labels, crops, probs = fer_set
    lite = get_expression_model("mini_xception", runtime="litert").probabilities(crops)
    assert (lite.argmax(1) == probs.argmax(1)).mean() >= 0.95  # quantized twin of the same network
    assert (
        abs(
            (np.array(EXPRESSIONS)[lite.argmax(1)] == labels).mean()
            - (np.array(EXPRESSIONS)[probs.argmax(1)] == labels).mean()
        )
        <= 0.03
    )


def test_converter_rejects_unknown_layers(tmp_path):
    import json

    import h5py

    from facelens.analyze.expression import keras_hdf5_to_onnx

    path = tmp_path / "odd.h5"
    config = {
        "class_name": "Model",
        "config": {
            "layers": [
                {
                    "class_name": "InputLayer",
                    "name": "input_1",
                    "config": {"batch_input_shape": [None, 8, 8, 1]},
                    "inbound_nodes": [],
                },
                {"class_name": "LSTM", "name": "lstm", "config": {}, "inbound_nodes": [[["input_1", 0, 0, {}]]]},
            ]
        },
    }
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.create_group("model_weights").attrs["layer_names"] = [b"lstm"]
        f["model_weights"].create_group("lstm").attrs["weight_names"] = []
    with pytest.raises(ValueError, match="LSTM"):
        keras_hdf5_to_onnx(path)


def test_a_second_process_does_not_import_onnx_for_the_expression_networks():
    """The rebuilt mini-Xception graph and the rewritten opencv_fer graph (with its fc weights) are kept in the user
    cache: after one run, a new process answers expression without importing onnx (0.6 CPU s of every start)."""
    import os
    import subprocess
    import sys

    import facelens

    image = need_data("identity", "face_recognition", "examples", "obama.jpg")
    first = facelens.analyze(image)  # fills the cache
    code = ("import sys, facelens; r = facelens.analyze(sys.argv[1]); "
            "print(r.faces.expression_labels is not None, 'onnx' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(image)], capture_output=True, text=True, timeout=300,
                          env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"], done.stdout
    assert first.faces.expression is not None
