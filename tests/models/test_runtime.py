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


def test_a_damaged_cached_rewrite_is_made_again(tmp_path, monkeypatch):
    """A cached rewrite cut short or changed since it was written (its sha256 beside it no longer matches) is made
    again instead of failing every later start; an intact one is read as it is."""
    from facelens.models import runtime

    monkeypatch.setattr(runtime, "rewrite_dir", lambda: tmp_path / "rewritten")
    source = tmp_path / "model.onnx"
    source.write_bytes(b"source model")
    calls = []

    def rewrite(path: str) -> bytes:
        calls.append(path)
        return b"rewritten " * 1000

    target = runtime.cached_rewrite(str(source), rewrite)
    assert runtime.cached_rewrite(str(source), rewrite) == target and len(calls) == 1
    with open(target, "r+b") as handle:  # cut short, as a full disk or a killed copy would leave it
        handle.truncate(100)
    assert runtime.cached_rewrite(str(source), rewrite) == target and len(calls) == 2
    assert open(target, "rb").read() == b"rewritten " * 1000
    (tmp_path / "rewritten" / (target.rsplit("/", 1)[1] + ".sha256")).unlink()  # a cache from before the digests
    runtime.cached_rewrite(str(source), rewrite)
    assert len(calls) == 3
