"""dlib's ResNet (128-D) run by onnxruntime in batches: the same model and crops as ``dlib``, several times faster.

The network is converted from dlib's own ``.dat`` once per user (:mod:`facelens.embed.dlib_convert`) and cached.
Embeddings match dlib's to about 1e-6, so the model id stays ``dlib_resnet_v1`` and existing galleries keep working.
``flip=True`` also embeds each chip's mirror image and averages the two (model id ``dlib_resnet_v1+flip``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from facelens.align import dlib_chips
from facelens.embed.base import Embedder, face_boxes, l2_normalise
from facelens.errors import FacelensError, ModelUnavailableError
from facelens.models.registry import cache_dir, get_spec, model_path

#: Chips per onnxruntime call. ``benchmarks/pipeline.py --batch-sizes 4,8,16,32,64`` on 2 shared cores, five runs:
#: 4, 8 and 16 are equal within the noise (100–250 chips/s), 32 and 64 are never faster and often slower (the
#: activations no longer fit in cache); 16 (~10 MB of activations at the widest layer).
DEFAULT_BATCH_SIZE = 16
FALLBACK_HINT = 'to use dlib\'s own runtime instead (same model, same galleries), pass embedder="dlib"'


def default_threads() -> int:
    """Intra-op threads when nobody says: ``$FACELENS_EMBED_THREADS``, else every core."""
    value = os.environ.get("FACELENS_EMBED_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else (os.cpu_count() or 1)


class DlibOnnxEmbedder(Embedder):
    """dlib chips (150×150, from dlib's 5-point shape predictor) through the converted network in batches.

    ``threads``: onnxruntime intra-op threads (None: :func:`default_threads`); give each worker process of a pool
    its share of the cores. ``batch_size``: chips per inference call. The session is created on first use, once,
    and may be shared by threads.
    """

    dim = 128
    runtime = "onnx"

    def __init__(self, flip: bool = False, threads: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.flip = flip
        self.threads = threads
        self.batch_size = batch_size
        self.model_id = "dlib_resnet_v1" + ("+flip" if flip else "")
        self._session: Any = None
        self._lock = threading.Lock()

    def session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._open()
        return self._session

    def _open(self) -> Any:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise ModelUnavailableError(f"onnxruntime cannot be imported ({exc}); {FALLBACK_HINT}") from exc
        from facelens.embed.dlib_convert import converted_model
        from facelens.models.runtime import onnx_session

        source = model_path("dlib_resnet_v1")
        known = get_spec("dlib_resnet_v1").files[0].sha256
        try:
            onnx_file = converted_model(source, cache_dir(), source_sha256=known[0] if len(known) == 1 else None)
            return onnx_session(onnx_file, threads=self.threads or default_threads())
        except FacelensError as exc:
            raise type(exc)(f"{exc}; {FALLBACK_HINT}") from exc
        except Exception as exc:  # onnxruntime and file-system failures of every kind
            raise ModelUnavailableError(
                f"the ONNX version of dlib's face-recognition network could not be prepared "
                f"({exc.__class__.__name__}: {exc}); {FALLBACK_HINT}"
            ) from exc

    def crops(self, image: np.ndarray, boxes: list) -> list[np.ndarray]:
        return dlib_chips(image, face_boxes(boxes))

    def embed_crops(self, chips: list[np.ndarray]) -> np.ndarray:
        if not len(chips):
            return np.zeros((0, self.dim), np.float32)
        batch = np.ascontiguousarray(np.stack([np.asarray(c, np.uint8) for c in chips]))
        if batch.shape[1:] != (150, 150, 3):
            raise ValueError(f"dlib chips are 150x150 RGB, got {batch.shape[1:]}")
        if self.flip:
            batch = np.concatenate([batch, batch[:, :, ::-1]])
        session = self.session()
        vectors = np.concatenate([
            session.run(None, {"chips": np.ascontiguousarray(batch[i : i + self.batch_size])})[0]
            for i in range(0, len(batch), self.batch_size)
        ])
        if self.flip:
            n = len(chips)
            vectors = l2_normalise(vectors[:n]) + l2_normalise(vectors[n:])
        return l2_normalise(vectors)
