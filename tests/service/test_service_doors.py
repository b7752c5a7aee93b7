"""Every door is the same engine: one image through the library, the CLI's --json and POST /v1/identify gives the
same faces, names and scores (one JSON form of one result type)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def test_library_cli_and_service_answer_alike(client, service, admin_headers, reader_headers, people_photos):
    import facelens
    from facelens.gallery import open_gallery

    settings = service[1]
    names = sorted(people_photos)[:3]
    with open_gallery(settings.gallery, collection="doors") as gallery:
        for name in names:
            assert facelens.enroll(gallery, name, people_photos[name][:3]).added
    probe = people_photos[names[1]][5]

    with open_gallery(settings.gallery, collection="doors") as gallery:
        library = facelens.identify(str(probe), gallery).to_dict()["faces"]
    exe = shutil.which("facelens") or str(Path(sys.executable).parent / "facelens")
    proc = subprocess.run([exe, "identify", "-g", settings.gallery, "-c", "doors", "--json", str(probe)],
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    cli = json.loads(proc.stdout)["faces"]
    response = client.post("/v1/identify?gallery=doors", headers=reader_headers,
                           files={"image": (probe.name, probe.read_bytes(), "image/jpeg")})
    assert response.status_code == 200, response.text
    api = response.json()["faces"]

    assert library and library[0]["identity"]["name"] == names[1]
    for door in (cli, api):
        assert [f["box"] for f in door] == [f["box"] for f in library]
        assert [f["identity"]["name"] for f in door] == [f["identity"]["name"] for f in library]
        assert [f["identity"]["score"] for f in door] == [f["identity"]["score"] for f in library]
        assert [f["identity"]["threshold"] for f in door] == [f["identity"]["threshold"] for f in library]
