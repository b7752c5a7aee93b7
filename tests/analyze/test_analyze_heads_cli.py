"""Custom heads (fit/save/load/apply), the analyze() API and the CLI run for real."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facelens.cli.analyze import app
from facelens.analyze.heads import CustomHead
from facelens.embed import DEFAULT_MODEL_ID

runner = CliRunner()


def need_age_gender() -> None:
    """Skip unless the age/gender ONNX files resolve locally (CI fetches them: `facelens models --fetch`)."""
    import facelens.analyze.models  # noqa: F401
    from facelens.errors import FacelensError
    from facelens.models.registry import resolve

    try:
        resolve("cydral_age_v1", download=False), resolve("cydral_gender_v1", download=False)
    except FacelensError as exc:
        pytest.skip(f"age/gender model files not local ({exc}); run `facelens models --fetch cydral_age_v1 "
                    "--fetch cydral_gender_v1` with downloads allowed")


def test_head_beats_chance_on_held_out_fer(fer_set, tmp_path):
    _, labels, _, probs = fer_set
    rng = np.random.default_rng(0)
    train = np.zeros(len(labels), bool)
    for c in np.unique(labels):  # half of each class for training, the rest held out
        idx = np.flatnonzero(labels == c)
        train[rng.choice(idx, len(idx) // 2, replace=False)] = True
    head = CustomHead(name="my_expression", features=("expression",)).fit(probs[train], labels[train])
    path = head.save(tmp_path / "head.joblib")
    loaded = CustomHead.load(path)
    results = loaded.predict(probs[~train])
    accuracy = np.mean([r.label == y for r, y in zip(results, labels[~train])])
    print(f"\ncustom head on held-out fer2013_sample: accuracy {accuracy:.3f} (chance {1 / 7:.3f})")
    assert accuracy > 2 / 7
    assert loaded.labels == head.labels and loaded.cv_accuracy == head.cv_accuracy


def test_head_keeps_base_answer_below_threshold():
    X = np.array([[0.0], [0.1], [1.0], [1.1], [0.5], [0.55]] * 3)
    y = ["a", "a", "b", "b", "a", "b"] * 3
    head = CustomHead(features=("expression",), base="expression").fit(X, y, base_labels=["a"] * len(y))
    head.threshold = 0.99
    out = head.predict(np.array([[0.0]]), base_labels=["happy"])
    assert out[0].from_base and out[0].label == "happy"


def test_load_rejects_other_files(tmp_path):
    from facelens.errors import FacelensError

    bad = tmp_path / "x.joblib"
    bad.write_text("not a head")
    with pytest.raises(FacelensError, match="not a facelens head"):
        CustomHead.load(bad)
    with pytest.raises(FacelensError, match="not found"):
        CustomHead.load(tmp_path / "missing.joblib")


def test_analyze_api_two_people(data_dir: Path):
    need_age_gender()
    from facelens.analyze import analyze

    result = analyze(data_dir / "identity" / "face_recognition" / "examples" / "two_people.jpg")
    assert len(result.faces) == 2
    for face in result.faces:
        d = face.to_dict()
        assert d["gender"]["label"] == "male" and 30 < d["age"]["years"] < 80
        from facelens.analyze.expression import get_expression_model
        from facelens.analyze.models import EXPRESSIONS

        assert set(d["expression"]["probabilities"]) == set(get_expression_model().labels) >= set(EXPRESSIONS)
        assert 0 <= d["quality"]["score"] <= 1
    json.dumps(result.to_dict())


def test_cli_analyze_json_annotate_and_errors(data_dir: Path, tmp_path):
    need_age_gender()
    image = data_dir / "identity" / "face_recognition" / "examples" / "two_people.jpg"
    out = runner.invoke(app, [str(image), "--json", "--annotate", str(tmp_path)])
    assert out.exit_code == 0, out.output
    (doc,) = [json.loads(line) for line in out.output.splitlines()]
    assert len(doc["faces"]) == 2 and doc["error"] is None
    assert (tmp_path / "two_people.jpg").stat().st_size > 1000
    table = runner.invoke(app, ["images", str(image), "--heads", "quality"])
    assert table.exit_code == 0 and "two_people" in table.output
    missing = runner.invoke(app, [str(tmp_path / "nope.jpg")])
    assert missing.exit_code == 1 and "error:" in missing.output


def test_cli_fit_then_apply_on_face_crops(data_dir: Path, tmp_path):
    src = data_dir / "expression" / "fer2013_sample"
    if not src.is_dir():
        pytest.skip(f"{src} not found")
    train = tmp_path / "train"
    held_out = []
    for label in ("happy", "surprise"):  # links, not copies, of the staged crops
        (train / label).mkdir(parents=True)
        files = sorted((src / label).glob("*.jpg"))
        for f in files[:15]:
            (train / label / f.name).symlink_to(f)
        held_out += files[30:33]
    head_path = tmp_path / "smile.joblib"
    fit = runner.invoke(app, ["fit", str(train), "-o", str(head_path), "--face-crops", "--name", "smile", "--json"])
    assert fit.exit_code == 0, fit.output
    info = json.loads(fit.output)
    assert info["labels"] == ["happy", "surprise"] and info["samples"] == 30
    assert info["model_ids"]["embedding"] == DEFAULT_MODEL_ID
    applied = runner.invoke(
        app, [*map(str, held_out), "--face-crops", "--head", str(head_path), "--heads", "expression", "--json"]
    )
    assert applied.exit_code == 0, applied.output
    docs = [json.loads(line) for line in applied.stdout.splitlines()]
    assert all(d["faces"][0]["head"]["name"] == "smile" for d in docs)  # a custom head answers under "head"
    predicted = [d["faces"][0]["head"]["label"] for d in docs]
    truth = [Path(d["path"]).parent.name for d in docs]
    assert sum(p == t for p, t in zip(predicted, truth)) >= 4  # of 6


def test_module_is_callable_and_fills_the_engine_columns(data_dir: Path):
    """facelens.analyze(...) and the engine's analyze task give the same typed columns (no dicts on the side)."""
    import facelens.analyze as analyze_module
    from facelens.analyze import Analyzer
    from facelens.engine import FaceAnalyzer

    image_path = data_dir / "identity" / "face_recognition" / "examples" / "obama.jpg"
    result = analyze_module(image_path, heads=("expression", "quality"))
    assert len(result.faces) == 1 and result.faces.age is None and result.faces[0].age is None
    found = FaceAnalyzer(tasks=("embed", "analyze"), heads=("expression", "quality"), workers=1).run_one(image_path)
    assert found.faces[0].to_dict()["expression"] == result.faces[0].to_dict()["expression"]
    assert found.faces[0].quality.score == result.faces[0].quality.score
    # the heads' own API on the same detections says the same
    from facelens.result import Faces

    heads = Faces.from_detections(found.faces.detections())
    Analyzer(heads=("expression", "quality")).fill([found.image], [heads])
    assert heads[0].to_dict()["expression"] == found.faces[0].to_dict()["expression"]
    assert heads[0].to_dict()["quality"]["score"] == found.faces[0].to_dict()["quality"]["score"]


def test_cli_routes_when_mounted(data_dir: Path):
    import typer

    root = typer.Typer()
    root.command("version")(lambda: None)
    root.add_typer(app, name="analyze")
    image = data_dir / "identity" / "face_recognition" / "examples" / "obama.jpg"
    out = runner.invoke(root, ["analyze", str(image), "--heads", "quality", "--json"])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.output)["faces"]) == 1
    assert "fit" in runner.invoke(root, ["analyze", "--help"]).output
