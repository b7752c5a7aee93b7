"""What the onnxruntime detectors share: letterboxing, batching by input size, NMS, mapping back to the image.

An image is shrunk (never enlarged) so that its longer side is at most ``input_size``, then padded at the right
and bottom to a multiple of 32; images whose padded sizes agree run through the network as one batch.
"""

from __future__ import annotations

import math
import os
from abc import abstractmethod
from collections import defaultdict

import cv2
import numpy as np

from facelens.detect.base import Detector
import facelens.models.catalog  # noqa: F401  (registers the detector specs)
from facelens.models.registry import model_path
from facelens.models.runtime import onnx_session
from facelens.types import DetectedFace

#: Every network here downsamples by 32 at its coarsest level.
STRIDE = 32
#: Pixels per network call in :meth:`OnnxDetector.detect_many` when ``batch_size`` > 1. Measured on the LFW DevTest
#: images (benchmarks/detect.py), batches of 16 at 256×256 against one image per call: on a quiet machine (load 4
#: on 2 cores) 0.75× (RetinaFace) and 0.58× (CenterFace) the images/s, under heavy contention (load 9) 1.5× and
#: 1.25×; at 640×640 a batch of 8 was slower than 8 calls. So one image per call is the default, and large inputs
#: never go more than a few at a time.
BATCH_PIXELS = 16 * 256 * 256


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes (x1, y1, x2, y2) kept by greedy non-maximum suppression, best score first."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]).astype(np.float32)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(np.float32).tolist(), 0.0, float(iou))
    return np.asarray(keep, np.int64).reshape(-1)


def with_symbolic_dims(model, input_dims: list, outputs: dict[str, list]):
    """``model`` (an ``onnx.ModelProto``) with the dims of its one input and of its outputs set, weights no longer
    listed as inputs
    (old exporters list them, which blocks constant folding and makes onnxruntime warn once per tensor)."""
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    weights = {i.name for i in model.graph.initializer}
    real = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(real)
    del model.graph.value_info[:]  # fixed intermediate shapes from the export
    return update_inputs_outputs_dims(model, {real[0].name: input_dims}, outputs)


