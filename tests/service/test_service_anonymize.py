"""``POST /v1/anonymize``: faces covered in the returned JPEG (no metadata), a gallery's people kept visible."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from facelens.service import KeyStore, Settings, create_app
from helpers import need_data


def test_anonymize_endpoint(tmp_path, pipeline):
    from fastapi.testclient import TestClient

    import facelens

    examples = need_data("identity", "face_recognition", "examples")
    settings = Settings(gallery=str(tmp_path / "g"), preload=False, rate_limit=0)
    app = create_app(settings)
    keys = KeyStore(settings.keys_location)
    admin = {"Authorization": f"Bearer {keys.create('admin')[1]}"}
    reader = {"X-API-Key": keys.create("identify")[1]}
    photo = (examples / "two_people.jpg").read_bytes()
    original = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))
    with TestClient(app) as client:
        files = [("image", (p, (examples / p).read_bytes(), "image/jpeg")) for p in ("obama.jpg", "obama2.jpg")]
        assert client.post("/v1/galleries/default/people/obama/faces", headers=admin, files=files).status_code == 200
        response = client.post("/v1/anonymize?method=pixelate", headers=reader,
                               files={"image": ("two.jpg", photo, "image/jpeg")})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["x-faces"] == "2" and response.headers["x-covered"] == "2"
        out = Image.open(io.BytesIO(response.content))
        assert not out.getexif() and out.size == (original.shape[1], original.shape[0])
        assert pipeline.detector.detect(np.asarray(out.convert("RGB"))) == []
        response = client.post("/v1/anonymize?method=solid&keep=keep&gallery=default", headers=reader,
                               files={"image": ("two.jpg", photo, "image/jpeg")})
        assert response.status_code == 200, response.text
        assert response.headers["x-covered"] == "1" and json.loads(response.headers["x-kept"]) == ["obama"]
        kept = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
        names = facelens.identify(original, facelens.open_gallery(tmp_path / "g", create=False)).faces
        for name, box in zip(names.name, names.box):
            x1, y1, x2, y2 = box.astype(int)
            dark = float(kept[y1:y2, x1:x2].mean())
            assert (dark > 40) if name == "obama" else (dark < 10), (name, dark)
        for bad in ("method=swirl", "method=replace", "strength=0", "keep=maybe"):
            response = client.post(f"/v1/anonymize?{bad}", headers=reader,
                                   files={"image": ("two.jpg", photo, "image/jpeg")})
            assert response.status_code in (400, 422), (bad, response.status_code)
        response = client.post("/v1/anonymize?keep=keep&gallery=nope", headers=reader,
                               files={"image": ("two.jpg", photo, "image/jpeg")})
        assert response.status_code == 404
        assert client.post("/v1/anonymize", files={"image": ("two.jpg", photo, "image/jpeg")}).status_code == 401
