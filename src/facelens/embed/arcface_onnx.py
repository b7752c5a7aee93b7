"""ONNX embedders on 112×112 crops aligned to the ArcFace 5-point template (MobileFaceNet, SFace and the like).

Each model is an :class:`ArcFaceModel`: its registry name, model id, pixel normalisation, output size, whether it
is flip-averaged, and a licence notice for weights that are not free to use. The embedder warps every face with
its 5 landmarks (:func:`facelens.align.similarity_crop`), normalises, runs the batch and L2-normalises.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from facelens.align import similarity_crop
from facelens.embed.base import Embedder, face_landmarks, l2_normalise
from facelens.errors import ModelUnavailableError
from facelens.models.registry import model_path

log = logging.getLogger(__name__)

CROP_SIZE = 112
#: Crops per onnxruntime call, one thread, 32 real LFW faces: SFace 11.2 / 11.5 / 13.5 / 44.7 CPU ms a face in
#: batches of 1 / 4 / 8 / 32, MobileFaceNet (crop and mirror) 5.7 / 5.6 / 6.0 / 8.3: wider batches leave the cache.
BATCH_SIZE = 4


@dataclass(frozen=True)
class ArcFaceModel:
    registry_name: str
    model_id: str
    dim: int
    mean: tuple[float, float, float]  # per RGB channel, on 0–255 pixels
    std: tuple[float, float, float]
    flip: bool = False  # embedding = direction of emb(crop) + emb(mirrored crop)
    notice: str = ""  # logged once per process when the model is first used (licence terms)
    fixed_batch: bool = False  # the exported graph hard-codes batch 1: relax it when loading
    # Dynamically quantised (int8) graphs choose their scale over the whole input tensor, so in a batch each
    # face's embedding would depend on the other faces: run those one face at a time.
    one_at_a_time: bool = False


# OpenCV Zoo SFace (Apache-2.0): RGB 0–255 as is (the graph subtracts 127.5 and scales by 1/128 itself, and
# OpenCV's FaceRecognizerSF feeds it blobFromImage(scale 1, mean 0, swapRB)); exported with batch 1.
_SFACE = ArcFaceModel(
    registry_name="sface",
    model_id="sface_2021dec",
    dim=128,
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    fixed_batch=True,
)

MODELS: dict[str, ArcFaceModel] = {
    # foamliu/MobileFaceNet (Apache-2.0): RGB, /255, ImageNet mean/std, flip-averaged as in its lfw_eval.py
    "mobilefacenet": ArcFaceModel(
        registry_name="mobilefacenet_foamliu",
        model_id="mobilefacenet_foamliu+flip",
        dim=128,
        mean=(0.485 * 255, 0.456 * 255, 0.406 * 255),
        std=(0.229 * 255, 0.224 * 255, 0.225 * 255),
        flip=True,
        fixed_batch=True,
    ),
    "sface": _SFACE,
    # the same, averaged with the mirrored crop: DevTest 10-fold accuracy 0.989 → 0.992 at twice the cost
    "sface_flip": replace(_SFACE, model_id="sface_2021dec+flip", flip=True),
    # InsightFace buffalo_s w600k_mbf, int8: RGB, (x − 127.5) / 127.5. Weights for non-commercial research only.
    "insightface_mbf": ArcFaceModel(
        registry_name="insightface_w600k_mbf_nc",
        model_id="insightface_w600k_mbf_int8",
        dim=512,
        mean=(127.5, 127.5, 127.5),
        std=(127.5, 127.5, 127.5),
        one_at_a_time=True,
        notice=(
            "insightface_mbf uses InsightFace's w600k_mbf weights, licensed for NON-COMMERCIAL RESEARCH USE ONLY "
            "(https://github.com/deepinsight/insightface#license). Do not use it in a commercial product."
        ),
    ),
}

_NOTICES_SHOWN: set[str] = set()
_NOTICE_LOCK = threading.Lock()


def _batch_relaxed(path: str) -> bytes:
    """The model with a symbolic batch dimension: foamliu's export fixes input, output and its final Reshape
    ([1, -1]) to batch 1; [0, -1] keeps whatever batch comes in. SFace's input and output say batch 1 too, and its
    export lists all 174 weights among the graph inputs, which stops onnxruntime from folding the BatchNorms into
    the convolutions: dropped from the inputs, a face costs 15 CPU ms instead of 18 one at a time, 20 instead of 42
    in a batch of 32 (same vectors within 1e-4). PRelu is computed without a branch per value
    (:func:`facelens.models.runtime.branch_free_prelu`)."""
    import onnx
    from onnx import numpy_helper

    from facelens.models.runtime import branch_free_prelu

    model = onnx.load(str(path))
    constants = {init.name for init in model.graph.initializer}
    real = [value for value in model.graph.input if value.name not in constants]
    del model.graph.input[:]
    model.graph.input.extend(real)
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    branch_free_prelu(model)
    for node in model.graph.node:
        if node.op_type == "Reshape":
            for producer in model.graph.node:
                if producer.op_type == "Constant" and producer.output[0] == node.input[1]:
                    shape = numpy_helper.to_array(producer.attribute[0].t)
                    if shape.tolist() == [1, -1]:
                        producer.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array([0, -1], np.int64)))
    return model.SerializeToString()


class ArcFaceOnnxEmbedder(Embedder):
    """Faces warped to the ArcFace 112 template on their 5 landmarks, embedded in batches by onnxruntime."""

    runtime = "onnx"

    def __init__(self, name: str, threads: int | None = None, batch_size: int = BATCH_SIZE) -> None:
        try:
            self.spec = MODELS[name]
        except KeyError:
            raise ValueError(f"unknown ArcFace-template model {name!r}; known: {', '.join(MODELS)}") from None
        self.name = name
        self.model_id = self.spec.model_id
        self.dim = self.spec.dim
        self.threads = threads
        self.batch_size = 1 if self.spec.one_at_a_time else max(1, batch_size)
        self._session: Any = None
        self._lock = threading.Lock()

    def session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._show_notice()
                    self._session = self._open()
        return self._session

    def _show_notice(self) -> None:
        if not self.spec.notice:
            return
        with _NOTICE_LOCK:
            if self.name not in _NOTICES_SHOWN:
                _NOTICES_SHOWN.add(self.name)
                log.warning(self.spec.notice)

    def _open(self) -> Any:
        import facelens.models.catalog  # noqa: F401  (registers the model specs)
        from facelens.embed.dlib_onnx import default_threads
        from facelens.models.runtime import cached_rewrite, onnx_session, prelu_rewritten

        path = model_path(self.spec.registry_name)
        try:  # the rewritten graph is cached: a process start does not import onnx
            source = cached_rewrite(str(path), _batch_relaxed if self.spec.fixed_batch else prelu_rewritten)
            session = onnx_session(source, threads=self.threads or default_threads())
        except Exception as exc:
            raise ModelUnavailableError(f"{path} could not be loaded by onnxruntime ({exc.__class__.__name__}: {exc})") from exc
        self._input = session.get_inputs()[0].name
        return session

    def crops(self, image: np.ndarray, boxes: list) -> list[np.ndarray]:
        return [similarity_crop(image, points, CROP_SIZE) for points in face_landmarks(image, boxes)]

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        batch = np.stack([np.asarray(c, np.uint8) for c in crops])
        if batch.shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
            raise ValueError(f"{self.name} takes {CROP_SIZE}x{CROP_SIZE} RGB crops, got {batch.shape[1:]}")
        if self.spec.flip:
            batch = np.concatenate([batch, batch[:, :, ::-1]])
        mean = np.array(self.spec.mean, np.float32)
        scale = 1.0 / np.array(self.spec.std, np.float32)
        session = self.session()
        out = []
        for i in range(0, len(batch), self.batch_size):
            chunk = ((batch[i : i + self.batch_size].astype(np.float32) - mean) * scale).transpose(0, 3, 1, 2)
            out.append(session.run(None, {self._input: np.ascontiguousarray(chunk)})[0].reshape(len(chunk), -1))
        vectors = np.concatenate(out)
        if self.spec.flip:
            n = len(crops)
            vectors = l2_normalise(vectors[:n]) + l2_normalise(vectors[n:])
        return l2_normalise(vectors)
