"""Two service replicas on one PostgreSQL + pgvector gallery and one shared key store: a person enrolled through
one replica is identified by the other, a gallery created on one is listed by the other, a key revoked once is
refused by both. The keys live in the gallery's database (the default for a PostgreSQL gallery), so replicas on
different hosts need no shared volume."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def replicas(postgres_url, tmp_path, pipeline, ready):
    from fastapi.testclient import TestClient

    from facelens.service import KeyStore, Settings, create_app

    settings = Settings(gallery=postgres_url, audit_log=str(tmp_path / "audit.jsonl"), rate_limit=0,
                        gallery_recheck_s=0)
    assert settings.keys_location == postgres_url
    store = KeyStore(postgres_url)
    admin_key, admin = store.create("admin")
    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        ready(a)
        ready(b)
        yield a, b, {"X-API-Key": admin}, store, admin_key


def test_replicas_share_gallery_and_keys(replicas, people_photos):
    a, b, headers, store, admin_key = replicas
    gallery = f"replicas-{uuid.uuid4().hex[:8]}"
    name = sorted(people_photos)[2]
    photos = people_photos[name]
    assert a.post("/v1/galleries", json={"name": gallery}, headers=headers).status_code == 201
    assert gallery in [g["name"] for g in b.get("/v1/galleries", headers=headers).json()["galleries"]]
    enrolled = a.post(f"/v1/galleries/{gallery}/people/{name}/faces", headers=headers,
                      files=[("image", (p.name, p.read_bytes(), "image/jpeg")) for p in photos[:2]]).json()
    assert len(enrolled["added"]) == 2
    found = b.post(f"/v1/identify?gallery={gallery}", headers=headers,
                   files={"image": (photos[4].name, photos[4].read_bytes(), "image/jpeg")}).json()
    assert found["faces"][0]["identity"]["name"] == name
    assert b.get(f"/v1/galleries/{gallery}/people/{name}", headers=headers).json()["face_count"] == 2
    assert b.delete(f"/v1/galleries/{gallery}", headers=headers).json()["faces_removed"] == 2
    assert a.get(f"/v1/galleries/{gallery}", headers=headers).status_code == 404
    store.revoke(admin_key.key_id)
    assert a.get("/v1/whoami", headers=headers).status_code == 401
    assert b.get("/v1/whoami", headers=headers).status_code == 401
