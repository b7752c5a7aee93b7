"""Moving faces between files and backends: export/import round trips, verified copies folder -> PostgreSQL ->
folder with byte-equal vectors, bad import files refused with nothing written, and the CLI commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from facelens.cli import app
from facelens.errors import GalleryError, ModelMismatchError
from facelens.gallery import open_gallery
from facelens.gallery.transfer import copy_gallery, export_gallery, import_file
from facelens.embed import DEFAULT_MODEL_ID


def _filled(where: dict, seed: int = 0):
    gallery = open_gallery(**where)
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(30, 128)).astype(np.float32)
    names = [f"p{i % 10}" for i in range(30)]
    gallery.add_embeddings(names, vectors, metadata=[{"site": "a" if i % 2 else "b"} for i in range(30)])
    gallery.add_person("no-faces-yet", {"note": "kept"})
    return gallery


def _snapshot(gallery):
    faces = gallery.faces(with_embeddings=True)
    return (
        {p.name: (p.face_count, p.metadata) for p in gallery.people()},
        sorted((f.name, f.embedding.tobytes()) for f in faces),
    )


@pytest.mark.parametrize("suffix", [".jsonl", ".npz", ".parquet"])
def test_export_import_round_trip(tmp_path, suffix):
    source = _filled({"location": str(tmp_path / "src")})
    path = tmp_path / f"faces{suffix}"
    assert export_gallery(source, path) == 30
    target = open_gallery(tmp_path / f"dst{suffix}")
    assert import_file(target, path) == 30
    people, vectors = _snapshot(source)
    people.pop("no-faces-yet")  # files carry faces; a person without faces has no row
    assert _snapshot(target) == (people, vectors)


def test_bad_import_files_write_nothing(tmp_path):
    target = open_gallery(tmp_path / "dst")
    cases = {
        "missing.jsonl": None,
        "text.jsonl": "this is not json\n",
        "noname.jsonl": json.dumps({"embedding": [0.1] * 128}) + "\n",
        "ragged.jsonl": json.dumps({"name": "a", "embedding": [0.1] * 128}) + "\n"
        + json.dumps({"name": "b", "embedding": [0.1] * 7}) + "\n",
        "short.jsonl": json.dumps({"name": "a", "embedding": [0.1] * 64}) + "\n",
        "nan.jsonl": json.dumps({"name": "a", "embedding": [float("nan")] * 128}).replace("NaN", "NaN") + "\n",
        "odd.csv": "name,embedding\n",
        "broken.npz": "PK not really a zip",
        "broken.parquet": "PAR1 nope",
    }
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_text(content)
        with pytest.raises((GalleryError, ModelMismatchError)):
            import_file(target, path)
    other_model = tmp_path / "other.jsonl"
    other_model.write_text(json.dumps({"facelens_gallery": 1, "model_id": "arcface_r100", "dim": 128}) + "\n"
                           + json.dumps({"name": "a", "embedding": [0.1] * 128}) + "\n")
    with pytest.raises(ModelMismatchError):
        import_file(target, other_model)
    assert target.face_count() == 0 and target.people() == []


def test_copy_folder_postgres_folder_byte_equal(tmp_path, postgres_url):
    source = _filled({"location": str(tmp_path / "src")})
    server = open_gallery(postgres_url, collection="copy-test")
    assert copy_gallery(source, server) == {"people": 11, "faces": 30, "verified": True}
    back = open_gallery(tmp_path / "back")
    copy_gallery(server, back)
    assert _snapshot(back) == _snapshot(source)
    original = {f.source: f for f in source.faces()}
    assert all(f.added_at == original[f.source].added_at for f in back.faces())
    with pytest.raises(GalleryError):
        copy_gallery(source, back)  # the target must be empty


def test_gallery_cli_import_export_copy_reindex(tmp_path, postgres_url):
    runner = CliRunner()
    source = _filled({"location": str(tmp_path / "src")})
    source.close()
    src = str(tmp_path / "src")
    result = runner.invoke(app, ["gallery", "export", src, str(tmp_path / "all.jsonl")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["gallery", "import", str(tmp_path / "imported"), str(tmp_path / "all.jsonl"), "-c", "t"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["gallery", "collections", str(tmp_path / "imported"), "--json"])
    assert json.loads(result.stdout.strip()) == {"collection": "t", "model_id": DEFAULT_MODEL_ID, "people": 10, "faces": 30}
    result = runner.invoke(app, ["gallery", "copy", src, postgres_url, "--target-collection", "cli-copy", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip())["verified"] is True
    result = runner.invoke(app, ["gallery", "list", postgres_url, "-c", "cli-copy", "--where", "site=a", "--json"])
    listed = [json.loads(line) for line in result.stdout.splitlines()]
    assert {p["name"] for p in listed} == {"p1", "p3", "p5", "p7", "p9"}
    result = runner.invoke(app, ["gallery", "reindex", src, "--json"])
    assert json.loads(result.stdout.strip()) == {"collection": "default", "faces": 30, "index": "exact"}
    result = runner.invoke(app, ["gallery", "drop", postgres_url, "cli-copy"])
    assert result.exit_code != 0  # needs --yes
    result = runner.invoke(app, ["gallery", "drop", postgres_url, "cli-copy", "--yes"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("suffix", [".jsonl", ".npz"])
def test_importing_the_same_file_twice_adds_nothing_twice(tmp_path, suffix):
    source = _filled({"location": str(tmp_path / "src")})
    path = tmp_path / "deep" / "missing" / f"faces{suffix}"  # export creates the folders it needs
    assert export_gallery(source, path) == 30
    target = open_gallery(tmp_path / "dst")
    assert import_file(target, path) == 30
    first = _snapshot(target)
    assert import_file(target, path) == 0
    assert _snapshot(target) == first and target.face_count() == 30
