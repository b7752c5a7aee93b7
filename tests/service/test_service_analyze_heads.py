"""POST /v1/analyze applies a custom head from the server's heads folder exactly as `facelens analyze --head` does
(door symmetry), and refuses names that are not a head in that folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner


@pytest.fixture(scope="module")
def smile_head(data_dir: Path, tmp_path_factory):
    """A head fitted with `facelens analyze fit` on FER2013 crops (happy vs surprise), and held-out crops."""
    from facelens.cli.analyze import app

    src = data_dir / "expression" / "fer2013_sample"
    if not src.is_dir():
        pytest.skip(f"{src} not found")
    root = tmp_path_factory.mktemp("heads")
    train, held_out = root / "train", []
    for label in ("happy", "surprise"):
        (train / label).mkdir(parents=True)
        files = sorted((src / label).glob("*.jpg"))
        for f in files[:15]:
            (train / label / f.name).symlink_to(f)
        held_out += files[30:32]
    heads_dir = root / "heads"
    heads_dir.mkdir()
    fit = CliRunner().invoke(app, ["fit", str(train), "-o", str(heads_dir / "smile.joblib"), "--face-crops",
                                   "--features", "expression", "--name", "smile", "--json"])
    assert fit.exit_code == 0, fit.output
    return heads_dir, held_out


def test_custom_head_answers_as_in_the_cli(smile_head, service, tmp_path):
    from dataclasses import replace

    from fastapi.testclient import TestClient

    from facelens.cli.analyze import app as analyze_cli
    from facelens.service import create_app

    heads_dir, held_out = smile_head
    settings = replace(service[1], gallery=str(tmp_path / "people"), keys=None, heads_dir=str(heads_dir),
                       preload=False)
    application = create_app(settings)
    from facelens.service import KeyStore

    _, token = KeyStore(settings.keys_location).create("identify", "heads")
    headers = {"X-API-Key": token}
    cli = CliRunner().invoke(analyze_cli, [*map(str, held_out), "--face-crops", "--head",
                                           str(heads_dir / "smile.joblib"), "--heads", "expression", "--json"])
    assert cli.exit_code == 0, cli.output
    by_cli = [json.loads(line)["faces"] for line in cli.stdout.splitlines()]
    with TestClient(application) as client:
        for path, expected in zip(held_out, by_cli):
            response = client.post("/v1/analyze?head=smile&heads=expression&face_crops=true", headers=headers,
                                   files={"image": (path.name, path.read_bytes(), "image/jpeg")})
            assert response.status_code == 200, response.text
            faces = response.json()["faces"]
            assert faces[0]["head"]["name"] == "smile"
            assert [f["head"] for f in faces] == [f["head"] for f in expected]
            assert [f["expression"] for f in faces] == [f["expression"] for f in expected]
        image = {"image": (held_out[0].name, held_out[0].read_bytes(), "image/jpeg")}
        missing = client.post("/v1/analyze?head=frown", headers=headers, files=image)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        escape = client.post("/v1/analyze?head=../heads/smile", headers=headers, files=image)
        assert escape.status_code == 400 and escape.json()["error"]["code"] == "bad_request"
