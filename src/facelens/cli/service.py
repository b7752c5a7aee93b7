"""``facelens serve`` (run the REST service and web console) and ``facelens keys`` (create/list/revoke API keys)."""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

import typer

from facelens.cli.options import DETECTOR_HELP, Json, known_detector
from facelens.cli.output import USAGE, emit, err, fail, out
from facelens.errors import FacelensError

keys_app = typer.Typer(help="API keys for `facelens serve`: create, list, revoke.", no_args_is_help=True)

_GALLERY_HELP = "Gallery store the service uses (its keys.db lives inside a folder gallery). Env FACELENS_GALLERY."
_KEYS_HELP = "Key store file (default: <gallery>/keys.db). Env FACELENS_KEYS."


def _store(gallery: str | None, keys: str | None) -> Any:
    from facelens.gallery import open_gallery
    from facelens.service.keys import KeyStore
    from facelens.service.settings import Settings

    settings = Settings.from_env(gallery=gallery, keys=keys)
    if settings.gallery_is_folder and not settings.keys:  # keys.db goes inside the gallery folder: create it first
        open_gallery(settings.gallery, create=True).close()
    return KeyStore(settings.keys_location)


def serve(
    gallery: str | None = typer.Option(None, "--gallery", "-g", help="Folder or postgresql:// URL (default ./people). "
                                          "Env FACELENS_GALLERY."),
    host: str | None = typer.Option(None, help="Interface to listen on (default 127.0.0.1). Env FACELENS_HOST."),
    port: int | None = typer.Option(None, help="Port (default 8000). Env FACELENS_PORT."),
    keys: str | None = typer.Option(None, "--keys", help=_KEYS_HELP),
    workers: int | None = typer.Option(None, help="Worker threads for CPU work per process (0 = one per core)."),
    processes: int | None = typer.Option(None, help="Server processes sharing the port (default 1). The face "
                                         "models take one caller at a time, so more processes = more throughput. "
                                         "Env FACELENS_PROCESSES."),
    max_upload_mb: float | None = typer.Option(None, help="Largest request body in MiB (default 10)."),
    max_pixels: int | None = typer.Option(None, help="Largest image in pixels (default 25,000,000)."),
    rate_limit: float | None = typer.Option(None, help="Requests per second per key (0 = unlimited; default 10)."),
    rate_burst: int | None = typer.Option(None, help="Burst size per key (default 20)."),
    cors: str | None = typer.Option(None, help="Comma-separated origins allowed by CORS ('*' for any)."),
    audit_log: str | None = typer.Option(None, help="Audit log file (default <gallery>/audit.jsonl; '-' = log only)."),
    audit_images: str | None = typer.Option(None, help="Keep probe images in this folder (off by default)."),
    detector: Optional[str] = typer.Option(None, "--detector", help=DETECTOR_HELP + " Env FACELENS_DETECTOR.",
                                           callback=known_detector),
    heads_dir: str | None = typer.Option(None, "--heads-dir", help="Folder of custom heads (`facelens analyze fit "
                                         "-o DIR/NAME.joblib`) that /v1/analyze?head=NAME may apply. Env "
                                         "FACELENS_HEADS_DIR."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Run the REST API and web console (http://HOST:PORT/). Ctrl-C / SIGTERM finish in-flight requests first."""
    import uvicorn

    from facelens.service.app import create_app
    from facelens.service.settings import Settings

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env(
            gallery=gallery, host=host, port=port, keys=keys, workers=workers, processes=processes,
            max_upload_bytes=int(max_upload_mb * 1024 * 1024) if max_upload_mb is not None else None,
            max_pixels=max_pixels, rate_limit=rate_limit, rate_burst=rate_burst, cors_origins=cors,
            audit_log=audit_log, audit_images=audit_images, detector=detector, heads_dir=heads_dir,
        )
        application = create_app(settings) if settings.processes <= 1 else None
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    from facelens.errors import redact_url

    err.print(f"facelens serving gallery {redact_url(settings.gallery)} on http://{settings.host}:{settings.port}/ "
              f"(keys: {redact_url(settings.keys_location)}, {settings.processes} process(es))", highlight=False)
    options = {"host": settings.host, "port": settings.port, "log_level": log_level, "proxy_headers": True,
               "timeout_graceful_shutdown": int(settings.graceful_timeout)}
    if application is not None:
        uvicorn.run(application, **options)
        return
    # several processes: each builds its own app from the environment (uvicorn's factory mode)
    if settings.gallery_is_folder:
        from facelens.gallery import open_gallery

        open_gallery(settings.gallery, create=True).close()  # create the store once, before the workers race
    os.environ.update(settings.to_env())
    uvicorn.run("facelens.service.app:create_app", factory=True, workers=settings.processes, **options)


@keys_app.command("create")
def create(
    scope: str = typer.Option(..., "--scope", help="identify (read-only) or admin (enrol/delete/everything)."),
    name: str = typer.Option("", "--name", help="A label to recognise the key by (who or what uses it)."),
    gallery: str | None = typer.Option(None, "--gallery", "-g", help=_GALLERY_HELP),
    keys: str | None = typer.Option(None, "--keys", help=_KEYS_HELP),
    json_out: Json = False,
) -> None:
    """Create a key and print it alone on stdout (it is shown once: only its hash is stored)."""
    try:
        key, token = _store(gallery, keys).create(scope, name)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    if json_out:
        emit({**key.to_dict(), "token": token})
        return
    err.print(f"created key {key.key_id} (scope {key.scope})", highlight=False)
    typer.echo(token)


@keys_app.command("list")
def list_keys(
    gallery: str | None = typer.Option(None, "--gallery", "-g", help=_GALLERY_HELP),
    keys: str | None = typer.Option(None, "--keys", help=_KEYS_HELP),
    revoked: bool = typer.Option(False, "--revoked", help="Include revoked keys."),
    json_out: Json = False,
) -> None:
    """Keys (id, scope, name, created; never the secrets)."""
    import datetime as dt

    from rich.table import Table

    try:
        found = _store(gallery, keys).list(include_revoked=revoked)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    if json_out:
        for key in found:
            emit(key.to_dict())
        return
    table = Table("id", "scope", "name", "created", "revoked")
    for key in found:
        when = dt.datetime.fromtimestamp(key.created_at).strftime("%Y-%m-%d %H:%M")
        gone = dt.datetime.fromtimestamp(key.revoked_at).strftime("%Y-%m-%d %H:%M") if key.revoked_at else ""
        table.add_row(key.key_id, key.scope, key.name, when, gone)
    out.print(table)


@keys_app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., help="The key's id (second part of fl_<id>_..., or from `facelens keys list`)."),
    gallery: str | None = typer.Option(None, "--gallery", "-g", help=_GALLERY_HELP),
    keys: str | None = typer.Option(None, "--keys", help=_KEYS_HELP),
    json_out: Json = False,
) -> None:
    """Revoke a key: requests with it are refused from now on (every replica sharing the key store)."""
    try:
        key = _store(gallery, keys).revoke(key_id)
    except (FacelensError, ValueError) as exc:
        fail(exc, USAGE)
    if json_out:
        emit(key.to_dict())
    else:
        out.print(f"revoked {key.key_id} ({key.scope}{', ' + key.name if key.name else ''})", highlight=False)
