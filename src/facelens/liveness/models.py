"""Passive presentation-attack models (ONNX), each with the exact preprocessing of its upstream code.

* ``minifasnet`` — Minivision's MiniFASNetV2 (crop scale 2.7) + MiniFASNetV1SE (scale 4.0), 80×80, an ensemble:
  the softmax of both is averaged and the "real" class (index 1) is the live score, as upstream ``test.py`` does.
  Crop (``src/generate_patches.py``): enlarge the box by ``scale`` (clamped so it fits the image), shift it inside
  the image at borders (never pad, never shrink), resize to 80×80, **BGR, raw 0..255 floats**, CHW.
* ``minifas_celeba128`` — MiniFAS V2-SE trained on CelebA-Spoof, 128×128, 2 logits ``[real, spoof]``.
  Crop (``src/inference/preprocess.py``): square of side ``1.5·max(w, h)`` centred on the box, reflect-padded
  (BORDER_REFLECT_101) outside the image, letterbox-resized to 128, **RGB /255**, CHW. Live score =
  sigmoid(real − spoof), so its default threshold 0.5 is upstream's logit threshold 0.

Models load lazily, once per process, under a lock; sessions are shared by every thread.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

import cv2
import numpy as np

from facelens.models.registry import ModelFile, ModelSpec, register, resolve_file

log = logging.getLogger(__name__)

_MINIVISION = "https://github.com/minivision-ai/Silent-Face-Anti-Spoofing"
_YAKHYO = "https://github.com/yakhyo/face-anti-spoofing/releases/download/weights"
_JRO = "https://github.com/johnraivenolazo/face-antispoof-onnx/raw/main/models/best/98.20"

MINIFASNET_V2 = register(
    ModelSpec(
        name="minifasnet_v2_80",
        task="liveness",
        runtime="onnxruntime",
        files=(
            ModelFile(
                path="minifasnet/2.7_80x80_MiniFASNetV2.onnx",
                sha256=(
                    "4040cc4c2078ba39df8c240adf53808f6b83798546c0e8e224f75a3a7dc465bc",  # ONNX export of upstream .pth
                    "b32929adc2d9c34b9486f8c4c7bc97c1b69bc0ea9befefc380e4faae4e463907",  # yakhyo release asset
                ),
                urls=(f"{_YAKHYO}/MiniFASNetV2.onnx",),
                alternatives=("minifasnet/MiniFASNetV2.onnx",),
            ),
        ),
        license="Apache-2.0 (Minivision Silent-Face-Anti-Spoofing)",
        description=f"MiniFASNetV2 80x80, crop scale 2.7, 3 classes (1 = real); weights from {_MINIVISION}",
        extra={"scale": 2.7, "size": 80},
    )
)

MINIFASNET_V1SE = register(
    ModelSpec(
        name="minifasnet_v1se_80",
        task="liveness",
        runtime="onnxruntime",
        files=(
            ModelFile(
                path="minifasnet/4_0_0_80x80_MiniFASNetV1SE.onnx",
                sha256=(
                    "8c0ddfa0acf7ddd8ab77661d49489f3adddde40c7b0f6ab4a26cf50c68e0c17a",  # ONNX export of upstream .pth
                    "ebab7f90c7833fbccd46d3a555410e78d969db5438e169b6524be444862b3676",  # yakhyo release asset
                ),
                urls=(f"{_YAKHYO}/MiniFASNetV1SE.onnx",),
                alternatives=("minifasnet/MiniFASNetV1SE.onnx",),
            ),
        ),
        license="Apache-2.0 (Minivision Silent-Face-Anti-Spoofing)",
        description=f"MiniFASNetV1SE 80x80, crop scale 4.0, 3 classes (1 = real); weights from {_MINIVISION}",
        extra={"scale": 4.0, "size": 80},
    )
)

MINIFAS_CELEBA128 = register(
    ModelSpec(
        name="minifas_celeba_128",
        task="liveness",
        runtime="onnxruntime",
        files=(
            ModelFile(
                path="minifas_celeba_128/best_model.onnx",
                sha256=("af2381b88f38769222ed93379e12444e2a50814575de1c46170de570c55a42b6",),
                size=1912594,
                urls=(f"{_JRO}/best_model.onnx",),
            ),
        ),
        license="Apache-2.0 (johnraivenolazo/face-antispoof-onnx)",
        description="MiniFAS V2-SE 128x128 trained on CelebA-Spoof, logits [real, spoof]",
        extra={"expansion": 1.5, "size": 128},
    )
)

#: Open/closed eye classifier of the ``eye_state`` blink signal (facelens.liveness.eye_state; not a passive model).
_FALCHLUCAS = "https://github.com/FalchLucas/WebCamGazeEstimation/raw/432bb2edcbac08c3b2b6130b1d7e7959d9311142"

EYE_STATE = register(
    ModelSpec(
        name="open_closed_eye_0001",
        task="eye_state",
        runtime="onnxruntime",
        files=(
            ModelFile(
                path="openvino_eye/open_closed_eye_0001.onnx",
                sha256=("4daa100034482525a26c9afb9297c16580a531189e66e3d2b2ac7d32becfd593",),
                size=46164,
                urls=(f"{_FALCHLUCAS}/intel/open-closed-eye-0001/open-closed-eye.onnx",),
            ),
        ),
        license="Apache-2.0 (Intel Open Model Zoo open-closed-eye-0001)",
        description="Open/closed eye classifier, 32x32 BGR eye crop -> [closed, open]",
    )
)


#: Passive model names accepted by :func:`get_model` (and ``--model`` in the CLI).
MODELS = ("minifasnet", "minifas_celeba128")


def _session(spec: ModelSpec):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one face batch is tiny; leave the cores to detection
    options.log_severity_level = 3
    from facelens.models.runtime import cached_rewrite, prelu_rewritten

    path = resolve_file(spec.files[0])
    log.debug("loading %s from %s", spec.name, path)
    # PRelu without a branch per value (2.2x faster MiniFASNet, same scores), rewritten once into the user cache
    return ort.InferenceSession(cached_rewrite(str(path), prelu_rewritten), options, providers=["CPUExecutionProvider"])


def _xywh(box: np.ndarray) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return x1, y1, x2 - x1 + 1.0, y2 - y1 + 1.0


def minivision_crop(image: np.ndarray, box: np.ndarray, scale: float, size: int = 80) -> np.ndarray:
    """Upstream ``CropImage.crop``: scaled box clamped to the image and shifted (not padded) at its borders."""
    src_h, src_w = image.shape[:2]
    x, y, box_w, box_h = _xywh(box)
    box_w, box_h = max(box_w, 1.0), max(box_h, 1.0)
    scale = min((src_h - 1) / box_h, min((src_w - 1) / box_w, scale))
    new_w, new_h = box_w * scale, box_h * scale
    cx, cy = box_w / 2 + x, box_h / 2 + y
    x1, y1, x2, y2 = cx - new_w / 2, cy - new_h / 2, cx + new_w / 2, cy + new_h / 2
    if x1 < 0:
        x2 -= x1
        x1 = 0
    if y1 < 0:
        y2 -= y1
        y1 = 0
    if x2 > src_w - 1:
        x1 -= x2 - src_w + 1
        x2 = src_w - 1
    if y2 > src_h - 1:
        y1 -= y2 - src_h + 1
        y2 = src_h - 1
    x1, y1, x2, y2 = int(x1), int(y1), int(x2), int(y2)
    patch = image[max(y1, 0) : y2 + 1, max(x1, 0) : x2 + 1]
    return cv2.resize(patch, (size, size))


def square_reflect_crop(image: np.ndarray, box: np.ndarray, expansion: float = 1.5) -> np.ndarray:
    """Upstream ``crop`` of face-antispoof-onnx: a centred square of side ``expansion·max(w, h)``, reflect-padded."""
    h_img, w_img = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    side = max(w, h)
    cx, cy = x1 + w / 2, y1 + h / 2
    x = int(cx - side * expansion / 2)
    y = int(cy - side * expansion / 2)
    crop = int(side * expansion)
    cx1, cy1, cx2, cy2 = max(0, x), max(0, y), min(w_img, x + crop), min(h_img, y + crop)
    patch = image[cy1:cy2, cx1:cx2]
    top, left = max(0, -y), max(0, -x)
    bottom, right = max(0, y + crop - h_img), max(0, x + crop - w_img)
    # BORDER_REFLECT_101 needs the patch to be larger than the pad; fall back to edge replication on tiny patches.
    mode = (
        cv2.BORDER_REFLECT_101
        if max(top, bottom) < patch.shape[0] and max(left, right) < patch.shape[1]
        else cv2.BORDER_REPLICATE
    )
    return cv2.copyMakeBorder(patch, top, bottom, left, right, mode)


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """Upstream ``preprocess``: keep aspect, Lanczos up / area down, reflect-pad to ``size``×``size``."""
    ratio = size / max(image.shape[:2])
    new_h, new_w = (max(1, int(d * ratio)) for d in image.shape[:2])
    interp = cv2.INTER_LANCZOS4 if ratio > 1.0 else cv2.INTER_AREA
    image = cv2.resize(image, (new_w, new_h), interpolation=interp)
    dh, dw = size - new_h, size - new_w
    return cv2.copyMakeBorder(image, dh // 2, dh - dh // 2, dw // 2, dw - dw // 2, cv2.BORDER_REFLECT_101)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class ModelScores:
    """Live probability per face (0..1, higher = live) and the raw per-model outputs kept for ``details``."""

    live: np.ndarray  # float [n]
    raw: dict[str, np.ndarray]


class PassiveModel(ABC):
    """A passive PAD model on RGB uint8 images and (x1, y1, x2, y2) boxes. ``threshold`` is upstream's default."""

    name = "base"
    threshold = 0.5

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @abstractmethod
    def score(self, image: np.ndarray, boxes: list[np.ndarray]) -> ModelScores:
        """Live probability for the face at each box."""


