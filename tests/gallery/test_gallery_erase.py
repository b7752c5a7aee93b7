"""Erasure: after ``erase`` (library, CLI) no file of the gallery folder holds the person's vector bytes (the
database, its free pages, the WAL, the index files), the others are still found, and the audit log keeps only
the fact. ``remove`` alone leaves the bytes behind (what this guards against)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import facelens
from facelens.gallery import open_gallery
from facelens.gallery.local import LocalGallery
from facelens.service.audit import AuditLog
from helpers import need_data

EXE = shutil.which("facelens") or str(Path(sys.executable).parent / "facelens")


def _enrolled(folder: Path) -> tuple[LocalGallery, Path]:
    root = need_data("identity", "face_recognition", "examples", "knn_examples", "train")
    store = LocalGallery(folder, exact_limit=2)  # small enough that the index is an HNSW file on disk
    for person in ("biden", "obama", "rose_leslie"):
        assert facelens.enroll(store, person, sorted((root / person).iterdir())).added
    return store, root


def _vector_bytes(store, name: str) -> list[bytes]:
    return [np.asarray(f.embedding, np.float32).tobytes() for f in store.faces(name, with_embeddings=True)]


def _files_holding(folder: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for needle in needles:
            # the whole vector, and its first 64 bytes alone (a prefix is already a fingerprint of the face)
            if needle in data or needle[:64] in data:
                found.append(path.name)
                break
    return found


def test_remove_leaves_bytes_erase_does_not(tmp_path):
    store, _ = _enrolled(tmp_path / "g")
    store.index_kind()  # the index is built and saved
    obama, biden = _vector_bytes(store, "obama"), _vector_bytes(store, "biden")
    assert _files_holding(tmp_path / "g", obama)  # the search itself finds them while enrolled
    store.remove("biden")
    store.close()
    assert _files_holding(tmp_path / "g", biden), "remove alone is expected to leave deleted bytes behind"

    store = LocalGallery(tmp_path / "g", exact_limit=2)
    result = store.erase("obama")
    assert result["faces_removed"] == 2 and result["vacuumed"]
    store.close()
    assert _files_holding(tmp_path / "g", obama) == []
    assert _files_holding(tmp_path / "g", biden) == []  # the earlier removal's leftovers went with the vacuum
    with open_gallery(tmp_path / "g", create=False) as again:
        assert [p.name for p in again.people()] == ["rose_leslie"]
        rose = np.frombuffer(_vector_bytes(again, "rose_leslie")[0], np.float32)
        assert again.search(rose[None], 1)[0][0].name == "rose_leslie"
        with pytest.raises(facelens.errors.NotFoundError):
            again.erase("obama")


def test_cli_erase_scrubs_the_audit_log_and_probe_images(tmp_path):
    folder = tmp_path / "g"
    store, root = _enrolled(folder)
    vectors = _vector_bytes(store, "obama")
    store.close()
    probes = tmp_path / "probes"
    audit = AuditLog(folder / "audit.jsonl", probes)
    photo = (root / "obama" / "obama.jpg").read_bytes()
    kept = audit.keep_image(photo, "jpg")
    other = audit.keep_image((root / "biden" / "biden.jpg").read_bytes(), "jpg")
    audit.record("k1", "enroll", "default", "obama", added=2)
    audit.record("k1", "identify", "default", faces=1, names=["obama"], image=kept)
    audit.record("k1", "identify", "default", faces=1, names=["biden"], image=other)
    run = subprocess.run([EXE, "gallery", "erase", "-g", str(folder), "obama", "--audit-images", str(probes), "--json"],
                         capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["faces_removed"] == 2 and result["audit"] == {"records_scrubbed": 2, "images_deleted": 1}
    assert _files_holding(folder, vectors) == []
    text = (folder / "audit.jsonl").read_text()
    assert "obama" not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert entries[-1]["action"] == "erase_person" and entries[-1]["person"] is None
    assert entries[-1]["faces_removed"] == 2
    assert not (probes / kept).exists() and (probes / other).exists()
    assert not any(photo in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    run = subprocess.run([EXE, "gallery", "erase", "-g", str(folder), "obama"], capture_output=True, text=True,
                         timeout=120, env=os.environ.copy())
    assert run.returncode == 2 and "obama" in run.stderr


def test_erase_on_every_backend(gallery_at):
    root = need_data("identity", "face_recognition", "examples", "knn_examples", "train")
    store = open_gallery(**gallery_at("erase"))
    for person in ("biden", "obama"):
        facelens.enroll(store, person, sorted((root / person).iterdir()))
    probe = np.frombuffer(_vector_bytes(store, "obama")[0], np.float32)
    assert store.search(probe[None], 1)[0][0].name == "obama"
    result = store.erase("obama")
    assert result["faces_removed"] == 2 and result["vacuumed"]
    assert [p.name for p in store.people()] == ["biden"] and store.face_count() == 2
    assert all(c.name != "obama" for c in store.search(probe[None], 3)[0])
    store.close()
