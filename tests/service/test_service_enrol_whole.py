"""An enrol of N photos through the API is N faces or none, whatever happens: a SIGKILL of the server in the middle
of many multi-photo enrols, or a delete of the same person racing the enrol. Acknowledged writes are kept."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

PHOTOS = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _files(photos: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("image", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]


def test_sigkill_during_multi_photo_enrols_leaves_no_partial_person(tmp_path, people_photos):
    from facelens.gallery import open_gallery
    from facelens.service import KeyStore

    everyone = [(name, photos[:PHOTOS]) for name, photos in sorted(people_photos.items()) if len(photos) >= PHOTOS]
    everyone = everyone[:8]
    assert len(everyone) >= 4
    import facelens

    with open_gallery(str(tmp_path / "scratch")) as scratch:  # how many of each person's photos enrol at all
        usable = {name: len(facelens.enroll(scratch, name, photos).added) for name, photos in everyone}
    gallery = tmp_path / "people"
    port = _free_port()
    exe = shutil.which("facelens") or str(Path(sys.executable).parent / "facelens")
    env = {**os.environ, "FACELENS_GALLERY": str(gallery), "FACELENS_RATE_LIMIT": "0", "FACELENS_WORKERS": "4"}
    process = subprocess.Popen([exe, "serve", "--port", str(port), "--log-level", "warning"], env=env,
                               stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    acknowledged: dict[str, list[int]] = {}
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stderr.read()
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "service never became ready"
            time.sleep(0.3)
        token = KeyStore(gallery / "keys.db").create("admin")[1]
        first_answer = threading.Event()

        def enrol(name: str, photos: list[Path]) -> None:
            try:
                response = httpx.post(f"{url}/v1/galleries/default/people/{name}/faces", files=_files(photos),
                                      headers={"X-API-Key": token}, timeout=120)
            except httpx.TransportError:
                return  # killed before it answered: nothing was acknowledged
            if response.status_code == 200:
                acknowledged[name] = response.json()["added"]
            first_answer.set()

        threads = [threading.Thread(target=enrol, args=person) for person in everyone]
        for thread in threads:
            thread.start()
        assert first_answer.wait(120), "no enrol answered"
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        for thread in threads:
            thread.join(60)
    finally:
        if process.poll() is None:
            process.kill()
    assert acknowledged and len(acknowledged) < len(everyone), "the kill did not land in the middle of the enrols"
    with open_gallery(str(gallery), collection="default") as store:
        counts = {p.name: p.face_count for p in store.people()}
        ids = {f.face_id for f in store.faces()}
    for name, _ in everyone:
        assert counts.get(name, 0) in (0, usable[name]), (counts, usable)
    for name, added in acknowledged.items():
        assert counts[name] == usable[name] == len(added) and set(added) <= ids


def test_enrol_racing_a_delete_of_the_same_person(client, admin_headers, reader_headers, people_photos):
    name, photos = min(people_photos.items())
    photos = photos[:3]
    person = f"/v1/galleries/default/people/racer-{name}"
    for _ in range(15):
        client.delete(person, headers=admin_headers)
        answers: dict[str, httpx.Response] = {}
        enrol = threading.Thread(target=lambda: answers.__setitem__(
            "enrol", client.post(person + "/faces", files=_files(photos), headers=admin_headers)))
        delete = threading.Thread(target=lambda: answers.__setitem__(
            "delete", client.delete(person, headers=admin_headers)))
        enrol.start()
        time.sleep(0.05)
        delete.start()
        enrol.join(60)
        delete.join(60)
        assert answers["enrol"].status_code == 200, answers["enrol"].text
        added = answers["enrol"].json()["added"]
        assert len(added) == len(photos)
        now = client.get(person, headers=reader_headers)
        removed = answers["delete"].json().get("faces_removed", 0) if answers["delete"].status_code == 200 else 0
        if now.status_code == 404:  # the delete came after the enrol: it removed the whole person
            assert removed == len(photos), answers["delete"].text
        else:  # the enrol came after the delete: the person is whole, with exactly the faces it answered
            assert now.status_code == 200 and removed == 0, (now.text, answers["delete"].text)
            assert sorted(f["face_id"] for f in now.json()["faces"]) == sorted(added)
