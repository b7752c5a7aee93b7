"""Embedders by name. Default ``dlib`` (dlib ResNet 128-D)."""

from __future__ import annotations

from facelens.embed.base import Embedder, l2_normalise

EMBEDDERS = ("dlib",)
#: The embedder every door uses unless told otherwise.
DEFAULT_EMBEDDER = "dlib"


def get_embedder(name: str = DEFAULT_EMBEDDER, **options) -> Embedder:
    if name in ("dlib", "dlib_resnet_v1"):
        from facelens.embed.dlib_resnet import DlibResnetEmbedder

        return DlibResnetEmbedder(**options)
    raise ValueError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}")


__all__ = ["Embedder", "EMBEDDERS", "DEFAULT_EMBEDDER", "get_embedder", "l2_normalise"]
