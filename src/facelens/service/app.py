"""The REST service: ``create_app(settings)`` builds a FastAPI app over the library (no face logic of its own).

Models load once per process (the shared pipeline) in the background at startup; ``/readyz`` answers 200 once they
are in. CPU work (decode, detect, embed, search) runs in a thread pool sized to the cores (each model serialises its own
calls, so stages of different requests overlap), and the event loop stays free for I/O and health checks.
Galleries are named collections of one store, opened once and shared by all requests.
"""

import asyncio
import functools
import json
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

import facelens
from facelens.errors import (
    FacelensError,
    GalleryError,
    ImageDecodeError,
    ModelMismatchError,
    ModelUnavailableError,
    NoFaceError,
    NotFoundError,
)
from facelens.gallery import Gallery, drop_collection, list_collections, open_gallery
from facelens.engine import FaceAnalyzer
from facelens.gallery.base import check_metadata, parse_key_values
from facelens.result import ImageResult
from facelens.io.image import decode_image, describe_source
from facelens.service import schemas as S
from facelens.service.audit import AuditLog
from facelens.service.keys import ApiKey, KeyStore
from facelens.service.guard import SCOPE_KEY, RequestGuard
from facelens.service.ratelimit import FailureThrottle, RateLimiter
from facelens.service.settings import Settings
from facelens.service.uploads import ApiError, Payload, Upload, image_body, read_payload

log = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).with_name("console")
DEFAULT_GALLERY = "default"
_GALLERY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
T = TypeVar("T")


# -- request bodies (JSON) ------------------------------------------------------------------------------
class GalleryCreate(BaseModel):
    name: str = Field(..., description="Letters, digits, '_', '.', '-' (up to 64).", examples=["staff"])


class PersonCreate(BaseModel):
    name: str = Field(..., examples=["ada"])
    metadata: dict[str, Any] | None = Field(None, examples=[{"team": "blue"}])


class PersonUpdate(BaseModel):
    name: str | None = Field(None, description="New name (rename).")
    metadata: dict[str, Any] | None = Field(None, description="Replaces the person's metadata.")


# -- shared state ---------------------------------------------------------------------------------------
class ServiceState:
    """Everything requests share: settings, key store, rate limiter, audit log, open galleries, worker pool."""

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
        self._lock = threading.Lock()

    @property
    def pipeline(self) -> Any:
        """The process-wide pipeline the library verbs use for this detector (images arrive decoded, with the
        pixel limit already applied, so no pipeline option differs from theirs and models load once)."""
        from facelens.pipeline import get_pipeline

        return get_pipeline(detector=self.settings.detector)

    def load_models(self) -> None:
        try:
            pipe = self.pipeline
            pipe.detector, pipe.embedder  # noqa: B018  (cached properties: loading happens here, once)
            self.ready = True
            log.info("models loaded (%s, %s): ready", self.settings.detector, pipe.model_id)
        except Exception as exc:  # noqa: BLE001  (reported by /readyz instead of dying silently in this thread)
            self.load_error = str(exc) if isinstance(exc, FacelensError) else f"{type(exc).__name__}: {exc}"
            log.error("models could not be loaded: %s", self.load_error)

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


# -- errors ----------------------------------------------------------------------------------------------
_STATUS = [  # first match wins: subclasses before their bases
    (NotFoundError, 404, "not_found"),
    (ModelMismatchError, 409, "model_mismatch"),
    (GalleryError, 400, "gallery_error"),
    (ImageDecodeError, 422, "bad_image"),
    (NoFaceError, 422, "no_face"),
    (ModelUnavailableError, 503, "model_unavailable"),
]


