"""`facelens eval expression`: the measures against scikit-learn's, folder and CSV inputs, the CLI on real faces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import need_data


def test_report_agrees_with_sklearn():
    from sklearn.metrics import confusion_matrix, f1_score, recall_score

    from facelens.evaluate.expression import expression_report

    rng = np.random.default_rng(0)
    classes = ["angry", "happy", "neutral", "sad"]
    truth = list(rng.choice(classes, 200))
    predicted = [t if rng.random() < 0.6 else str(rng.choice(classes)) for t in truth]
    report = expression_report(truth, predicted, "m", classes)
    assert report.accuracy == pytest.approx(np.mean(np.array(truth) == np.array(predicted)))
    assert report.macro_f1 == pytest.approx(f1_score(truth, predicted, average="macro"))
    recall = recall_score(truth, predicted, average=None, labels=classes)
    assert [report.recall[c] for c in classes] == pytest.approx(list(recall))
    assert report.confusion == confusion_matrix(truth, predicted, labels=classes).tolist()


def test_missed_faces_and_unanswerable_classes_count_as_errors():
    from facelens.evaluate.expression import expression_report

    report = expression_report(["happy", "contempt", "anger", "happy"], ["happy", "neutral", "angry", None],
                               "seven", ("angry", "happy", "neutral"))  # fmt: skip
    assert report.accuracy == 0.5 and report.missed == 1
    assert report.recall == {"angry": 1.0, "contempt": 0.0, "happy": 0.5}
    assert report.predicted_classes[-1] == "none"


def test_labelled_faces_from_folder_and_csv(tmp_path: Path):
    from facelens.errors import FacelensError
    from facelens.evaluate.expression import labelled_faces

    root = need_data("expression", "ckplus48")
    items = labelled_faces(root)
    assert len(items) == 981 and {label for _, label in items} >= {"angry", "sad", "contempt"}  # names normalised
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "\n".join(f"{p},{label}" for p, label in items[:5]) + "\n")
    assert labelled_faces(csv) == items[:5]
    with pytest.raises(FacelensError):
        labelled_faces(tmp_path / "nothing")


def test_cli_eval_expression_writes_table_json_png(tmp_path: Path):
    from facelens.cli.evaluate import app
    from facelens.evaluate.expression import expression_report, predict_expressions

    source = need_data("expression", "fer2013_sample")
    data = tmp_path / "faces"
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        (data / folder.name).mkdir(parents=True)
        for path in sorted(folder.glob("*.jpg"))[:4]:
            shutil.copy(path, data / folder.name / path.name)
    out = tmp_path / "report"
    runner = CliRunner()
    result = runner.invoke(app, ["expression", str(data), "--face-crops", "--model", "mini_xception", "--json",
                                 "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["n"] == 28 and report["model"] == "mini_xception"
    assert (out / "confusion.png").stat().st_size > 1000 and (out / "report.json").is_file()
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 28
    # the same figure as the library computes
    items = sorted((p, p.parent.name) for p in data.glob("*/*.jpg"))
    again = expression_report([t for _, t in items], predict_expressions([p for p, _ in items], "mini_xception", True))
    assert report["accuracy"] == pytest.approx(round(again.accuracy, 4))
    assert sum(map(sum, report["confusion"])) == 28
    table = runner.invoke(app, ["expression", str(data), "--face-crops", "--model", "mini_xception"])
    assert table.exit_code == 0 and "macro-F1" in table.output and "Confusion" in table.output
    bad = runner.invoke(app, ["expression", str(data), "--model", "nope"])
    assert bad.exit_code == 2 and "unknown expression model" in bad.output
