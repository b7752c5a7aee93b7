"""Every endpoint against the real app (real models, real folder gallery): success, missing/wrong key, wrong
scope, oversized and non-image uploads, unknown gallery/person/face, and that errors never carry a traceback."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from facelens.embed import DEFAULT_MODEL_ID

IMAGE_ENDPOINTS = ["/v1/detect", "/v1/identify", "/v1/analyze"]


def _files(path, field="image"):
    return {field: (path.name, path.read_bytes(), "image/jpeg")}


def _error(response, status, code=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]["message"]


@pytest.fixture(scope="module")
def ada(people_photos):
    """A person (LFW) with photos to enrol and another to probe with."""
    name = min(people_photos)
    return name, people_photos[name]


@pytest.fixture(scope="module")
def enrolled(client, admin_headers, ada):
    name, photos = ada
    client.post("/v1/galleries", json={"name": "api"}, headers=admin_headers)
    response = client.post(f"/v1/galleries/api/people/{name}/faces", headers=admin_headers,
                           files=[("image", (p.name, p.read_bytes(), "image/jpeg")) for p in photos[:2]],
                           data={"metadata": json.dumps({"team": "blue"})})
    assert response.status_code == 200, response.text
    return response.json()


def test_health_needs_no_key(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_openapi_lists_every_endpoint(client):
    spec = client.get("/openapi.json").json()
    for path in ["/v1/detect", "/v1/verify", "/v1/identify", "/v1/analyze", "/v1/galleries",
                 "/v1/galleries/{gallery}/people/{name}/faces", "/v1/galleries/{gallery}/faces/{face_id}"]:
        assert path in spec["paths"]
    body = spec["paths"]["/v1/verify"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])


@pytest.mark.parametrize("path", IMAGE_ENDPOINTS + ["/v1/verify"])
def test_missing_and_wrong_key(client, path, ada):
    photo = ada[1][0]
    _error(client.post(path, files=_files(photo)), 401, "missing_key")
    _error(client.post(path, files=_files(photo), headers={"X-API-Key": "fl_000000000000_nope"}), 401, "invalid_key")
    _error(client.post(path, files=_files(photo), headers={"Authorization": "Bearer garbage"}), 401, "invalid_key")


def test_detect_multipart_json_and_raw(client, reader_headers, ada):
    photo = ada[1][0]
    multipart = client.post("/v1/detect", files=_files(photo), headers=reader_headers).json()
    as_json = client.post("/v1/detect", headers=reader_headers,
                          json={"image": base64.b64encode(photo.read_bytes()).decode()}).json()
    data_url = "data:image/jpeg;base64," + base64.b64encode(photo.read_bytes()).decode()
    raw = client.post("/v1/detect", headers={**reader_headers, "Content-Type": "image/jpeg"},
                      content=photo.read_bytes()).json()
    assert multipart["width"] == 250 and len(multipart["faces"]) == 1
    assert multipart == as_json == raw
    assert client.post("/v1/detect", headers=reader_headers, json={"image": data_url}).json() == multipart
    face = multipart["faces"][0]
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= 250 and 0 <= y1 < y2 <= 250 and len(face["landmarks"]) == 5


def test_detect_with_liveness(client, reader_headers, ada):
    result = client.post("/v1/detect?liveness=true", files=_files(ada[1][0]), headers=reader_headers).json()
    liveness = result["faces"][0]["liveness"]
    assert 0.0 <= liveness["score"] <= 1.0 and isinstance(liveness["is_live"], bool)


def test_verify_same_and_different_people(client, reader_headers, people_photos):
    names = sorted(people_photos)
    a, b = people_photos[names[0]], people_photos[names[1]]
    same = client.post("/v1/verify", headers=reader_headers, files={
        "image_a": (a[0].name, a[0].read_bytes(), "image/jpeg"), "image_b": (a[1].name, a[1].read_bytes(), "image/jpeg")})
    other = client.post("/v1/verify", headers=reader_headers, json={
        "image_a": base64.b64encode(a[0].read_bytes()).decode(), "image_b": base64.b64encode(b[0].read_bytes()).decode()})
    assert same.status_code == other.status_code == 200
    assert same.json()["similarity"] > other.json()["similarity"]
    assert same.json()["threshold"] == other.json()["threshold"]
    assert other.json()["is_match"] is False
    message = _error(client.post("/v1/verify", headers=reader_headers, files={"image_a": _files(a[0])["image"]}), 422)
    assert "image_b" in message
    pair = {"image_a": (a[0].name, a[0].read_bytes(), "image/jpeg"), "image_b": (a[1].name, a[1].read_bytes(), "image/jpeg")}
    dlib = client.post("/v1/verify?embedder=dlib_onnx", headers=reader_headers, files=pair).json()
    assert dlib["model_id"] == "dlib_resnet_v1" != same.json()["model_id"] and dlib["threshold"] > 0.9
    assert client.post("/v1/verify?embedder=nope", headers=reader_headers, files=pair).status_code == 422


def test_verify_no_face_is_422(client, reader_headers, ada):
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank, format="PNG")
    files = {"image_a": ("blank.png", blank.getvalue(), "image/png"),
             "image_b": (ada[1][0].name, ada[1][0].read_bytes(), "image/jpeg")}
    _error(client.post("/v1/verify", headers=reader_headers, files=files), 422, "no_face")


def test_analyze(client, reader_headers, ada):
    result = client.post("/v1/analyze", files=_files(ada[1][0]), headers=reader_headers).json()
    face = result["faces"][0]
    assert face["expression"]["label"] and face["gender"]["label"] in ("male", "female")
    assert 0 < face["age"]["years"] < 100
    assert 0 <= face["quality"]["score"] <= 1 and "path" not in result


def test_enroll_then_identify(client, admin_headers, reader_headers, enrolled, ada, people_photos):
    name, photos = ada
    assert enrolled["name"] == name and len(enrolled["added"]) == 2 and enrolled["skipped"] == []
    result = client.post("/v1/identify?gallery=api", files=_files(photos[5]), headers=reader_headers).json()
    # largest first; the photo also shows a blurred face in the background (CenterFace finds it, HOG does not)
    assert result["gallery"] == "api" and len(result["faces"]) == 2
    assert result["faces"][1]["identity"]["name"] is None
    face = result["faces"][0]
    assert face["identity"]["name"] == name and face["identity"]["score"] >= face["identity"]["threshold"]
    gated = client.post("/v1/identify?gallery=api&min_quality=0.999", files=_files(photos[5]),
                        headers=reader_headers).json()["faces"][0]
    assert gated["identity"]["name"] is None and gated["quality"]["score"] < 0.999  # below the quality gate: unknown
    stranger = people_photos[sorted(people_photos)[3]][0]
    other = client.post("/v1/identify?gallery=api&liveness=true", files=_files(stranger),
                        headers=reader_headers).json()["faces"][0]
    assert other["identity"]["name"] is None and other["identity"]["label"] == "unknown" and "liveness" in other
    # the same image again is skipped with a reason, not enrolled twice
    again = client.post(f"/v1/galleries/api/people/{name}/faces", headers=admin_headers,
                        json={"images": [base64.b64encode(photos[0].read_bytes()).decode()]}).json()
    assert again["added"] == [] and "already enrolled" in again["skipped"][0]["reason"]


def test_people_crud(client, admin_headers, reader_headers, enrolled, ada):
    name = ada[0]
    listing = client.get("/v1/galleries/api/people", headers=reader_headers).json()
    assert [p["name"] for p in listing["people"]] == [name] and listing["people"][0]["metadata"] == {"team": "blue"}
    created = client.post("/v1/galleries/api/people", json={"name": "grace", "metadata": {"site": "paris"}},
                          headers=admin_headers)
    assert created.status_code == 201 and created.json()["face_count"] == 0
    _error(client.post("/v1/galleries/api/people", json={"name": "grace"}, headers=admin_headers), 409, "exists")
    _error(client.post("/v1/galleries/api/people", json={"name": " "}, headers=admin_headers), 400)
    patched = client.patch("/v1/galleries/api/people/grace", json={"metadata": {"site": "lyon"}, "name": "grace h"},
                           headers=admin_headers).json()
    assert patched == {**patched, "name": "grace h", "metadata": {"site": "lyon"}}
    person = client.get(f"/v1/galleries/api/people/{name}", headers=reader_headers).json()
    assert person["face_count"] == 2 and [f["face_id"] for f in person["faces"]] == enrolled["added"]
    assert client.delete("/v1/galleries/api/people/grace h", headers=admin_headers).json()["faces_removed"] == 0
    _error(client.get("/v1/galleries/api/people/grace h", headers=reader_headers), 404, "not_found")


def test_remove_face_keeps_person(client, admin_headers, reader_headers, ada, people_photos):
    client.post("/v1/galleries", json={"name": "faces"}, headers=admin_headers)
    photo = people_photos[ada[0]][3]
    added = client.post("/v1/galleries/faces/people/solo/faces", files=_files(photo), headers=admin_headers).json()
    face_id = added["added"][0]
    assert client.delete(f"/v1/galleries/faces/faces/{face_id}", headers=admin_headers).json()["removed"]
    assert client.get("/v1/galleries/faces/people/solo", headers=reader_headers).json()["face_count"] == 0
    _error(client.delete(f"/v1/galleries/faces/faces/{face_id}", headers=admin_headers), 404, "not_found")


def test_names_with_a_slash_can_be_managed(client, admin_headers, reader_headers, ada, people_photos):
    """A name the gallery accepts ("A/B Team") must be reachable by URL too, percent-encoded or not."""
    client.post("/v1/galleries", json={"name": "slashes"}, headers=admin_headers)
    photo = people_photos[ada[0]][2]
    added = client.post("/v1/galleries/slashes/people/ops%2Fnight/faces", files=_files(photo), headers=admin_headers)
    assert added.status_code == 200 and added.json()["name"] == "ops/night" and len(added.json()["added"]) == 1
    person = client.get("/v1/galleries/slashes/people/ops/night", headers=reader_headers).json()
    assert person["name"] == "ops/night" and person["face_count"] == 1
    patched = client.patch("/v1/galleries/slashes/people/ops%2Fnight", json={"metadata": {"shift": "night"}},
                           headers=admin_headers).json()
    assert patched["metadata"] == {"shift": "night"}
    assert client.delete("/v1/galleries/slashes/people/ops/night", headers=admin_headers).json()["faces_removed"] == 1
    _error(client.get("/v1/galleries/slashes/people/ops/night", headers=reader_headers), 404, "not_found")


def test_galleries_create_list_delete(client, admin_headers, reader_headers):
    assert client.post("/v1/galleries", json={"name": "temp"}, headers=admin_headers).status_code == 201
    _error(client.post("/v1/galleries", json={"name": "temp"}, headers=admin_headers), 409, "exists")
    _error(client.post("/v1/galleries", json={"name": "bad/name"}, headers=admin_headers), 400)
    names = [g["name"] for g in client.get("/v1/galleries", headers=reader_headers).json()["galleries"]]
    assert {"default", "temp"} <= set(names)
    stats = client.get("/v1/galleries/temp", headers=reader_headers).json()
    assert stats["people"] == 0 and stats["model_id"] == DEFAULT_MODEL_ID
    assert client.delete("/v1/galleries/temp", headers=admin_headers).json() == {"name": "temp", "faces_removed": 0}
    _error(client.get("/v1/galleries/temp", headers=reader_headers), 404, "not_found")
    _error(client.delete("/v1/galleries/temp", headers=admin_headers), 404, "not_found")


@pytest.mark.parametrize("method, path", [
    ("get", "/v1/galleries/nowhere"),
    ("get", "/v1/galleries/nowhere/people"),
    ("get", "/v1/galleries/api/people/nobody"),
    ("delete", "/v1/galleries/api/people/nobody"),
    ("patch", "/v1/galleries/api/people/nobody"),
])
def test_unknown_gallery_or_person_is_404(client, admin_headers, enrolled, method, path):
    kwargs = {"json": {"metadata": {}}} if method == "patch" else {}
    _error(getattr(client, method)(path, headers=admin_headers, **kwargs), 404, "not_found")


def test_identify_unknown_gallery_is_404(client, reader_headers, ada):
    _error(client.post("/v1/identify?gallery=nowhere", files=_files(ada[1][0]), headers=reader_headers), 404)


@pytest.mark.parametrize("method, path, kwargs", [
    ("post", "/v1/galleries", {"json": {"name": "x"}}),
    ("delete", "/v1/galleries/api", {}),
    ("post", "/v1/galleries/api/people", {"json": {"name": "x"}}),
    ("patch", "/v1/galleries/api/people/x", {"json": {"metadata": {}}}),
    ("delete", "/v1/galleries/api/people/x", {}),
    ("post", "/v1/galleries/api/people/x/faces", {"json": {"images": []}}),
    ("delete", "/v1/galleries/api/faces/1", {}),
])
def test_identify_scope_cannot_change_galleries(client, reader_headers, enrolled, method, path, kwargs):
    _error(getattr(client, method)(path, headers=reader_headers, **kwargs), 403, "forbidden")


def test_reads_need_a_key(client):
    for path in ["/v1/galleries", "/v1/galleries/api", "/v1/galleries/api/people", "/v1/whoami"]:
        _error(client.get(path), 401, "missing_key")


def test_whoami(client, reader_headers, admin_headers):
    assert client.get("/v1/whoami", headers=reader_headers).json()["scope"] == "identify"
    assert client.get("/v1/whoami", headers=admin_headers).json()["name"] == "tests-admin"


@pytest.mark.parametrize("path", IMAGE_ENDPOINTS)
def test_oversized_upload_is_413(client, reader_headers, path):
    big = b"\xff\xd8\xff" + bytes(2_100_000)
    _error(client.post(path, files={"image": ("big.jpg", big, "image/jpeg")}, headers=reader_headers), 413, "too_large")

    def chunks():  # no Content-Length: refused while streaming
        for _ in range(30):
            yield bytes(100_000)

    _error(client.post(path, content=chunks(), headers={**reader_headers, "Content-Type": "image/jpeg"}), 413)


@pytest.mark.parametrize("path", IMAGE_ENDPOINTS)
def test_non_image_is_415_whatever_the_header_says(client, reader_headers, path):
    fake = b"%PDF-1.4 this is not a picture" * 10
    _error(client.post(path, files={"image": ("x.jpg", fake, "image/jpeg")}, headers=reader_headers), 415,
           "unsupported_media_type")
    _error(client.post(path, json={"image": base64.b64encode(fake).decode()}, headers=reader_headers), 415)
    _error(client.post(path, content=b"hello", headers={**reader_headers, "Content-Type": "text/plain"}), 415)


def test_enroll_non_image_and_oversize(client, admin_headers):
    _error(client.post("/v1/galleries/default/people/x/faces", headers=admin_headers,
                       files={"image": ("a.png", b"GIF? no" * 20, "image/png")}), 415)
    _error(client.post("/v1/galleries/default/people/x/faces", headers=admin_headers,
                       files={"image": ("a.png", b"\x89PNG\r\n\x1a\n" + bytes(2_100_000), "image/png")}), 413)


def test_pixel_limit_and_corrupt_image_are_422(client, reader_headers):
    huge = io.BytesIO()
    Image.new("L", (3000, 2000)).save(huge, format="PNG")  # 6 Mpixel in a few KB: refused from its header
    assert len(huge.getvalue()) < 2_000_000
    message = _error(client.post("/v1/detect", files={"image": ("h.png", huge.getvalue(), "image/png")},
                                 headers=reader_headers), 422, "bad_image")
    assert "exceeds the limit" in message
    truncated = (np.arange(64) % 7).astype(np.uint8).tobytes()
    message = _error(client.post("/v1/detect", files={"image": ("t.jpg", b"\xff\xd8\xff\xe0" + truncated, "image/jpeg")},
                                 headers=reader_headers), 422, "bad_image")
    assert message.startswith("t.jpg: ")  # named as the client named it, not as "<68 bytes>"


def test_bad_json_and_bad_base64(client, reader_headers):
    _error(client.post("/v1/detect", content=b"{nope", headers={**reader_headers, "Content-Type": "application/json"}),
           400)
    _error(client.post("/v1/detect", json={"image": "***"}, headers=reader_headers), 422)
    _error(client.post("/v1/detect", json={"picture": "abc"}, headers=reader_headers), 422, "missing_image")


def test_audit_log_records_who_what_where(client, service, enrolled, ada):
    lines = [json.loads(line) for line in service[1].audit_path.read_text().splitlines()]
    enrol = [e for e in lines if e["action"] == "enroll" and e["person"] == ada[0]]
    assert enrol and enrol[0]["gallery"] == "api" and enrol[0]["who"] and enrol[0]["time"] > 0
    identify = [e for e in lines if e["action"] == "identify"]
    assert identify and all("image" not in e for e in identify)  # probe images are not kept by default


def test_console_is_served_without_a_key(client):
    assert client.get("/", follow_redirects=False).headers["location"] == "/console/"
    page = client.get("/console/")
    assert page.status_code == 200 and "facelens console" in page.text
    assert client.get("/console/app.js").status_code == 200


def test_enroll_reports_each_skipped_file_by_name(client, admin_headers, reader_headers, people_photos):
    blank = io.BytesIO()
    Image.new("RGB", (120, 120), (90, 90, 90)).save(blank, format="PNG")
    good = people_photos[sorted(people_photos)[4]][0]
    files = [("image", ("blank.png", blank.getvalue(), "image/png")),
             ("image", (good.name, good.read_bytes(), "image/jpeg")),
             ("image", ("broken.jpg", b"\xff\xd8\xff\xe0" + bytes(50), "image/jpeg"))]
    result = client.post("/v1/galleries/default/people/mixed/faces", files=files, headers=admin_headers).json()
    assert len(result["added"]) == 1
    reasons = {s["source"]: s["reason"] for s in result["skipped"]}
    assert set(reasons) == {"blank.png", "broken.jpg"} and "no face" in reasons["blank.png"]
    assert not reasons["blank.png"].startswith("<")
    assert client.get("/v1/galleries/default/people/mixed", headers=reader_headers).json()["face_count"] == 1


def test_analyze_chooses_heads_like_the_cli(client, reader_headers, ada):
    only_quality = client.post("/v1/analyze?heads=quality", files=_files(ada[1][0]), headers=reader_headers)
    assert only_quality.status_code == 200, only_quality.text
    face = only_quality.json()["faces"][0]
    assert "quality" in face and not {"expression", "age", "gender"} & set(face)
    _error(client.post("/v1/analyze?heads=quality,mood", files=_files(ada[1][0]), headers=reader_headers),
           422, "invalid_request")
    # this server has no heads folder: a custom head is unknown (404), never a path on the server
    _error(client.post("/v1/analyze?head=smile", files=_files(ada[1][0]), headers=reader_headers), 404, "not_found")


def test_analyze_takes_the_expression_model_like_the_cli(client, reader_headers, ada):
    chosen = client.post("/v1/analyze?heads=expression&expression_model=mini_xception", files=_files(ada[1][0]),
                         headers=reader_headers)  # fmt: skip
    assert chosen.status_code == 200, chosen.text
    assert len(chosen.json()["faces"][0]["expression"]["probabilities"]) == 7  # FER2013's classes (the default has 8)
    _error(client.post("/v1/analyze?expression_model=magic", files=_files(ada[1][0]), headers=reader_headers),
           422, "invalid_request")
