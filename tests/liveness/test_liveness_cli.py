"""The ``liveness`` Typer app, run for real, mounted the way the lead mounts it (``facelens liveness ...``)."""

from __future__ import annotations

import json

import cv2
import pytest
import typer
from typer.testing import CliRunner

from facelens.cli.liveness import app

runner = CliRunner()


@pytest.fixture(scope="module")
def root():
    parent = typer.Typer()
    parent.add_typer(app, name="liveness")

    @parent.command()
    def version() -> None:  # a sibling command, as in the real CLI
        typer.echo("x")

    return parent


def test_eval_json(root, spoof_dir):
    res = runner.invoke(root, ["liveness", "eval", str(spoof_dir / "minivision_silent_face"), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["metrics"]["acer"] == 0.0 and report["images"] == 3
    assert {"apcer", "bpcer", "acer", "accuracy", "precision", "recall", "f1"} <= set(report["metrics"])


def test_eval_table(root, spoof_dir):
    res = runner.invoke(root, ["liveness", "eval", str(spoof_dir / "vietmoney_fas"), "--target-bpcer", "0.1"])
    assert res.exit_code == 0, res.output
    assert "APCER" in res.output and "BPCER" in res.output and "0.3333" in res.output


def test_fit_then_eval_with_the_fusion(root, spoof_dir, tmp_path):
    out = tmp_path / "fusion.json"
    res = runner.invoke(root, ["liveness", "fit", str(spoof_dir / "dtruong46me_fas_crops"), "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert out.is_file() and summary["no_face"] == 0 and summary["cv_fused"]["acer"] < 0.1
    res = runner.invoke(
        root, ["liveness", "eval", str(spoof_dir / "minivision_silent_face"), "--fusion", str(out), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["model"] == "minifasnet+frequency"


def test_bare_clip_form(root, spoof_dir, tmp_path):
    still = cv2.imread(str(spoof_dir / "minivision_silent_face" / "live" / "image_T1.jpg"))
    writer = cv2.VideoWriter(str(tmp_path / "still.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, still.shape[1::-1])
    for _ in range(20):
        writer.write(still)
    writer.release()
    res = runner.invoke(root, ["liveness", str(tmp_path / "still.mp4"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["is_live"] is False and out["blink_count"] == 0
    res = runner.invoke(root, ["liveness", str(tmp_path / "still.mp4")])
    assert res.exit_code == 0 and "0 blink(s)" in res.output


def test_image_command(root, spoof_dir, data_dir):
    res = runner.invoke(
        root, ["liveness", "image", str(spoof_dir / "minivision_silent_face" / "spoof" / "image_F2.jpg"), "--json"]
    )
    assert res.exit_code == 0, res.output
    faces = json.loads(res.output)["faces"]
    assert len(faces) == 1 and faces[0]["is_live"] is False
    res = runner.invoke(
        root, ["liveness", "image", str(data_dir / "identity" / "dlib" / "examples" / "faces" / "dogs.jpg")]
    )
    assert res.exit_code == 0 and "no face found" in res.output


def test_errors_are_one_line_and_non_zero(root, tmp_path):
    res = runner.invoke(root, ["liveness", str(tmp_path / "missing.mp4")])
    assert res.exit_code == 1  # the input failed
    assert res.output.strip().count("\n") == 0 and res.output.startswith("error: cannot open video")
    res = runner.invoke(root, ["liveness", "eval", str(tmp_path)])
    assert res.exit_code == 2 and "live/ and spoof/" in res.output  # a bad data folder is a usage error


def test_clip_signal_option(root, spoof_dir, tmp_path):
    still = cv2.imread(str(spoof_dir / "minivision_silent_face" / "live" / "image_T1.jpg"))
    writer = cv2.VideoWriter(str(tmp_path / "still.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, still.shape[1::-1])
    for _ in range(12):
        writer.write(still)
    writer.release()
    res = runner.invoke(root, ["liveness", str(tmp_path / "still.mp4"), "--signal", "ear", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["signal"] == "ear" and out["blink_count"] == 0 and out["open_level"] > 0.2
    res = runner.invoke(root, ["liveness", str(tmp_path / "still.mp4"), "--signal", "eyes"])
    assert res.exit_code == 2 and "unknown blink signal" in res.output
