"""What every request of one app shares: settings, key store, rate limits, audit log, open galleries, worker pool."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import Request

from facelens.errors import FacelensError, ImageDecodeError, NotFoundError
from facelens.gallery import Gallery, list_collections, open_gallery
from facelens.io.image import decode_image, describe_source
from facelens.service.audit import AuditLog
from facelens.service.keys import KeyStore
from facelens.service.ratelimit import FailureThrottle, RateLimiter
from facelens.service.settings import Settings
from facelens.service.uploads import ApiError, Payload, Upload, read_payload

log = logging.getLogger(__name__)

DEFAULT_GALLERY = "default"
_GALLERY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HEAD_NAME = _GALLERY_NAME
T = TypeVar("T")


class ServiceState:
    """Everything requests share: settings, key store, rate limiter, audit log, open galleries, worker pool.

    CPU work (decode, detect, embed, search) goes to :meth:`work`, a thread pool sized to the cores, so the event
    loop stays free for I/O and health checks."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = KeyStore(settings.keys_location)
        self.rate = RateLimiter(settings.rate_limit, settings.rate_burst)
        self.auth_throttle = FailureThrottle(settings.auth_failure_limit, settings.auth_failure_window_s)
        self.audit = AuditLog(settings.audit_path, settings.audit_images)
        self.ready = False
        self.load_error: str | None = None
        self.executor = ThreadPoolExecutor(settings.worker_count, thread_name_prefix="facelens-worker")
        self._galleries: dict[str, Gallery] = {}
        self._checked: dict[str, float] = {}
        self._heads: dict[str, Any] = {}
        self._lock = threading.Lock()

    def load_models(self) -> None:
        """Load the detector and embedder every endpoint's engine uses (the same objects: the engine's models of
        this configuration, shared by the process)."""
        try:
            from facelens.engine import FaceAnalyzer

            loaded = FaceAnalyzer(detector=self.settings.detector, workers=1).loaded_models()
            loaded.detector, loaded.embedder  # noqa: B018  (loading happens here, once)
            self.ready = True
            log.info("models loaded (%s, %s): ready", self.settings.detector, loaded.model_id)
        except Exception as exc:  # noqa: BLE001  (reported by /readyz instead of dying silently in this thread)
            self.load_error = str(exc) if isinstance(exc, FacelensError) else f"{type(exc).__name__}: {exc}"
            log.error("models could not be loaded: %s", self.load_error)

    def custom_head(self, name: str) -> Any:
        """The custom head ``<settings.heads_dir>/<name>.joblib``, loaded once (404 when there is none)."""
        from pathlib import Path

        from facelens.analyze.heads import CustomHead

        if not self.settings.heads_dir:
            raise NotFoundError(f"no custom head {name!r}: this server has no heads folder (FACELENS_HEADS_DIR)")
        if not _HEAD_NAME.fullmatch(name):
            raise ApiError(400, "bad_request", f"invalid head name {name!r} (letters, digits, '_', '.', '-')")
        with self._lock:
            found = self._heads.get(name)
        if found is not None:
            return found
        path = Path(self.settings.heads_dir).expanduser() / f"{name}.joblib"
        if not path.is_file():
            raise NotFoundError(f"no custom head {name!r} in this server's heads folder")
        loaded = CustomHead.load(path)
        with self._lock:  # one object per head, so the engine's per-process stages for it are built once
            return self._heads.setdefault(name, loaded)

    # -- work and uploads ------------------------------------------------------------------------------
    async def work(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the worker pool."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    async def payload(self, request: Request, names: tuple[str, ...], max_files: int = 20) -> Payload:
        return await read_payload(request, names, self.settings.max_upload_bytes, max_files=max_files)

    def decode(self, upload: Upload) -> Any:
        """The decoded image; errors name the upload as the client knows it (file name or field)."""
        try:
            return decode_image(upload.data, max_pixels=self.settings.max_pixels)
        except ImageDecodeError as exc:
            reason = str(exc).removeprefix(describe_source(upload.data) + ": ")
            raise ImageDecodeError(f"{upload.label}: {reason}") from None

    def keep(self, upload: Upload) -> str | None:
        """Where the audit log kept the probe image (None when probe images are not kept)."""
        return self.audit.keep_image(upload.data, upload.kind)

    # -- galleries -------------------------------------------------------------------------------------
    def gallery(self, name: str, create: bool = False) -> Gallery:
        """The open gallery for collection ``name`` (opened once; ``NotFoundError`` when it does not exist).

        Another replica may drop the collection: a cached handle is re-checked against the store's collection
        list when it is older than ``settings.gallery_recheck_s``."""
        if not _GALLERY_NAME.fullmatch(name):
            raise ApiError(400, "bad_request", f"invalid gallery name {name!r} (letters, digits, '_', '.', '-')")
        with self._lock:
            found = self._galleries.get(name)
            if found is None:
                found = open_gallery(self.settings.gallery, create=create, collection=name)
                self._galleries[name] = found
                self._checked[name] = time.monotonic()
                return found
            if time.monotonic() - self._checked.get(name, 0.0) < self.settings.gallery_recheck_s:
                return found
        if name not in list_collections(self.settings.gallery):
            self.forget(name)
            if create:
                return self.gallery(name, create=True)
            raise NotFoundError(f"no gallery {name!r} (it was deleted)")
        with self._lock:
            self._checked[name] = time.monotonic()
        return found

    def forget(self, name: str) -> None:
        with self._lock:
            found = self._galleries.pop(name, None)
            self._checked.pop(name, None)
        if found is not None:
            found.close()

    def close(self) -> None:
        with self._lock:
            galleries, self._galleries = list(self._galleries.values()), {}
        for found in galleries:
            found.close()
        self.keys.close()
        self.executor.shutdown(wait=True)
