"""The clustering endpoints against the real app: cluster, list faces, name, split, remove, not, different, merge;
keys and bad requests refused."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="module")
def library(service, people_photos, tmp_path_factory):
    """A collection whose photo library holds 2 people x 4 LFW photos, clustered once (as the CLI would)."""
    from facelens.cluster import cluster_photos
    from facelens.gallery import open_gallery

    folder = tmp_path_factory.mktemp("cluster-photos")
    for person in sorted(people_photos)[:2]:
        for path in people_photos[person][:4]:
            shutil.copy(path, folder / path.name)
    settings = service[1]
    with open_gallery(settings.gallery, collection="photos") as gallery:
        cluster_photos(gallery, [folder], workers=1)
    return "photos"


def test_cluster_endpoints(client, admin_headers, reader_headers, library):
    base = f"/v1/galleries/{library}/cluster"
    faces = client.get(f"{base}/faces", headers=reader_headers).json()["faces"]
    clusters = sorted({f["person"] for f in faces if f["person"]})
    assert len(faces) >= 8 and clusters and all("/" not in f["path"] for f in faces)

    named = client.post(f"{base}/name", headers=admin_headers, json={"person": clusters[0], "name": "Ada"})
    assert named.status_code == 200, named.text
    ada = [f for f in client.get(f"{base}/faces", headers=reader_headers, params={"person": "Ada"}).json()["faces"]]
    assert len(ada) >= 2

    split = client.post(f"{base}/split", headers=admin_headers,
                        json={"person": "Ada", "detections": [ada[0]["detection"]]})
    assert split.status_code == 200, split.text
    other = split.json()["result"]
    assert client.post(f"{base}/merge", headers=admin_headers,
                       json={"source": other, "target": "Ada"}).status_code == 400  # split marked them different
    removed = client.post(f"{base}/remove", headers=admin_headers, json={"detections": [ada[1]["detection"]]})
    assert removed.status_code == 200 and removed.json()["result"] == 1

    run = client.post(base, headers=admin_headers, json={"method": "hdbscan"})
    assert run.status_code == 200, run.text
    assert {"attached", "clustered", "new_people", "unclustered"} <= set(run.json())
    after = {f["detection"]: f for f in client.get(f"{base}/faces", headers=reader_headers).json()["faces"]}
    assert after[ada[0]["detection"]]["person"] == other and after[ada[1]["detection"]]["state"] == "removed"

    assert client.post(base, headers=reader_headers, json={}).status_code == 403
    assert client.post(base, headers=admin_headers, json={"method": "kmeans"}).status_code == 400
    assert client.post(f"{base}/not", headers=admin_headers,
                       json={"person": "nobody", "detections": [1]}).status_code == 404


def test_face_thumbnail(client, reader_headers, library):
    from facelens.io.image import decode_image

    base = f"/v1/galleries/{library}/cluster/faces"
    face = client.get(base, headers=reader_headers).json()["faces"][0]
    response = client.get(f"{base}/{face['detection']}/thumbnail", headers=reader_headers)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert decode_image(response.content).shape == (96, 96, 3)
    assert client.get(f"{base}/999999/thumbnail", headers=reader_headers).status_code == 404
    assert client.get(f"{base}/{face['detection']}/thumbnail").status_code == 401


def test_console_people_page_names_a_cluster(live_server, service, library, client, reader_headers):
    from helpers import chromium_page

    with chromium_page() as page:
        page.goto(live_server + "/")
        page.fill("#key", service[2])  # admin key
        page.click("#signin")
        page.wait_for_selector("#app:not([hidden])")
        page.select_option("#gallery", library)
        page.wait_for_selector("#clusters .cluster[data-person^='unknown-']", timeout=60_000)
        cluster = page.get_attribute("#clusters .cluster[data-person^='unknown-']", "data-person")
        block = f"#clusters .cluster[data-person='{cluster}']"
        page.wait_for_function(f"[...document.querySelectorAll(\"{block} img\")].every(i => i.naturalWidth === 96)",
                               timeout=60_000)
        page.fill(f"{block} .cluster-name", "Grace")
        page.click(f"{block} .name-cluster")
        page.wait_for_selector("#clusters .cluster[data-person='Grace']", timeout=60_000)
    people = client.get(f"/v1/galleries/{library}/people", headers=reader_headers).json()["people"]
    assert "Grace" in {p["name"] for p in people} and cluster not in {p["name"] for p in people}
