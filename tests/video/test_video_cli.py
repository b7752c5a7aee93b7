"""`facelens video` commands run for real through Typer's CliRunner."""

from __future__ import annotations

import json

import cv2
from helpers import need_data
from typer.testing import CliRunner

from facelens.io.video import probe
from facelens.video import Timeline
from facelens.cli.video import app

HAMILTON = ("video", "face_recognition", "short_hamilton_clip.mp4")

runner = CliRunner()


def _head(tmp_path, frames: int = 60):
    """The clip's first seconds as an .avi (Lin-Manuel Miranda on stage, then a cut)."""
    src = cv2.VideoCapture(str(need_data(*HAMILTON)))
    path = tmp_path / "head.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 29.97, (640, 360))
    for _ in range(frames):
        writer.write(src.read()[1])
    writer.release()
    src.release()
    return path


def test_video_cli_default_command_writes_everything(tmp_path, lin_gallery):
    clip = _head(tmp_path)
    out, timeline = tmp_path / "annotated.mp4", tmp_path / "t.json"
    result = runner.invoke(
        app,
        [
            str(clip),
            "--gallery",
            lin_gallery.location,
            "--out",
            str(out),
            "--timeline",
            str(timeline),
            "--every",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{") :])
    assert "lin-manuel-miranda" in [t["person"] for t in data["tracks"]]
    assert probe(out)["frames"] == 60
    loaded = Timeline.load(timeline)
    assert loaded.to_dict()["tracks"] == data["tracks"]
    assert (tmp_path / "t_faces" / "lin-manuel-miranda.jpg").is_file()


def test_video_cli_enroll_unknown_from_timeline(facenet, tmp_path):
    from facelens.gallery import open_gallery

    main = max(facenet.timeline.tracks, key=lambda t: t.frames)
    gallery = tmp_path / "g"
    result = runner.invoke(
        app, ["enroll", str(facenet.timeline_path), main.person, "--name", "walker", "-g", str(gallery), "--json"]
    )
    assert result.exit_code == 0, result.output
    added = json.loads(result.stdout)["faces_added"]
    assert added == len(facenet.timeline.person(main.person).embeddings) > 0
    with open_gallery(gallery, create=False) as store:
        assert [p.name for p in store.people()] == ["walker"]
        # the enrolled person is recognised in the same clip's own faces
        vectors = facenet.timeline.person(main.person).embeddings
        assert store.search(vectors, k=1)[0][0].name == "walker"


def test_video_cli_errors_are_one_line(tmp_path, facenet):
    result = runner.invoke(app, [str(tmp_path / "absent.mp4")])
    assert result.exit_code == 1 and "no such file" in result.output
    result = runner.invoke(
        app, ["enroll", str(facenet.timeline_path), "unknown-99", "--name", "x", "-g", str(tmp_path / "g")]
    )
    assert result.exit_code == 2 and "no person 'unknown-99'" in result.output  # a bad argument, not an input


def test_video_cli_truncated_input_exits_nonzero_with_timeline(tmp_path):
    clip = _head(tmp_path, 40)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    timeline = tmp_path / "t.json"
    result = runner.invoke(app, [str(cut), "--timeline", str(timeline), "--every", "5"])
    assert result.exit_code == 1
    assert "truncated" in result.output
    assert not Timeline.load(timeline).complete


def test_video_cli_mounted_as_default_command(tmp_path):
    """Mounted like the lead does (``add_typer(app, name="video")``), ``video CLIP`` reaches the run command."""
    import typer

    root = typer.Typer()
    root.add_typer(app, name="video")

    @root.command()
    def version() -> None:  # a second command so the root stays a group
        pass

    result = runner.invoke(root, ["video", str(tmp_path / "absent.mp4"), "--every", "3"])
    assert result.exit_code == 1 and "no such file" in result.output
    result = runner.invoke(root, ["video", "--help"])
    assert result.exit_code == 0 and "enroll" in result.output


def test_video_cli_where_and_liveness(tmp_path, lin_gallery):
    """--where filters the gallery's people as in identify; --liveness scores every track."""
    clip = _head(tmp_path, 18)
    args = [str(clip), "--gallery", lin_gallery.location, "--every", "3", "--json"]
    result = runner.invoke(app, args + ["--where", "site=nowhere", "--liveness"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["tracks"] and not any(t["named"] for t in data["tracks"])
    assert all(0.0 <= t["liveness"] <= 1.0 and isinstance(t["is_live"], bool) for t in data["tracks"])
    result = runner.invoke(app, args + ["--collection", "other"])  # the collection reaches the gallery
    assert result.exit_code == 2 and "'other'" in result.output
    result = runner.invoke(app, args + ["--detector", "nope"])
    assert result.exit_code == 2


def test_video_cli_embedder_is_the_models_and_a_gallery_keeps_its_own(tmp_path, lin_gallery):
    """`--embedder` chooses the model of the tracks' embeddings (recorded in the timeline); with a gallery of
    another model it is refused before any frame (exit 2); an unknown name is a usage error."""
    clip = _head(tmp_path, frames=20)
    timeline = tmp_path / "t.json"
    result = runner.invoke(app, [str(clip), "--embedder", "dlib_onnx", "--every", "4", "--timeline", str(timeline)])
    assert result.exit_code == 0, result.output
    assert Timeline.load(timeline).model_id == "dlib_resnet_v1"
    assert runner.invoke(app, [str(clip), "--embedder", "nope"]).exit_code == 2
    other = "sface" if lin_gallery.model_id == "dlib_resnet_v1" else "dlib_onnx"
    assert runner.invoke(app, [str(clip), "--gallery", str(lin_gallery.location), "--embedder", other]).exit_code == 2
