"""Service fixtures: one real app per session (folder gallery, key store, models loaded once), its keys, a
real uvicorn server on a free loopback port, and LFW photos of people with several images."""

from __future__ import annotations

import csv
import socket
import threading
import time
from pathlib import Path

import pytest
from helpers import need_data

pytest.importorskip("fastapi", reason="pip install 'facelens[service]'")


def wait_ready(client, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"service not ready after {timeout}s: {client.get('/readyz').json()}")


@pytest.fixture(scope="session")
def ready():
    """``ready(client)`` waits for /readyz (a fixture: test modules cannot import conftest reliably)."""
    return wait_ready


@pytest.fixture(scope="session")
def service(tmp_path_factory, pipeline):
    """(app, settings, admin key, identify key) for a fresh folder gallery: uploads up to 2 MB and 5 Mpixel,
    no rate limit (a separate app tests that), probe images not kept."""
    from facelens.service import KeyStore, Settings, create_app

    root = tmp_path_factory.mktemp("service")
    settings = Settings(gallery=str(root / "people"), max_upload_bytes=2_000_000, max_pixels=5_000_000,
                        rate_limit=0, workers=4)
    app = create_app(settings)
    store = KeyStore(settings.keys_location)
    _, admin = store.create("admin", "tests-admin")
    _, reader = store.create("identify", "tests-reader")
    return app, settings, admin, reader


@pytest.fixture(scope="session")
def client(service):
    from fastapi.testclient import TestClient

    app = service[0]
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.fixture(scope="session")
def admin_headers(service):
    return {"Authorization": f"Bearer {service[2]}"}


@pytest.fixture(scope="session")
def reader_headers(service):
    return {"X-API-Key": service[3]}


@pytest.fixture(scope="session")
def people_photos():
    """LFW identification subset: person -> image paths (10 each, 250x250, one face)."""
    root = need_data("identity", "lfw")
    by_person: dict[str, list[Path]] = {}
    with open(root / "identification_subset.csv") as handle:
        for row in csv.DictReader(handle):
            by_person.setdefault(row["person"], []).append(root / row["image"])
    return by_person


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(service, client):
    """The session's app served by a real uvicorn on a free loopback port, in a thread; yields the base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(service[0], host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)
