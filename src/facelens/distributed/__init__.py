"""Running the engine beyond one machine: the same chunks and plan (:mod:`facelens.engine`) on Ray Data.

Ray is an optional extra (``pip install 'facelens[ray]'``); nothing here imports it until a runner starts.
:class:`RayRunner` plugs into :class:`~facelens.engine.FaceAnalyzer` (``runner=``), so every door that runs the
engine (enrol, embed, identify) runs on a cluster with the same results as on one machine.
"""

from __future__ import annotations

from typing import Any

from facelens.errors import FacelensError

INSTALL_HINT = "pip install 'facelens[ray]'"


class RayUnavailableError(FacelensError):
    """``--ray`` was asked for but Ray is not installed."""


def require_ray() -> Any:
    """The ``ray`` module, or a clear error saying how to get it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the runner needs Ray Data, not only Ray Core)
    except ImportError as exc:
        raise RayUnavailableError(f"running on Ray needs the ray extra, which is not installed ({exc.name} is "
                                  f"missing): {INSTALL_HINT}") from None
    return ray


def __getattr__(name: str) -> Any:
    if name in ("RayRunner", "RunStats"):
        from facelens.distributed import runner

        return getattr(runner, name)
    raise AttributeError(name)


__all__ = ["INSTALL_HINT", "RayRunner", "RayUnavailableError", "RunStats", "require_ray"]
