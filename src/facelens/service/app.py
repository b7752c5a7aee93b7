"""The REST service: ``create_app(settings)`` builds a FastAPI app over the library (no face logic of its own).

Models load once per process in the background at startup; ``/readyz`` answers 200 once they are in. CPU work
(decode, detect, embed, search) runs in a thread pool sized to the cores (each model serialises its own calls, so
stages of different requests overlap), and the event loop stays free for I/O and health checks. Galleries are named
collections of one store, opened once and shared by all requests.

The endpoints live in ``service/routes/`` (one router per resource); auth and gallery resolution are dependencies
(``service/deps.py``); every request first passes the ASGI guard (``service/guard.py``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

import facelens
from facelens.gallery import open_gallery
from facelens.service.guard import RequestGuard
from facelens.service.handlers import install_error_handlers
from facelens.service.routes import ROUTERS
from facelens.service.routes.console import CONSOLE_DIR
from facelens.service.settings import Settings
from facelens.service.state import DEFAULT_GALLERY, ServiceState


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service for ``settings`` (default: from ``FACELENS_*`` environment variables)."""
    settings = settings or Settings.from_env()
    if settings.gallery_is_folder:  # create the store first, so the key store and audit log can live inside it
        open_gallery(settings.gallery, create=True, collection=DEFAULT_GALLERY).close()
    state = ServiceState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.gallery_is_folder:
            await asyncio.get_running_loop().run_in_executor(state.executor, state.gallery, DEFAULT_GALLERY, True)
        if settings.preload:
            threading.Thread(target=state.load_models, name="facelens-model-load", daemon=True).start()
        else:
            state.ready = True
        try:
            yield
        finally:
            state.close()

    app = FastAPIOffline(  # /docs and /redoc with their scripts served by this server, so they work offline
        title="facelens",
        version=facelens.__version__,
        description="Face detection, verification, identification and analysis over HTTP. "
        "Send an API key in `Authorization: Bearer <key>` or `X-API-Key`.",
        lifespan=lifespan,
    )
    app.state.facelens = state
    install_error_handlers(app)
    app.add_middleware(RequestGuard, state=state)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/console", StaticFiles(directory=CONSOLE_DIR, html=True), name="console")
    return app
