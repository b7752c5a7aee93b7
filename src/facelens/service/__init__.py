"""``facelens serve``: the REST service and web console over the library (FastAPI; see docs/service.md).

Exports load lazily so that ``facelens keys ...`` and the rest of the CLI do not import FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facelens.service.app import create_app
    from facelens.service.keys import ApiKey, KeyStore
    from facelens.service.settings import Settings

_EXPORTS = {
    "create_app": "facelens.service.app",
    "ApiKey": "facelens.service.keys",
    "KeyStore": "facelens.service.keys",
    "Settings": "facelens.service.settings",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'facelens.service' has no attribute {name!r}")


__all__ = ["ApiKey", "KeyStore", "Settings", "create_app"]
