"""The graph rewrites of ``facelens.models.runtime``: PRelu computed without a branch per value gives the very same
outputs on real faces, and the rewrite is made once into the user cache."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import need_data


def _face(side: int) -> np.ndarray:
    import cv2

    from facelens.io.image import decode_image

    image = decode_image(need_data("identity", "face_recognition", "examples", "obama.jpg"))
    return cv2.resize(image[140:420, 360:640], (side, side)).transpose(2, 0, 1)[None].astype(np.float32)


def test_branch_free_prelu_gives_the_same_outputs(tmp_path, monkeypatch):
    import onnx
    import onnxruntime as ort

    from facelens.errors import ModelUnavailableError
    from facelens.liveness.models import MINIFASNET_V2
    from facelens.models import runtime
    from facelens.models.registry import resolve_file

    try:
        path = resolve_file(MINIFASNET_V2.files[0])
    except ModelUnavailableError as exc:
        pytest.skip(f"MiniFASNet is not available here: {exc}")
    monkeypatch.setattr(runtime, "rewrite_dir", lambda: tmp_path / "rewritten")
    rewritten = runtime.cached_rewrite(str(path), runtime.prelu_rewritten)
    assert runtime.cached_rewrite(str(path), lambda _: b"not called") == rewritten  # kept in the cache
    before = {n.op_type for n in onnx.load(str(path)).graph.node}
    after = {n.op_type for n in onnx.load(rewritten).graph.node}
    assert "PRelu" in before and "PRelu" not in after
    x = _face(80)
    original = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    fast = ort.InferenceSession(rewritten, providers=["CPUExecutionProvider"])
    name = original.get_inputs()[0].name
    a, b = original.run(None, {name: x})[0], fast.run(None, {name: x})[0]
    assert a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-5
