"""The first thing every request meets (pure ASGI, before FastAPI reads a byte of the body):

- a size limit for every body: the upload limit for routes that take images, a small one for every other body,
  checked from Content-Length and again while the body streams in (413), whatever the content type;
- the API key of every ``/v1/`` request, checked before its body is read, so nobody without a key can make the
  server read (or hold in memory) a large body;
- failed authentication throttled per client address and per key id (429 with Retry-After) and recorded in the
  audit log (every failure until the limit, then one ``auth_throttled`` record per lock-out).

The key found is left in the request scope for the scope check of each route (``require`` in deps.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from facelens.service.uploads import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Routes whose body carries images (multipart, base64 JSON or raw): the upload limit applies to them.
_UPLOAD_ROUTES = re.compile(r"^/v1/(detect|verify|identify|analyze|anonymize|galleries/[^/]+/people/.+/faces)/?$")
#: Routes open without a key.
_OPEN = ("/healthz", "/readyz")
SCOPE_KEY = "facelens_key"


def token_of(headers: Headers) -> str | None:
    """The API key sent as ``Authorization: Bearer <key>`` or ``X-API-Key``."""
    value = headers.get("authorization", "")
    if value[:7].lower() == "bearer " and value[7:].strip():
        return value[7:].strip()
    return headers.get("x-api-key") or None


def key_id_of(token: str) -> str | None:
    parts = token.split("_", 2)
    return parts[1][:32] if len(parts) == 3 and parts[0] == "fl" else None


class RequestGuard:
    def __init__(self, app: Callable[..., Awaitable[None]], state: Any) -> None:
        self.app = app
        self.state = state  # ServiceState: settings, keys, audit, auth throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self.state.settings
        path = scope.get("path", "")
        limit = settings.max_upload_bytes if _UPLOAD_ROUTES.match(path) else settings.max_json_bytes
        headers = Headers(scope=scope)
        try:
            declared = headers.get("content-length")
            if declared is not None:
                if not declared.isdigit():
                    raise ApiError(400, "bad_request", "Content-Length is not a number")
                if int(declared) > limit:
                    raise ApiError(413, "too_large", f"request body of {int(declared):,} bytes exceeds the limit "
                                                     f"of {limit:,} bytes for this endpoint")
            if path.startswith("/v1/") and path not in _OPEN:
                scope.setdefault("state", {})[SCOPE_KEY] = await self._authenticate(scope, headers)
        except ApiError as exc:
            await _answer(send, exc)
            return
        await self.app(scope, _limited(receive, limit), send)

    async def _authenticate(self, scope: Scope, headers: Headers) -> Any:
        token = token_of(headers)
        client = (scope.get("client") or ("unknown", 0))[0]
        key_id = key_id_of(token) if token else None
        identities = (f"address:{client}",) + ((f"key:{key_id}",) if key_id else ())
        throttle = self.state.auth_throttle
        wait = throttle.wait(identities)
        if wait > 0:
            raise ApiError(429, "auth_throttled", "too many failed authentications; try again later",
                           {"Retry-After": str(max(1, round(wait + 0.5)))})
        key = await run_in_threadpool(self.state.keys.check, token) if token else None
        if key is not None:
            return key
        reason = "missing_key" if not token else "invalid_key"
        reached = throttle.fail(identities)
        audit = self.state.audit
        await run_in_threadpool(audit.record, key_id or "-", "auth_failed", client=client, reason=reason,
                                path=scope.get("path"))
        if reached:
            await run_in_threadpool(audit.record, key_id or "-", "auth_throttled", client=client,
                                    window_s=throttle.window_s, failures=throttle.limit)
        if not token:
            raise ApiError(401, "missing_key", "an API key is required (Authorization: Bearer <key> or X-API-Key)",
                           {"WWW-Authenticate": "Bearer"})
        raise ApiError(401, "invalid_key", "unknown or revoked API key", {"WWW-Authenticate": "Bearer"})


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that refuses the body (413) as soon as more than ``limit`` bytes have arrived."""
    seen = 0

    async def guarded() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                # an HTTPException, which FastAPI's body parsing passes on (it turns other errors into a 400)
                raise HTTPException(413, f"request body exceeds the limit of {limit:,} bytes for this endpoint")
        return message

    return guarded


async def _answer(send: Send, exc: ApiError) -> None:
    body = json.dumps({"error": {"code": exc.code, "message": exc.message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
