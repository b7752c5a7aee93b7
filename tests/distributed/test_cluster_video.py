"""``--ray`` on ``facelens cluster`` (the library's embedding on the Ray runner, clustering on the driver) and on
``facelens video`` (one Ray task per video file): the same clusters and the same timelines as the local runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import need_data

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")]

EXE = str(Path(sys.executable).parent / "facelens")
HAMILTON = ("video", "face_recognition", "short_hamilton_clip.mp4")
LIN = ("video", "face_recognition", "lin-manuel-miranda.png")


def plain(record: dict) -> dict:
    """A record as the CLI's JSON line carries it."""
    return json.loads(json.dumps(record, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def test_cluster_on_ray_gives_the_local_clusters(ray_cluster, lfw_people, tmp_path):
    from facelens.cli.cluster import _face_records
    from facelens.cluster import cluster_photos
    from facelens.gallery import open_gallery

    folder = tmp_path / "photos"
    folder.mkdir()
    recurring = [images for _, images in lfw_people if len(images) >= 4][:3]
    singles = [images for _, images in lfw_people if len(images) == 1][:4]
    for path in [p for images in recurring for p in images[:4]] + [images[0] for images in singles]:
        shutil.copy(path, folder / Path(path).name)
    with open_gallery(str(tmp_path / "local")) as store:
        report = cluster_photos(store, [str(folder)], workers=1)
        local = [plain(r) for r in _face_records(store)]
    assert report.processed == 16 and report.new_people  # clusters were formed: the comparison means something

    proc = subprocess.run([EXE, "cluster", str(folder), "-g", str(tmp_path / "ray"), "--ray", "auto", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[:-1] == local  # the same faces, boxes, detection ids and people/clusters
    summary = lines[-1]["summary"]
    assert summary["processed"] == 16 and summary["new_people"] == report.new_people
    assert "ray: 16 images" in proc.stderr


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two short clips cut from the Hamilton clip (frames 0-44 and 45-89), and a gallery with Lin-Manuel Miranda."""
    import cv2

    from facelens.api import enroll

    source = need_data(*HAMILTON)
    folder = tmp_path_factory.mktemp("clips")
    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS)
    paths = []
    for part in range(2):
        path = folder / f"part{part}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                 (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))))
        for _ in range(45):
            writer.write(cap.read()[1])
        writer.release()
        paths.append(str(path))
    cap.release()
    gallery = str(folder / "people")
    assert enroll(gallery, "lin-manuel-miranda", [str(need_data(*LIN))]).added
    return paths, gallery


def without_stats(timeline: dict) -> dict:
    return {k: v for k, v in timeline.items() if k != "stats"}  # timings: the machine's, not the video's


def test_videos_on_ray_give_the_local_timelines(ray_cluster, clips, tmp_path):
    from facelens.distributed.video import VideoJob, process_videos

    paths, gallery = clips
    folder = tmp_path / "timelines"
    jobs = [VideoJob(p, timeline=str(folder / f"{Path(p).stem}.json"), thumbnails=str(folder / f"{Path(p).stem}_faces"))
            for p in paths]  # the paths the CLI gives each video below, so the records name the same thumbnails
    local = list(process_videos(jobs, gallery, every=4))
    assert all(o.error is None and o.timeline.complete for o in local)
    assert "lin-manuel-miranda" in {t.person for o in local for t in o.timeline.tracks}  # named: a real comparison

    proc = subprocess.run([EXE, "video", *paths, "-g", gallery, "--every", "4", "--ray", "auto", "--json",
                           "--timeline", str(folder)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    remote = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [without_stats(t) for t in remote] == [without_stats(plain(o.timeline.to_dict())) for o in local]
    for path, timeline in zip(paths, remote):  # each task wrote its own timeline where it was told
        written = json.loads((folder / f"{Path(path).stem}.json").read_text())
        assert without_stats(written) == without_stats(timeline)
    assert "ray: 2 videos" in proc.stderr


def test_several_videos_without_ray_one_failing_alone(clips, tmp_path):
    """Several inputs without --ray run one after another here; a missing one fails alone (exit 1, its error line)
    and the others' timelines are written into the --timeline folder."""
    from typer.testing import CliRunner

    from facelens.cli.video import app

    paths, gallery = clips
    missing = str(tmp_path / "absent.mp4")
    result = CliRunner().invoke(app, ["run", paths[0], missing, "-g", gallery, "--every", "4", "--json",
                                      "--timeline", str(tmp_path / "t")])
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line.get("source") for line in lines] == [paths[0], missing]
    assert lines[0]["complete"] and "error" in lines[1] and "absent.mp4" in lines[1]["error"]
    assert (tmp_path / "t" / "part0.json").is_file() and not (tmp_path / "t" / "absent.json").exists()
    clash = CliRunner().invoke(app, ["run", paths[0], paths[0], "--timeline", str(tmp_path / "t2")])
    assert clash.exit_code == 2 and "share a name" in clash.output  # refused before any video is read