class MiniFASNetEnsemble(PassiveModel):
    """MiniFASNetV2 (2.7) + V1SE (4.0); live = mean of both softmax "real" probabilities (upstream ``test.py``).

    Upstream labels a face real when argmax of the summed softmax is class 1; the threshold 0.5 used here on the
    mean "real" probability is the same decision whenever "real" holds a majority (it is what upstream reports)."""

    name = "minifasnet"

    _loaded: list | None = None

    @property
    def _sessions(self) -> list:
        with self._lock:
            if self._loaded is None:
                self._loaded = [(_session(s), float(s.extra["scale"])) for s in (MINIFASNET_V2, MINIFASNET_V1SE)]
            return self._loaded

    def score(self, image: np.ndarray, boxes: list[np.ndarray]) -> ModelScores:
        if not boxes:
            return ModelScores(np.zeros(0), {})
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        probs = []
        for session, scale in self._sessions:
            batch = (
                np.stack([minivision_crop(bgr, b, scale, 80) for b in boxes]).astype(np.float32).transpose(0, 3, 1, 2)
            )
            logits = session.run(None, {session.get_inputs()[0].name: batch})[0]
            probs.append(_softmax(logits))
        mean = (probs[0] + probs[1]) / 2.0
        return ModelScores(mean[:, 1], {"v2": probs[0], "v1se": probs[1]})


