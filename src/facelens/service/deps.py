"""FastAPI dependencies every router shares: the app's state, the API key with its scope, and the gallery.

A route declares what it needs by type: ``key: Reader`` (any live key) or ``key: Admin`` (keys that may change
galleries), ``store: PathGallery`` (the ``{gallery}`` of its path) or ``store: QueryGallery`` (``?gallery=``,
default ``default``), ``state: State`` (settings, worker pool, audit log).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from facelens.gallery import Gallery
from facelens.service.guard import SCOPE_KEY
from facelens.service.keys import ApiKey
from facelens.service.state import DEFAULT_GALLERY, ServiceState
from facelens.service.uploads import ApiError


def service_state(request: Request) -> ServiceState:
    return request.app.state.facelens


State = Annotated[ServiceState, Depends(service_state)]

# the guard checked the key before the body was read; these only document the two ways to send it in OpenAPI
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


def require(scope: str) -> Callable[..., ApiKey]:
    """A dependency: the request's API key, which must allow ``scope`` and be within its rate limit."""

    def check(
        request: Request,
        state: State,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        api_key: Annotated[str | None, Depends(_header_key)],
    ) -> ApiKey:
        key = request.scope.get("state", {}).get(SCOPE_KEY)
        if key is None:
            raise ApiError(401, "missing_key", "an API key is required (Authorization: Bearer <key> or X-API-Key)",
                           {"WWW-Authenticate": "Bearer"})
        if not key.allows(scope):
            raise ApiError(403, "forbidden", f"this key's scope is {key.scope!r}; this endpoint needs {scope!r}")
        wait = state.rate.take(key.key_id)
        if wait > 0:
            raise ApiError(429, "rate_limited", f"rate limit of {state.settings.rate_limit:g} requests/s exceeded",
                           {"Retry-After": str(max(1, round(wait + 0.5)))})
        request.state.key = key
        return key

    return check


Reader = Annotated[ApiKey, Depends(require("identify"))]  # any live key
Admin = Annotated[ApiKey, Depends(require("admin"))]  # keys that may change galleries


async def path_gallery(state: State, gallery: str) -> Gallery:
    """The open gallery named by the route's ``{gallery}`` (400 for a bad name, 404 for an unknown one)."""
    return await state.work(state.gallery, gallery)


async def query_gallery(
    state: State,
    gallery: str = Query(DEFAULT_GALLERY, description="Gallery (collection) to search."),
) -> Gallery:
    """The open gallery named by ``?gallery=`` (the default gallery when absent)."""
    return await state.work(state.gallery, gallery)


PathGallery = Annotated[Gallery, Depends(path_gallery)]
QueryGallery = Annotated[Gallery, Depends(query_gallery)]

