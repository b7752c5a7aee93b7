"""The facelens command, run for real as users run it (a subprocess of the installed console script)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import need_data

EXE = shutil.which("facelens") or str(Path(sys.executable).parent / "facelens")


def run(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300, env=os.environ.copy())
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def examples():
    return need_data("identity", "face_recognition", "examples")


def test_embed_json_schema_order_and_bad_inputs(examples, tmp_path):
    (tmp_path / "text.jpg").write_text("hello")
    inputs = [str(examples / "obama.jpg"), str(tmp_path / "missing.jpg"), str(tmp_path / "text.jpg"), str(examples / "two_people.jpg")]
    proc = run("embed", "--json", *inputs)
    assert proc.returncode == 1  # some inputs failed
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["path"] for line in lines] == inputs
    ok, missing, text, group = lines
    assert ok["error"] is None and len(ok["faces"]) == 1
    face = ok["faces"][0]
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5 and len(face["embedding"]) == 128
    assert "no such file" in missing["error"] and "not a recognised image" in text["error"]
    assert len(group["faces"]) == 2
    assert "Traceback" not in proc.stderr


def test_detect_table(examples):
    proc = run("detect", str(examples / "two_people.jpg"), check=True)
    assert "two_people.jpg" in proc.stdout and "2" in proc.stdout


def test_verify_exit_codes(examples):
    assert run("verify", str(examples / "obama.jpg"), str(examples / "obama2.jpg")).returncode == 0
    proc = run("verify", "--json", str(examples / "obama.jpg"), str(examples / "biden.jpg"))
    assert proc.returncode == 1 and json.loads(proc.stdout)["is_match"] is False
    blank = run("verify", str(examples / "obama.jpg"), "/no/such/file.jpg")
    assert blank.returncode == 1 and blank.stderr.count("\n") <= 2 and "no such file" in blank.stderr


def test_enroll_identify_annotate_and_gallery_commands(examples, tmp_path):
    knn = examples / "knn_examples"
    gallery = tmp_path / "people"
    run("enroll", "--gallery", str(gallery), "--from-folders", str(knn / "train"), check=True)
    proc = run("identify", "--gallery", str(gallery), "--json", "--annotate", str(tmp_path / "drawn"),
               str(knn / "test" / "kit_with_rose.jpg"), check=True)
    names = {f["name"] for f in json.loads(proc.stdout)["faces"]}
    assert names == {"kit_harington", "rose_leslie"}
    from facelens.io.image import decode_image

    assert decode_image(tmp_path / "drawn" / "kit_with_rose.png").shape[2] == 3
    listing = [json.loads(x) for x in run("gallery", "list", str(gallery), "--json", check=True).stdout.splitlines()]
    assert len(listing) == 5
    run("gallery", "rename", str(gallery), "biden", "joe_biden", check=True)
    run("gallery", "remove", str(gallery), "obama", check=True)
    stats = json.loads(run("gallery", "stats", str(gallery), "--json", check=True).stdout)
    assert stats["people"] == 4
    again = run("enroll", "--gallery", str(gallery), "joe_biden", str(knn / "train" / "biden" / "biden.jpg"))
    assert again.returncode == 1 and "already enrolled" in again.stdout
    bad = run("gallery", "remove", str(gallery), "nobody")
    assert bad.returncode == 2 and "nobody" in bad.stderr and "Traceback" not in bad.stderr


def test_not_a_gallery_is_one_line_error(tmp_path, examples):
    (tmp_path / "notes.txt").write_text("x")
    proc = run("identify", "--gallery", str(tmp_path), str(examples / "obama.jpg"))
    assert proc.returncode == 2 and "not a facelens gallery" in proc.stderr and "Traceback" not in proc.stderr


def test_models_listing():
    proc = run("models", "--json", check=True)
    rows = [json.loads(x) for x in proc.stdout.splitlines()]
    assert any(r["model"] == "dlib_resnet_v1" and r["path"] for r in rows)


def test_identify_with_analysis_and_liveness(examples, tmp_path):
    gallery = tmp_path / "g"
    run("enroll", "--gallery", str(gallery), "obama", str(examples / "obama.jpg"), check=True)
    proc = run("identify", "--gallery", str(gallery), "--json", "--analyze", "--liveness", str(examples / "obama2.jpg"), check=True)
    face = json.loads(proc.stdout)["faces"][0]
    assert "expression" in face and "liveness" in face and "quality" in face
    assert face["name"] == ("obama" if face["liveness"]["is_live"] else None)