class MiniFASCeleba128(PassiveModel):
    """CelebA-Spoof MiniFAS 128×128; live = sigmoid(real_logit − spoof_logit)."""

    name = "minifas_celeba128"

    _loaded = None

    @property
    def _session(self):
        with self._lock:
            if self._loaded is None:
                self._loaded = _session(MINIFAS_CELEBA128)
            return self._loaded

    def score(self, image: np.ndarray, boxes: list[np.ndarray]) -> ModelScores:
        if not boxes:
            return ModelScores(np.zeros(0), {})
        batch = np.stack([letterbox(square_reflect_crop(image, b, 1.5), 128) for b in boxes])
        batch = batch.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        logits = self._session.run(None, {self._session.get_inputs()[0].name: batch})[0]
        margin = logits[:, 0] - logits[:, 1]
        return ModelScores(1.0 / (1.0 + np.exp(-margin)), {"logits": logits})


_INSTANCES: dict[str, PassiveModel] = {}
_LOCK = threading.Lock()


def get_model(name: str) -> PassiveModel:
    """The shared instance of a passive model by name (see :data:`MODELS`)."""
    with _LOCK:
        if name not in _INSTANCES:
            if name == "minifasnet":
                _INSTANCES[name] = MiniFASNetEnsemble()
            elif name == "minifas_celeba128":
                _INSTANCES[name] = MiniFASCeleba128()
            else:
                raise ValueError(f"unknown liveness model {name!r}; choose one of {', '.join(MODELS)}")
        return _INSTANCES[name]
