"""``DELETE /v1/galleries/{g}/people/{name}?erase=true``: the person's vectors are in no file of the gallery folder
afterwards, their probe images are deleted and the audit log keeps only the fact of the erasure."""

from __future__ import annotations

import json

import numpy as np

from facelens.service import KeyStore, Settings, create_app


def test_erase_endpoint_leaves_nothing_behind(tmp_path, people_photos, pipeline):
    from fastapi.testclient import TestClient

    from facelens.gallery import open_gallery

    (name, photos), (other, others) = sorted(people_photos.items())[:2]
    folder = tmp_path / "g"
    settings = Settings(gallery=str(folder), audit_images=str(tmp_path / "probes"), preload=False, rate_limit=0)
    app = create_app(settings)
    admin = {"Authorization": f"Bearer {KeyStore(settings.keys_location).create('admin')[1]}"}
    with TestClient(app) as client:
        for person, images in ((name, photos[:3]), (other, others[:2])):
            files = [("image", (p.name, p.read_bytes(), "image/jpeg")) for p in images]
            response = client.post(f"/v1/galleries/default/people/{person}/faces", headers=admin, files=files)
            assert response.status_code == 200, response.text
        probe = photos[5].read_bytes()
        response = client.post("/v1/identify?gallery=default", headers=admin,
                               files={"image": ("p.jpg", probe, "image/jpeg")})
        assert response.status_code == 200 and response.json()["faces"][0]["identity"]["name"] == name
        with open_gallery(folder, create=False) as store:
            vectors = [np.asarray(f.embedding, np.float32).tobytes() for f in store.faces(name, with_embeddings=True)]
        assert len(vectors) == 3
        response = client.delete(f"/v1/galleries/default/people/{name}?erase=true", headers=admin)
        assert response.status_code == 200, response.text
        assert response.json() == {"name": name, "faces_removed": 3, "erased": True}
        assert client.get(f"/v1/galleries/default/people/{name}", headers=admin).status_code == 404
        assert client.get(f"/v1/galleries/default/people/{other}", headers=admin).status_code == 200
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not any(v[:64] in data for v in vectors), path
        assert probe not in data, path
    text = settings.audit_path.read_text()
    assert name not in text
    last = json.loads(text.splitlines()[-1])
    assert last["action"] == "erase_person" and last["person"] is None and last["faces_removed"] == 3
    assert last["images_deleted"] == 1