def _status_of(exc: FacelensError) -> tuple[int, str]:
    return next(((status, code) for kind, status, code in _STATUS if isinstance(exc, kind)), (400, "error"))


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(FacelensError)
    async def facelens_error(_: Request, exc: FacelensError) -> JSONResponse:
        status, code = _status_of(exc)
        return _error(status, code, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        return _error(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(RecursionError)
    async def too_deep(_: Request, exc: RecursionError) -> JSONResponse:  # JSON nested past Python's recursion limit
        return _error(422, "invalid_request", "the request is nested too deeply")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _error(500, "internal_error", "internal error (details are in the server log)")


def _image_answer(found: ImageResult) -> dict[str, Any]:
    """An image's result as every image endpoint answers it: the library's one JSON form, without the source (the
    client knows what it sent) and with errors raised as HTTP errors."""
    record = found.raise_for_error().to_dict()
    return {"width": record["width"], "height": record["height"], "faces": record["faces"]}


def _client_face(face: dict[str, Any]) -> dict[str, Any]:
    """A stored face as clients see it: its source by file name only (never a path on the server)."""
    source = str(face.get("source") or "")
    return {**face, "source": Path(source.replace("\\", "/")).name if source else source}


# -- app -------------------------------------------------------------------------------------------------
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
    _install_error_handlers(app)
    app.add_middleware(RequestGuard, state=state)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )

    bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
    header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")

    def require(scope: str) -> Callable[..., Any]:
        def check(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
            api_key: Annotated[str | None, Depends(header_key)],
        ) -> ApiKey:
            # the guard checked the key before the body was read (credentials/api_key only document it in OpenAPI)
            key = request.scope.get("state", {}).get(SCOPE_KEY)
            if key is None:
                raise ApiError(401, "missing_key", "an API key is required (Authorization: Bearer <key> or X-API-Key)",
                               {"WWW-Authenticate": "Bearer"})
            if not key.allows(scope):
                raise ApiError(403, "forbidden", f"this key's scope is {key.scope!r}; this endpoint needs {scope!r}")
            wait = state.rate.take(key.key_id)
            if wait > 0:
                raise ApiError(429, "rate_limited", f"rate limit of {settings.rate_limit:g} requests/s exceeded",
                               {"Retry-After": str(max(1, round(wait + 0.5)))})
            request.state.key = key
            return key

        return check

    Reader = Annotated[ApiKey, Depends(require("identify"))]  # any live key
    Admin = Annotated[ApiKey, Depends(require("admin"))]  # keys that may change galleries

    async def work(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(state.executor, functools.partial(fn, *args, **kwargs))

    async def payload(request: Request, names: tuple[str, ...], max_files: int = 20) -> Payload:
        return await read_payload(request, names, settings.max_upload_bytes, max_files=max_files)

    def decode(upload: Upload) -> Any:
        """The decoded image; errors name the upload as the client knows it (file name or field)."""
        try:
            return decode_image(upload.data, max_pixels=settings.max_pixels)
        except ImageDecodeError as exc:
            reason = str(exc).removeprefix(describe_source(upload.data) + ": ")
            raise ImageDecodeError(f"{upload.label}: {reason}") from None

    def keep(upload: Upload) -> str | None:
        return state.audit.keep_image(upload.data, upload.kind)

    # -- health ------------------------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"], response_model=S.Status)
    async def healthz() -> dict[str, str]:
        """The process is up (no key needed)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "models still loading or unavailable"}})
    async def readyz() -> JSONResponse:
        """Models are loaded and requests will be served without a loading delay (no key needed)."""
        if state.ready:
            return JSONResponse({"status": "ready"})
        body = {"status": "failed" if state.load_error else "loading"}
        if state.load_error:
            body["error"] = state.load_error
        return JSONResponse(body, status_code=503)

    for path, probe in (("/healthz", healthz), ("/readyz", readyz)):  # HEAD for load balancers' health checks
        app.add_api_route(path, probe, methods=["HEAD"], include_in_schema=False)

    @app.get("/v1/whoami", tags=["keys"], response_model=S.WhoAmI, responses=S.ERRORS)
    async def whoami(key: Reader) -> dict[str, Any]:
        """The key's id, name and scope (the console uses it to sign in)."""
        return {"key_id": key.key_id, "name": key.name, "scope": key.scope}

    # -- faces -------------------------------------------------------------------------------------------
    @app.post("/v1/detect", tags=["faces"], openapi_extra=image_body(("image",)), response_model=S.DetectResponse,
              responses=S.ERRORS)
    async def detect(
        request: Request,
        key: Reader,
        liveness: bool = Query(False, description="Add a liveness score and decision per face."),
    ) -> dict[str, Any]:
        """Faces in the image, largest first: box (x1, y1, x2, y2), score and 5 landmarks."""
        upload = (await payload(request, ("image",))).one("image")

        def run() -> dict[str, Any]:
            engine = FaceAnalyzer(detector=settings.detector, tasks=("detect", "liveness") if liveness else ("detect",))
            return _image_answer(engine.run_one(decode(upload)))

        result = await work(run)
        if state.audit.images_dir is not None:
            state.audit.record(key.key_id, "detect", image=keep(upload), faces=len(result["faces"]))
        return result

    @app.post("/v1/verify", tags=["faces"], openapi_extra=image_body(("image_a", "image_b")),
              response_model=S.VerifyResponse, responses=S.ERRORS)
    async def verify(
        request: Request,
        key: Reader,
        threshold: float | None = Query(None, description="Cosine-similarity threshold (default: the model's)."),
        fmr: float | None = Query(None, gt=0, lt=1, description="Threshold as a target false-match rate instead."),
        select: str = Query("largest", pattern="^(largest|best|only)$"),
        liveness: bool = Query(False, description="A face judged a presentation attack never matches."),
    ) -> dict[str, Any]:
        """Are the faces in ``image_a`` and ``image_b`` the same person?"""
        body = await payload(request, ("image_a", "image_b"))
        a, b = body.one("image_a"), body.one("image_b")

        def run() -> dict[str, Any]:
            image_a, image_b = decode(a), decode(b)
            return facelens.verify(image_a, image_b, threshold=threshold, select=select,
                                   detector=settings.detector, liveness=liveness, fmr=fmr).to_dict()

        result = await work(run)
        state.audit.record(key.key_id, "verify", is_match=result["is_match"], similarity=result["similarity"],
                           images=[keep(a), keep(b)] if state.audit.images_dir else None)
        return result

    @app.post("/v1/identify", tags=["faces"], openapi_extra=image_body(("image",)),
              response_model=S.IdentifyResponse, responses=S.ERRORS)
    async def identify(
        request: Request,
        key: Reader,
        gallery: str = Query(DEFAULT_GALLERY, description="Gallery (collection) to search."),
        k: int = Query(3, ge=1, le=50, description="Candidates per face."),
        threshold: float | None = Query(None, description="Cosine similarity to name a face (overrides fpir)."),
        fpir: float = Query(0.01, gt=0, lt=1, description="Open-set false-positive identification rate."),
        liveness: bool = Query(False, description="Score liveness per face; spoofs are never named."),
        analyze: bool = Query(False, description="Add expression, age/gender and quality per face."),
        where: list[str] | None = Query(None, description="Only people whose metadata has KEY=VALUE (repeat a key "
                                                          "for any of its values; values parse as JSON)."),
    ) -> dict[str, Any]:
        """Name every face in the image against a gallery (``identity.name`` is null for strangers)."""
        filters = parse_key_values(where, "where")
        upload = (await payload(request, ("image",))).one("image")
        store = await work(state.gallery, gallery)

        def run() -> dict[str, Any]:
            found = facelens.identify(decode(upload), store, k=k, threshold=threshold, fpir=fpir, where=filters,
                                      detector=settings.detector, liveness=liveness, analyze=analyze)
            return {**_image_answer(found), "gallery": gallery}

        result = await work(run)
        state.audit.record(key.key_id, "identify", gallery, faces=len(result["faces"]),
                           names=[f["identity"]["name"] for f in result["faces"]], image=keep(upload))
        return result

    @app.post("/v1/analyze", tags=["faces"], openapi_extra=image_body(("image",)),
              response_model=S.AnalyzeResponse, responses=S.ERRORS)
    async def analyze(request: Request, key: Reader) -> dict[str, Any]:
        """Expression, age/gender and quality of every face."""
        upload = (await payload(request, ("image",))).one("image")

        def run() -> dict[str, Any]:
            engine = FaceAnalyzer(detector=settings.detector, tasks=("detect", "analyze"))
            return _image_answer(engine.run_one(decode(upload)))

        result = await work(run)
        if state.audit.images_dir is not None:
            state.audit.record(key.key_id, "analyze", image=keep(upload), faces=len(result["faces"]))
        return result

    # -- galleries ---------------------------------------------------------------------------------------
    def gallery_stats(name: str) -> dict[str, Any]:
        stats = state.gallery(name).stats()
        stats.pop("location", None)
        stats.pop("collection", None)
        return {"name": name, **stats}

    @app.get("/v1/galleries", tags=["galleries"], response_model=S.GalleryList, responses=S.ERRORS)
    async def galleries(key: Reader) -> dict[str, Any]:
        """Names of the galleries (collections) in the store."""
        names = await work(list_collections, settings.gallery)
        return {"galleries": [{"name": n} for n in names]}

    @app.post("/v1/galleries", tags=["galleries"], status_code=201, response_model=S.GalleryStats,
              responses=S.ERRORS)
    async def create_gallery(body: GalleryCreate, key: Admin) -> dict[str, Any]:
        """Create an empty gallery (409 if it exists)."""
        if body.name in await work(list_collections, settings.gallery):
            raise ApiError(409, "exists", f"gallery {body.name!r} already exists")
        state.forget(body.name)  # a handle left from a same-named gallery another replica deleted
        await work(state.gallery, body.name, True)
        state.audit.record(key.key_id, "create_gallery", body.name)
        return await work(gallery_stats, body.name)

    @app.get("/v1/galleries/{gallery}", tags=["galleries"], response_model=S.GalleryStats, responses=S.ERRORS)
    async def get_gallery(gallery: str, key: Reader) -> dict[str, Any]:
        """A gallery's size, model and open-set threshold."""
        return await work(gallery_stats, gallery)

    @app.delete("/v1/galleries/{gallery}", tags=["galleries"], response_model=S.GalleryRemoved,
                responses=S.ERRORS)
    async def delete_gallery(gallery: str, key: Admin) -> dict[str, Any]:
        """Delete a gallery with all its people and faces (the default gallery always exists: 409)."""
        if gallery == DEFAULT_GALLERY:
            raise ApiError(409, "default_gallery", f"the {DEFAULT_GALLERY!r} gallery always exists; "
                                                   "remove its people instead")
        state.gallery(gallery)  # 400 for a bad name, 404 for an unknown gallery
        state.forget(gallery)
        removed = await work(drop_collection, settings.gallery, gallery)
        state.audit.record(key.key_id, "delete_gallery", gallery, faces_removed=removed)
        return {"name": gallery, "faces_removed": removed}

    # -- people ------------------------------------------------------------------------------------------
    @app.get("/v1/galleries/{gallery}/people", tags=["people"], response_model=S.PeopleList, responses=S.ERRORS)
    async def people(
        gallery: str,
        key: Reader,
        offset: int = Query(0, ge=0),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> dict[str, Any]:
        """People in the gallery (name, face count, metadata), by name."""

        def run() -> dict[str, Any]:
            everyone = sorted(state.gallery(gallery).people(), key=lambda p: p.name)
            return {"total": len(everyone), "people": [p.to_dict() for p in everyone[offset : offset + limit]]}

        return await work(run)

    @app.post("/v1/galleries/{gallery}/people", tags=["people"], status_code=201, response_model=S.PersonOut,
              responses=S.ERRORS)
    async def create_person(gallery: str, body: PersonCreate, key: Admin) -> dict[str, Any]:
        """Add a person with no faces yet (409 if the name is taken)."""

        def run() -> dict[str, Any]:
            store = state.gallery(gallery)
            try:
                store.person(body.name.strip())
            except NotFoundError:
                return store.add_person(body.name, body.metadata).to_dict()
            raise ApiError(409, "exists", f"{body.name!r} is already in gallery {gallery!r}")

        result = await work(run)
        state.audit.record(key.key_id, "create_person", gallery, result["name"])
        return result

    @app.get("/v1/galleries/{gallery}/people/{name:path}", tags=["people"], response_model=S.PersonDetail,
             responses=S.ERRORS)
    async def get_person(gallery: str, name: str, key: Reader) -> dict[str, Any]:
        """One person and their enrolled faces."""

        def run() -> dict[str, Any]:
            store = state.gallery(gallery)
            person = store.person(name).to_dict()
            return {**person, "faces": [_client_face(f.to_dict()) for f in store.faces(name)]}

        return await work(run)

    @app.patch("/v1/galleries/{gallery}/people/{name:path}", tags=["people"], response_model=S.PersonOut,
               responses=S.ERRORS)
    async def update_person(gallery: str, name: str, body: PersonUpdate, key: Admin) -> dict[str, Any]:
        """Replace a person's metadata and/or rename them."""

        def run() -> dict[str, Any]:
            store = state.gallery(gallery)
            current = store.person(name)
            if body.metadata is not None:
                store.update_person(name, body.metadata)
            if body.name is not None and body.name.strip() != current.name:
                store.rename(name, body.name)
                return store.person(body.name.strip()).to_dict()
            return store.person(name).to_dict()

        result = await work(run)
        state.audit.record(key.key_id, "update_person", gallery, name, renamed_to=body.name)
        return result

    @app.delete("/v1/galleries/{gallery}/people/{name:path}", tags=["people"], response_model=S.PersonRemoved,
                responses=S.ERRORS)
    async def delete_person(gallery: str, name: str, key: Admin) -> dict[str, Any]:
        """Remove a person and all their faces."""
        removed = await work(lambda: state.gallery(gallery).remove(name))
        state.audit.record(key.key_id, "delete_person", gallery, name, faces_removed=removed)
        return {"name": name, "faces_removed": removed}

    @app.post(
        "/v1/galleries/{gallery}/people/{name:path}/faces",
        tags=["people"],
        response_model=S.EnrollResponse,
        responses=S.ERRORS,
        openapi_extra=image_body(("image",), repeated=True,
                                 extra={"metadata": {"type": "object", "description": "metadata for a new person"}}),
    )
    async def enroll(
        request: Request,
        gallery: str,
        name: Annotated[str, PathParam(description="Created if not yet in the gallery.")],
        key: Admin,
        select: str = Query("single", pattern="^(single|largest|best|only)$",
                            description="Which face of a photo: single refuses photos of several people of similar "
                                        "size; largest, best (detector score) or only."),
        min_quality: float | None = Query(None, ge=0, le=1, description="Refuse faces whose quality score is below."),
    ) -> dict[str, Any]:
        """Enrol one face per image for a person, all in one transaction; unusable images are skipped with a reason."""
        body = await payload(request, ("image", "images"))
        uploads = body.images.get("image", []) + body.images.get("images", [])
        if not uploads:
            raise ApiError(422, "missing_image", "send one or more images (multipart field 'image' or JSON 'images')")
        metadata = body.fields.get("metadata")
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except ValueError:
                raise ApiError(422, "bad_request", "metadata is not valid JSON") from None
        metadata = check_metadata(metadata) or None  # before any image is looked at

        def run() -> dict[str, Any]:
            store = state.gallery(gallery)
            images, labels, skipped = [], [], []
            for upload in uploads:
                try:
                    images.append(decode(upload))
                    labels.append(upload.label)
                except ImageDecodeError as exc:
                    skipped.append({"source": upload.label, "reason": str(exc).removeprefix(f"{upload.label}: ")})
            # one library call for every photo: its faces are written in one transaction (all of them or none,
            # whatever happens to this process), and each skip is reported under the client's own file name
            result = facelens.enroll(store, name, images, metadata=metadata, detector=settings.detector,
                                     select=select, min_quality=min_quality, sources=labels, workers=1)
            return {"name": result.name, "added": result.added,
                    "skipped": skipped + [{"source": s["source"], "reason": s["reason"].removeprefix(f"{s['source']}: ")}
                                          for s in result.skipped]}

        result = await work(run)
        state.audit.record(key.key_id, "enroll", gallery, name, added=len(result["added"]),
                           skipped=len(result["skipped"]))
        return result

    @app.delete("/v1/galleries/{gallery}/faces/{face_id}", tags=["people"], response_model=S.FaceRemoved,
                responses=S.ERRORS)
    async def delete_face(gallery: str, face_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)], key: Admin) -> dict[str, Any]:
        """Remove one enrolled face (the person stays, even with no faces left)."""
        await work(lambda: state.gallery(gallery).remove_face(face_id))
        state.audit.record(key.key_id, "delete_face", gallery, face_id=face_id)
        return {"face_id": face_id, "removed": True}

    # -- console -----------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console/")

    app.mount("/console", StaticFiles(directory=CONSOLE_DIR, html=True), name="console")
    return app
