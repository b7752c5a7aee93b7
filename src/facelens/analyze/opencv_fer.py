"""``opencv_fer``: opencv_zoo's facial expression MobileFaceNet (int8 ONNX, Apache-2.0; RAF-DB 88.3% fp32).

Input: the face warped by its 5 landmarks onto the ArcFace 112x112 template, RGB, x/255, (x-0.5)/0.5, NCHW
(opencv_zoo ``facial_fer_model.py``). The published graph has batch 1 and one output; facelens loads it with the
batch dimension left free and the 512-D flattened penultimate layer (``481``) as a second output, and applies the
final fully connected layer (dequantized) in numpy, so that ``classify(features(crops))`` is the whole network.
Measured on FER+ valid (7 classes, contempt left out): 0.691 with dlib-68 landmarks on 4x upscaled crops against
0.627 for the crop resized whole, so whole-crop inputs also go through landmarks (see ``analyze.api.whole_detection``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from facelens.analyze.expression import ExpressionModel, softmax
from facelens.models.registry import model_path
from facelens.types import DetectedFace

#: Output order of the network, in facelens' class names (opencv_zoo: angry, disgust, fearful, happy, neutral,
#: sad, surprised).
LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
SIZE = 112
FEATURES = "481"  # the flattened global depthwise conv output, input of the fc layer


def load_graph(path: Any) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The model with a free batch dimension, the penultimate output and PRelu without a branch per value
    (:func:`facelens.models.runtime.branch_free_prelu`: 10.7 → 3.3 CPU ms a face, same outputs), plus the fc
    layer's float weights [512, 7] and bias [7] (dequantized from the int8 initializers)."""
    import onnx
    from onnx import helper, numpy_helper

    from facelens.models.runtime import branch_free_prelu

    model = branch_free_prelu(onnx.load(str(path)))
    graph = model.graph
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    for output in graph.output:
        output.type.tensor_type.ClearField("shape")
    graph.output.append(helper.make_tensor_value_info(FEATURES, onnx.TensorProto.FLOAT, None))
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}

    def dequantized(prefix: str) -> np.ndarray:
        q = init[f"{prefix}_quantized"].astype(np.float64)
        return ((q - init[f"{prefix}_zero_point"].astype(np.float64)) * init[f"{prefix}_scale"]).astype(np.float32)

    weight, bias = dequantized("fc.weight"), dequantized("fc.bias")
    if weight.shape[0] != 512:
        weight = weight.T
    return model.SerializeToString(), weight, bias


def _fc_bytes(path: str) -> bytes:
    """The fc layer's float weight and bias (see :func:`load_graph`) as an .npz file's bytes."""
    import io

    _, weight, bias = load_graph(path)
    buffer = io.BytesIO()
    np.savez(buffer, weight=weight, bias=bias)
    return buffer.getvalue()


class OpenCvFer(ExpressionModel):
    """opencv_zoo MobileFaceNet expression model: 7 classes, 512-D penultimate features."""

    name = "opencv_fer"
    labels = LABELS
    model_id = "opencv_fer_mobilefacenet_int8"

    def __init__(self, batch_size: int = 32, threads: int | None = 1) -> None:
        super().__init__()
        self.batch_size, self.threads = batch_size, threads
        self._session: Any = None
        self._fc: tuple[np.ndarray, np.ndarray] | None = None

    def _load(self) -> tuple[Any, np.ndarray, np.ndarray]:
        with self._lock:
            if self._session is None:
                from facelens.models.runtime import cached_rewrite, onnx_session

                # both made once into the user cache: a process start does not import onnx (0.6 CPU s)
                path = str(model_path("opencv_fer"))
                graph = cached_rewrite(path, lambda p: load_graph(p)[0])
                fc = np.load(cached_rewrite(path, _fc_bytes, suffix="-fc.npz"))
                self._session, self._fc = onnx_session(graph, threads=self.threads), (fc["weight"], fc["bias"])
            return self._session, *self._fc

    def crops(self, image: np.ndarray, detections: Sequence[DetectedFace], whole: bool = False) -> list[np.ndarray]:
        """112x112 RGB crops on the ArcFace template (whole crops too: their landmarks come from dlib-68)."""
        from facelens.align import similarity_crop

        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        return [similarity_crop(rgb, np.asarray(d.landmarks, np.float32), SIZE) for d in detections]

    def features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        session, _, _ = self._load()
        out = []
        for i in range(0, len(crops), self.batch_size):
            batch = np.stack(crops[i : i + self.batch_size]).astype(np.float32) / 255.0
            batch = ((batch - 0.5) / 0.5).transpose(0, 3, 1, 2)
            out.append(session.run([FEATURES], {"data": np.ascontiguousarray(batch)})[0])
        return np.concatenate(out).reshape(len(crops), -1).astype(np.float32)

    def classify(self, features: np.ndarray) -> np.ndarray:
        _, weight, bias = self._load()
        return softmax(np.asarray(features, np.float32) @ weight + bias)


class CnnEnsemble(ExpressionModel):
    """``cnn_ensemble``: the mean of opencv_fer's and mini_xception's probabilities (7 classes, nothing fitted).
    Measured (benchmarks/expression.py): below the FER+ head on FER+ valid (0.747 vs 0.807) but above it on posed
    CK+ (0.744 vs 0.670): the choice for posed, lab-style faces."""

    name = "cnn_ensemble"
    labels = LABELS
    backbones = ("opencv_fer", "mini_xception")  # features = their features side by side
    model_id = "cnn_ensemble(opencv_fer,mini_xception)"

    def __init__(self, runtime: str = "onnxruntime") -> None:
        super().__init__()
        self.runtime = runtime

    def _models(self) -> tuple[ExpressionModel, ExpressionModel]:
        from facelens.analyze.expression import get_expression_model

        return get_expression_model("opencv_fer", self.runtime), get_expression_model("mini_xception", self.runtime)

    def crops(self, image: np.ndarray, detections: Sequence[DetectedFace], whole: bool = False) -> list[tuple]:
        fer, xcp = self._models()
        return list(zip(fer.crops(image, detections, whole), xcp.crops(image, detections, whole)))

    def features(self, crops: Sequence[tuple]) -> np.ndarray:
        fer, xcp = self._models()
        return np.hstack([fer.features([c[0] for c in crops]), xcp.features([c[1] for c in crops])])

    def classify(self, features: np.ndarray) -> np.ndarray:
        fer, xcp = self._models()
        split = 512
        p_xcp = xcp.classify(features[:, split:])[:, [xcp.labels.index(c) for c in self.labels]]
        return ((fer.classify(features[:, :split]) + p_xcp) / 2).astype(np.float32)
