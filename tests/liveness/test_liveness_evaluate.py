"""Evaluating liveness on a labelled folder: what could not be read is reported."""

from __future__ import annotations


def test_unreadable_files_in_a_labelled_folder_are_reported_not_hidden(spoof_dir, tmp_path):
    """A broken link or a truncated file among labelled images is listed in the report, not silently skipped."""
    import shutil

    from facelens.liveness.evaluate import evaluate

    source = spoof_dir / "minivision_silent_face"
    for label in ("live", "spoof"):
        shutil.copytree(source / label, tmp_path / label)
    (tmp_path / "live" / "gone.jpg").symlink_to(tmp_path / "no-such-file.jpg")
    (tmp_path / "spoof" / "cut.jpg").write_bytes((source / "spoof" / "image_F1.jpg").read_bytes()[:200])
    report = evaluate(tmp_path)
    assert report["images"] == 3
    assert sorted(u["path"].rsplit("/", 1)[1] for u in report["unreadable"]) == ["cut.jpg", "gone.jpg"]
    assert all(u["error"] for u in report["unreadable"])


def test_eval_cli_lists_unreadable_files_and_exits_1(spoof_dir, tmp_path):
    import json
    import shutil

    from typer.testing import CliRunner

    from facelens.cli.liveness import app

    source = spoof_dir / "minivision_silent_face"
    for label in ("live", "spoof"):
        shutil.copytree(source / label, tmp_path / label)
    (tmp_path / "live" / "gone.jpg").symlink_to(tmp_path / "no-such-file.jpg")
    done = CliRunner().invoke(app, ["eval", str(tmp_path), "--json"])
    assert done.exit_code == 1, done.output
    report = json.loads(done.stdout.splitlines()[-1])
    assert [u["path"].rsplit("/", 1)[1] for u in report["unreadable"]] == ["gone.jpg"]
