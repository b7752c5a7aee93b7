"""``facelens cluster`` run for real (the console script in a subprocess): JSON lines per face and a summary,
corrections, exit codes 0/1/2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

EXE = shutil.which("facelens") or str(Path(sys.executable).parent / "facelens")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300, env=os.environ.copy())


def test_cluster_cli_json_corrections_and_exit_codes(library_photos, tmp_path):
    source, truth = library_photos
    folder = tmp_path / "photos"
    folder.mkdir()
    from collections import Counter

    counts = Counter(truth.values())
    person = next(who for who in sorted(counts) if counts[who] > 1)
    mine = sorted(p for p, who in truth.items() if who == person)[:4]
    singles = sorted(p for p, who in truth.items() if counts[who] == 1)[:3]
    for path in mine + singles:
        shutil.copy(path, folder / Path(path).name)
    gallery = str(tmp_path / "g")
    proc = run("cluster", str(folder), "-g", gallery, "--json", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    faces, summary = lines[:-1], lines[-1]["summary"]
    assert summary["files"] == summary["processed"] == 7 and summary["faces_found"] == len(faces) >= 7
    assert {"path", "box", "detection", "person", "cluster", "score"} <= set(faces[0])
    clustered = [f for f in faces if f["person"]]
    assert clustered and all(f["cluster"] for f in clustered)
    cluster = clustered[0]["person"]

    named = run("cluster", "name", cluster, "Someone", "-g", gallery, "--json")
    assert named.returncode == 0, named.stderr
    again = run("cluster", str(folder), "-g", gallery, "--json")
    lines = [json.loads(line) for line in again.stdout.splitlines()]
    assert lines[-1]["summary"]["processed"] == 0
    assert {f["detection"] for f in lines[:-1] if f["person"] == "Someone"} == \
        {f["detection"] for f in clustered if f["person"] == cluster}

    (folder / "broken.jpg").write_text("not an image")
    broken = run("cluster", str(folder), "-g", gallery, "--json")
    assert broken.returncode == 1 and "broken.jpg" in broken.stderr
    assert json.loads(broken.stdout.splitlines()[-1])["summary"]["failed"][0]["path"].endswith("broken.jpg")
    assert run("cluster", str(folder), "-g", gallery, "--method", "kmeans").returncode == 2
    assert run("cluster", str(folder), "-g", str(tmp_path / "new"), "--embedder", "nope").returncode == 2
    other = run("cluster", str(folder), "-g", gallery, "--embedder", "dlib_onnx")  # the gallery keeps its model
    assert other.returncode == 2 and "model" in other.stderr.lower()
    assert run("cluster", "merge", "Someone", "nobody", "-g", gallery).returncode == 2
