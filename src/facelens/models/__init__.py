"""Model files: registry, cache, download and verification (see :mod:`facelens.models.registry`)."""

from facelens.models.registry import ModelFile, ModelSpec, PypiMember, model_path, register, resolve, resolve_file

__all__ = ["ModelFile", "ModelSpec", "PypiMember", "model_path", "register", "resolve", "resolve_file"]
