"""Keys (hashed, scoped, revocable), the `facelens keys` commands, per-key rate limits, CORS, settings from the
environment, and `facelens serve` as a real process that finishes in-flight requests on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest
from typer.testing import CliRunner

from facelens.errors import FacelensError, NotFoundError
from facelens.service import KeyStore, Settings, create_app
from facelens.cli.service import keys_app
from facelens.service.ratelimit import RateLimiter
from facelens.service.uploads import sniff

TOKEN = re.compile(r"^fl_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}$")


def test_keys_are_stored_hashed_and_revocable(tmp_path):
    store = KeyStore(tmp_path / "keys.db")
    key, token = store.create("identify", "door")
    assert TOKEN.match(token) and store.check(token) == key
    assert store.check(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.check("fl_" + "0" * 12 + "_x") is None and store.check("") is None
    raw = (tmp_path / "keys.db").read_bytes()
    assert token.split("_", 2)[2].encode() not in raw  # the secret itself is never written
    rows = sqlite3.connect(tmp_path / "keys.db").execute("SELECT secret_sha256 FROM facelens_api_keys").fetchall()
    assert len(rows[0][0]) == 64
    assert key.allows("identify") and not key.allows("admin")
    store.revoke(key.key_id)
    assert store.check(token) is None and store.list() == [] and len(store.list(include_revoked=True)) == 1
    with pytest.raises(NotFoundError):
        store.revoke(key.key_id)
    with pytest.raises(FacelensError):
        store.create("superuser")


def test_keys_in_postgres_are_hashed_shared_and_revocable(postgres_url):
    import psycopg

    first, second = KeyStore(postgres_url), KeyStore(postgres_url)  # two replicas on one database
    key, token = first.create("admin", "replica-test")
    assert second.check(token) == key and second.check(token[:-1] + "!") is None
    with psycopg.connect(postgres_url) as conn:
        stored = conn.execute("SELECT secret_sha256 FROM facelens_api_keys WHERE key_id = %s", (key.key_id,)).fetchone()
    assert stored[0] != token.split("_", 2)[2] and len(stored[0]) == 64
    assert key.key_id in [k.key_id for k in second.list()]
    second.revoke(key.key_id)
    assert first.check(token) is None
    with pytest.raises(NotFoundError) as failure:
        first.revoke(key.key_id)
    assert "postgresql://" in str(failure.value)


def _open_together(location: str, count: int = 6) -> list[KeyStore]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: KeyStore(location), range(count)))


def test_replicas_starting_together_on_a_new_key_store(tmp_path, postgres_url):
    """Used to fail with "database is locked" (SQLite's WAL switch) or a pg_type unique violation (CREATE TABLE)."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE fresh_keys")
    fresh = re.sub(r"/postgres(\?|$)", r"/fresh_keys\1", postgres_url)
    assert fresh != postgres_url
    for location in (str(tmp_path / "keys.db"), fresh):
        stores = _open_together(location)
        token = stores[0].create("admin")[1]
        assert all(store.check(token) for store in stores)


def test_keys_cli_create_prints_the_key_alone(tmp_path):
    runner = CliRunner()
    gallery = str(tmp_path / "people")
    result = runner.invoke(keys_app, ["create", "--scope", "admin", "--name", "ops", "--gallery", gallery])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert TOKEN.match(token) and result.stdout == token + "\n"
    key = KeyStore(tmp_path / "people" / "keys.db").check(token)
    assert key is not None and key.scope == "admin" and key.name == "ops"
    listed = runner.invoke(keys_app, ["list", "--gallery", gallery, "--json"])
    assert listed.exit_code == 0 and f'"key_id": "{key.key_id}"' in listed.stdout and token not in listed.stdout
    table = runner.invoke(keys_app, ["list", "--gallery", gallery])
    assert key.key_id in table.stdout and "admin" in table.stdout
    assert runner.invoke(keys_app, ["revoke", key.key_id, "--gallery", gallery]).exit_code == 0
    again = runner.invoke(keys_app, ["revoke", key.key_id, "--gallery", gallery])
    assert again.exit_code == 2 and "no active API key" in again.output
    bad = runner.invoke(keys_app, ["create", "--scope", "root", "--gallery", gallery])
    assert bad.exit_code == 2 and "unknown scope" in bad.output and bad.stdout == ""


def test_token_bucket():
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("k", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k", now=0.0) == pytest.approx(0.5)
    assert limiter.take("other", now=0.0) == 0.0  # buckets are per key
    assert limiter.take("k", now=0.5) == 0.0 and limiter.take("k", now=0.5) > 0
    assert RateLimiter(rate=0, burst=1).take("k") == 0.0


def test_rate_limit_and_revocation_over_http(tmp_path):
    from fastapi.testclient import TestClient

    settings = Settings(gallery=str(tmp_path / "g"), rate_limit=0.5, rate_burst=2, preload=False,
                        cors_origins=("https://door.example",))
    app = create_app(settings)
    store = KeyStore(settings.keys_location)
    key, token = store.create("identify")
    _, other = store.create("identify")
    with TestClient(app) as client:
        headers = {"X-API-Key": token}
        assert [client.get("/v1/whoami", headers=headers).status_code for _ in range(2)] == [200, 200]
        limited = client.get("/v1/whoami", headers=headers)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"]["code"] == "rate_limited"
        assert client.get("/v1/whoami", headers={"X-API-Key": other}).status_code == 200
        store.revoke(key.key_id)
        assert client.get("/v1/whoami", headers={"X-API-Key": token}).status_code == 401
        cors = client.options("/v1/identify", headers={"Origin": "https://door.example",
                                                        "Access-Control-Request-Method": "POST"})
        assert cors.headers["access-control-allow-origin"] == "https://door.example"
        denied = client.options("/v1/identify", headers={"Origin": "https://evil.example",
                                                          "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in denied.headers


def test_settings_from_environment(tmp_path):
    env = {"FACELENS_GALLERY": str(tmp_path / "g"), "FACELENS_RATE_LIMIT": "2.5", "FACELENS_CORS_ORIGINS": "a, b",
           "FACELENS_MAX_UPLOAD_BYTES": "1000", "FACELENS_PRELOAD": "false", "FACELENS_PORT": ""}
    settings = Settings.from_env(env, port=9000, host=None)
    assert settings.gallery == str(tmp_path / "g") and settings.rate_limit == 2.5 and settings.port == 9000
    assert settings.cors_origins == ("a", "b") and settings.max_upload_bytes == 1000 and settings.preload is False
    assert settings.host == "127.0.0.1" and settings.keys_location == str(tmp_path / "g" / "keys.db")
    assert Settings(gallery="postgresql://u@h/db").audit_path is None
    assert Settings.from_env(settings.to_env()) == settings  # what worker processes read back
    with pytest.raises(FacelensError, match="FACELENS_RATE_LIMIT"):
        Settings.from_env({"FACELENS_RATE_LIMIT": "fast"})


@pytest.mark.parametrize("data, kind", [(b"\xff\xd8\xff\xe0", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"),
                                        (b"RIFF\0\0\0\0WEBPVP8 ", "webp"), (b"<svg", None), (b"%PDF", None)])
def test_sniffing(data, kind):
    assert sniff(data) == kind


def _wait_ready(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.3)
    pytest.fail("service never became ready")


def test_serve_process_finishes_in_flight_requests_on_sigterm(tmp_path, people_photos):
    """`facelens serve` for real: ready, a request in flight when SIGTERM arrives is still answered, then it exits."""
    with socket_port() as port:
        pass
    gallery = tmp_path / "people"
    env = {**os.environ, "FACELENS_GALLERY": str(gallery), "FACELENS_RATE_LIMIT": "0"}
    code = "import typer; from facelens.cli.service import serve; typer.run(serve)"
    process = subprocess.Popen([sys.executable, "-c", code, "--port", str(port), "--log-level", "warning"],
                               env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, process)
        token = KeyStore(gallery / "keys.db").create("identify")[1]
        photo = min(people_photos.values())[0]
        results = {}

        def slow_request() -> None:
            # a body that trickles in keeps the request in flight while the signal arrives
            def body():
                data = photo.read_bytes()
                yield data[:100]
                time.sleep(1.5)
                yield data[100:]

            results["response"] = httpx.post(url + "/v1/detect", content=body(), timeout=30,
                                             headers={"X-API-Key": token, "Content-Type": "image/jpeg"})

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        thread.join(30)
        # uvicorn shuts down gracefully, then re-raises the captured signal (so supervisors see SIGTERM)
        assert process.wait(30) in (0, -signal.SIGTERM)
        response = results["response"]
        assert response.status_code == 200 and len(response.json()["faces"]) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_with_two_processes(tmp_path, people_photos):
    """`--processes 2`: settings reach both workers through the environment; both answer; SIGTERM stops all."""
    with socket_port() as port:
        pass
    gallery = tmp_path / "people"
    code = "import typer; from facelens.cli.service import serve; typer.run(serve)"
    process = subprocess.Popen([sys.executable, "-c", code, "--gallery", str(gallery), "--port", str(port),
                                "--processes", "2", "--rate-limit", "0", "--max-upload-mb", "0.5",
                                "--log-level", "warning"],
                               stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, process)
        token = KeyStore(gallery / "keys.db").create("identify")[1]
        photo = min(people_photos.values())[0]
        with httpx.Client(base_url=url, headers={"X-API-Key": token}, timeout=60) as client:
            faces = [client.post("/v1/detect", files={"image": ("p.jpg", photo.read_bytes(), "image/jpeg")})
                     for _ in range(4)]
            too_big = client.post("/v1/detect", files={"image": ("p.jpg", b"\xff\xd8\xff" + bytes(600_000),
                                                                   "image/jpeg")})
        assert [r.status_code for r in faces] == [200] * 4 and too_big.status_code == 413
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


class socket_port:
    """A free loopback port (bound, then released on exit)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_probe_images_kept_only_when_asked(tmp_path, people_photos, pipeline):
    import json

    from fastapi.testclient import TestClient

    photo = min(people_photos.values())[0]
    settings = Settings(gallery=str(tmp_path / "g"), audit_images=str(tmp_path / "probes"), preload=False)
    app = create_app(settings)  # creates the gallery folder, where the key store then lives
    token = KeyStore(settings.keys_location).create("identify")[1]
    with TestClient(app) as client:
        response = client.post("/v1/identify", headers={"X-API-Key": token},
                               files={"image": ("p.jpg", photo.read_bytes(), "image/jpeg")})
    assert response.status_code == 200
    record = json.loads(settings.audit_path.read_text().splitlines()[-1])
    assert record["action"] == "identify" and record["image"].endswith(".jpeg")
    assert (tmp_path / "probes" / record["image"]).read_bytes() == photo.read_bytes()
