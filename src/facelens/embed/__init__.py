"""Embedders by name. Default ``dlib_onnx``: dlib's ResNet 128-D run by onnxruntime in batches.

- ``dlib_onnx``: dlib's network converted to ONNX (model id ``dlib_resnet_v1``);
- ``dlib``: the same network through dlib itself (same model id and embeddings; the fallback when onnxruntime
  cannot run);
- ``dlib_onnx_flip``: ``dlib_onnx`` averaged with the mirror image (model id ``dlib_resnet_v1+flip``: its own
  vectors, galleries and measured thresholds);
- ``mobilefacenet``: foamliu's MobileFaceNet (Apache-2.0), 128-D, ArcFace-aligned on the detector's 5 landmarks,
  flip-averaged;
- ``insightface_mbf``: InsightFace's w600k_mbf, 512-D — weights for non-commercial research only: opt-in, never
  a default (the licence is logged when it is first used).
"""

from __future__ import annotations

from facelens.embed.base import Embedder, l2_normalise

EMBEDDERS = ("dlib_onnx", "dlib", "dlib_onnx_flip", "mobilefacenet", "insightface_mbf")
#: The embedder every door uses unless told otherwise.
DEFAULT_EMBEDDER = "dlib_onnx"


def get_embedder(name: str = DEFAULT_EMBEDDER, **options) -> Embedder:
    if name in ("dlib_onnx", "dlib_onnx_flip"):
        from facelens.embed.dlib_onnx import DlibOnnxEmbedder

        if name == "dlib_onnx_flip":
            options.setdefault("flip", True)
        return DlibOnnxEmbedder(**options)
    if name in ("mobilefacenet", "insightface_mbf"):
        from facelens.embed.arcface_onnx import ArcFaceOnnxEmbedder

        return ArcFaceOnnxEmbedder(name, **options)
    if name in ("dlib", "dlib_resnet_v1"):
        from facelens.embed.dlib_resnet import DlibResnetEmbedder

        return DlibResnetEmbedder(**options)
    raise ValueError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}")


__all__ = ["Embedder", "EMBEDDERS", "DEFAULT_EMBEDDER", "get_embedder", "l2_normalise"]
