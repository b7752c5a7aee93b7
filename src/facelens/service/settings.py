"""Service settings: one frozen dataclass, filled from CLI flags and ``FACELENS_*`` environment variables.

Precedence: explicit argument (CLI flag) > environment variable > default. Every field is documented in
``docs/service.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from facelens.detect import DEFAULT_DETECTOR
from facelens.errors import FacelensError
from facelens.gallery import is_postgres


@dataclass(frozen=True)
class Settings:
    #: Gallery store: a folder (created if missing) or a ``postgresql://`` URL shared by several replicas.
    gallery: str = "./people"
    #: API-key store: a SQLite file or a ``postgresql://`` URL. Default: ``<gallery>/keys.db`` for a folder gallery,
    #: the gallery's own database for a PostgreSQL gallery (so replicas on different hosts share keys).
    keys: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    #: Threads doing CPU work (decode, detect, embed, search) per process; 0 = one per core.
    workers: int = 0
    #: Server processes (uvicorn workers) sharing the port; each loads the models once. Rate limits are per process.
    processes: int = 1
    #: Largest request body in bytes (an image upload, or a JSON body with base64 images).
    max_upload_bytes: int = 10 * 1024 * 1024
    #: Largest body of a request that carries no image (JSON to create or change galleries and people).
    max_json_bytes: int = 64 * 1024
    #: Largest decoded image in pixels (checked from the image header, before decoding).
    max_pixels: int = 25_000_000
    #: Per-key token bucket: sustained requests per second (0 disables rate limiting) and burst size.
    rate_limit: float = 10.0
    rate_burst: int = 20
    #: Failed authentications allowed per client address and per key id in ``auth_failure_window_s``; past that
    #: the address (or key id) gets 429 without its key being checked until the window has passed.
    auth_failure_limit: int = 20
    auth_failure_window_s: float = 60.0
    #: Origins allowed by CORS (empty: no CORS headers; ``*`` allows any origin).
    cors_origins: tuple[str, ...] = ()
    #: Audit log (JSON lines). Default: ``<gallery>/audit.jsonl`` for a folder gallery; "-" logs to the
    #: ``facelens.audit`` logger only.
    audit_log: str | None = None
    #: When set, probe images of identify/verify/detect/analyze requests are kept in this folder (off by default).
    audit_images: str | None = None
    #: Folder of custom analysis heads (``facelens analyze fit -o DIR/NAME.joblib``) that ``/v1/analyze?head=NAME``
    #: may apply. None by default: a head file is a pickle, so only the operator puts files there.
    heads_dir: str | None = None
    #: Face detector used by every endpoint (hog, cnn or yunet).
    detector: str = DEFAULT_DETECTOR
    #: Seconds an open gallery is trusted before checking that another replica has not deleted it.
    gallery_recheck_s: float = 2.0
    #: Seconds uvicorn waits for in-flight requests on shutdown.
    graceful_timeout: float = 30.0
    #: Load models before answering /readyz (set false only in tests that do not need them).
    preload: bool = True

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)

    @property
    def gallery_is_folder(self) -> bool:
        return not is_postgres(self.gallery)

    @property
    def keys_location(self) -> str:
        if self.keys:
            return self.keys if is_postgres(self.keys) else str(Path(self.keys).expanduser())
        if self.gallery_is_folder:
            return str(Path(self.gallery).expanduser() / "keys.db")
        return self.gallery

    @property
    def audit_path(self) -> Path | None:
        if self.audit_log == "-":
            return None
        if self.audit_log:
            return Path(self.audit_log).expanduser()
        if self.gallery_is_folder:
            return Path(self.gallery).expanduser() / "audit.jsonl"
        return None

    def to_env(self) -> dict[str, str]:
        """The settings as ``FACELENS_*`` variables (what :meth:`from_env` reads back), for worker processes."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, tuple):
                value = ",".join(value)
            out[f"FACELENS_{f.name.upper()}"] = str(value)
        return out

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``FACELENS_<FIELD>`` variables (e.g. ``FACELENS_RATE_LIMIT=5``), then ``overrides``
        (arguments that are None are ignored, so CLI flags left unset fall through to the environment)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"FACELENS_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, raw, f.default)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("cors_origins"), str):
            values["cors_origins"] = _parse("cors_origins", values["cors_origins"], ())
        return replace(cls(), **values)


def _parse(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw
    except ValueError:
        raise FacelensError(f"FACELENS_{name.upper()}={raw!r} is not a valid value for {name}") from None