class OnnxDetector(Detector):
    """A CNN face detector run by onnxruntime. Subclasses give the model name, :meth:`_blob` (preprocessing of a
    batch of padded canvases) and :meth:`_decode` (network outputs of one image → boxes, scores, landmarks in
    canvas pixels); this class letterboxes, batches, thresholds, suppresses and maps back.

    Boxes are given in dlib's HOG geometry (see ``dlib_box``) unless ``native_boxes=True``: with the network's own
    boxes, LFW DevTest verification with the default embedder drops from 0.987 to 0.983 (CenterFace) and 0.978
    (RetinaFace); landmarks are always the network's."""

    model_name = ""
    #: Detector score below which a candidate is dropped; each backend measures its own (see benchmarks/detect.py).
    default_threshold = 0.5
    #: Most images per network call in :meth:`detect_many` (fewer when they are large; see BATCH_PIXELS).
    default_batch = 1
    #: The network's box → the box dlib's HOG detector draws around the same face: the centre moves by (dx·w, dy·h)
    #: and the box becomes a square of side (sw·w + sh·h) / 2. The default embedder places dlib's 5-point shape
    #: predictor in the box, and that predictor was trained on HOG boxes. Each backend measures its own
    #: (benchmarks/detect.py --fit-boxes, on the LFW images outside the DevTest pairs).
    dlib_box: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    #: When nothing is found, look again with the image shrunk to this longer side (None: don't): for networks
    #: that miss a face filling most of the frame.
    retry_side: int | None = None

    def __init__(
        self,
        score_threshold: float | None = None,
        nms_threshold: float = 0.4,
        input_size: int = 640,
        batch_size: int | None = None,
        threads: int | None = None,
        native_boxes: bool = False,
        **kwargs,
    ) -> None:
        kwargs.setdefault("max_side", None)  # the letterbox already bounds the input size
        super().__init__(**kwargs)
        if input_size < STRIDE:
            raise ValueError(f"input_size must be at least {STRIDE}, got {input_size}")
        self.score_threshold = self.default_threshold if score_threshold is None else float(score_threshold)
        self.nms_threshold = nms_threshold
        self.input_size = int(input_size)
        self.batch_size = max(1, batch_size or self.default_batch)
        self.native_boxes = native_boxes
        if threads is None and os.environ.get("FACELENS_EMBED_THREADS", "").isdigit():
            threads = int(os.environ["FACELENS_EMBED_THREADS"])  # a pool worker's share of the cores (engine)
        self._session = onnx_session(self._model(str(model_path(self.model_name))), threads)
        self._input = self._session.get_inputs()[0].name

    # -- what a backend provides ---------------------------------------------------------------------
    def _model(self, path: str) -> str | bytes:
        """The model to load (a path, or serialised bytes of a graph rewritten for dynamic shapes)."""
        return path

    @abstractmethod
    def _blob(self, canvases: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] RGB uint8 canvases → the network's input tensor."""

    @abstractmethod
    def _decode(self, outputs: list[np.ndarray], index: int, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
        """Boxes [n, 4], scores [n], landmarks [n, 5, 2] (facelens' order) of batch item ``index``, canvas pixels."""

    # -- shared ---------------------------------------------------------------------------------------
    def _letterbox(self, image: np.ndarray, side: int) -> tuple[np.ndarray, float, tuple[int, int]]:
        h, w = image.shape[:2]
        scale = min(1.0, side / max(h, w, 1))
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        rh, rw = image.shape[:2]
        canvas = (max(STRIDE, math.ceil(rh / STRIDE) * STRIDE), max(STRIDE, math.ceil(rw / STRIDE) * STRIDE))
        return image, scale, canvas

    def _detect(self, image: np.ndarray) -> list[DetectedFace]:
        return self._detect_batch([image])[0]

    def detect_many(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        """Faces of several images; images of the same padded size share network calls of ``batch_size``."""
        works = [self._downscaled(image) for image in images]
        found = self._detect_batch([work for work, _ in works])
        return [self._finish(image, faces, scale) for image, (_, scale), faces in zip(images, works, found)]

    def _detect_batch(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        out = self._run(images, self.input_size)
        if self.retry_side:
            empty = [i for i, faces in enumerate(out) if not faces and max(images[i].shape[:2]) > 2 * self.retry_side]
            for i, faces in zip(empty, self._run([images[i] for i in empty], self.retry_side)):
                out[i] = faces
        return out

    def _run(self, images: list[np.ndarray], side: int) -> list[list[DetectedFace]]:
        boxed = [self._letterbox(image, side) for image in images]
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, (_, _, canvas) in enumerate(boxed):
            groups[canvas].append(i)
        out: list[list[DetectedFace]] = [[] for _ in images]
        for (ch, cw), members in groups.items():
            step = max(1, min(self.batch_size, BATCH_PIXELS // (ch * cw)))
            for start in range(0, len(members), step):
                chunk = members[start : start + step]
                canvases = np.zeros((len(chunk), ch, cw, 3), np.uint8)
                for row, i in enumerate(chunk):
                    resized = boxed[i][0]
                    canvases[row, : resized.shape[0], : resized.shape[1]] = resized
                outputs = self._session.run(None, {self._input: self._blob(canvases)})
                for row, i in enumerate(chunk):
                    resized, scale, _ = boxed[i]
                    out[i] = self._faces(outputs, row, (ch, cw), scale, images[i].shape)
        return out

    def _faces(
        self, outputs: list[np.ndarray], row: int, canvas: tuple[int, int], scale: float, shape: tuple[int, ...]
    ) -> list[DetectedFace]:
        boxes, scores, landmarks = self._decode(outputs, row, canvas)
        keep = scores >= self.score_threshold
        boxes, scores, landmarks = boxes[keep], scores[keep], landmarks[keep]
        keep = nms(boxes, scores, self.nms_threshold)
        h, w = shape[:2]
        faces = []
        for i in keep:
            box = boxes[i] / scale
            if not self.native_boxes:
                box = self._as_dlib_box(box)
            box = np.array([max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h)], np.float32)
            faces.append(
                DetectedFace(
                    box=box, score=float(scores[i]), landmarks=(landmarks[i] / scale).astype(np.float32), detector=self.name
                )
            )
        return faces

    def _as_dlib_box(self, box: np.ndarray) -> np.ndarray:
        dx, dy, sw, sh = self.dlib_box
        w, h = box[2] - box[0], box[3] - box[1]
        cx, cy = (box[0] + box[2]) / 2 + dx * w, (box[1] + box[3]) / 2 + dy * h
        half = (sw * w + sh * h) / 4
        return np.array([cx - half, cy - half, cx + half, cy + half], np.float32)
