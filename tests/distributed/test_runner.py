"""The engine on Ray gives what it gives on one machine: the same enrolment, faces and vectors, also when an actor
dies mid-run; a re-run adds nothing; the CLI's --ray runs and summarises; without Ray the message says what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import facelens
from facelens.gallery import open_gallery
from enrol_checks import assert_same, gallery_faces

# Ray Data reads its own deprecated settings when it copies a context: not ours to fix
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")]


def test_ray_enrol_equals_local_enrol(ray_cluster, lfw_people, local_enrol, tmp_path):
    from facelens.distributed import RayRunner

    location, local_results = local_enrol
    runner = RayRunner(workers=2)
    results = facelens.enroll_people(str(tmp_path / "gallery"), lfw_people, runner=runner)
    assert [r.to_dict() for r in results] == [r.to_dict() for r in local_results]  # same adds and same refusals
    local = gallery_faces(location)
    assert len(local) > 150  # the subset is a real one: most LFW photos enrol
    assert_same(local, gallery_faces(tmp_path / "gallery"))
    assert runner.stats.images == sum(len(images) for _, images in lfw_people)
    assert runner.stats.faces >= len(local) and runner.stats.failed == 0



def test_actor_killed_mid_run_loses_and_duplicates_nothing(ray_cluster, lfw_people, local_enrol, tmp_path):
    import ray.cloudpickle

    from facelens.distributed.runner import ChunkActor, RayRunner

    marker = tmp_path / "killed"

    class KilledOnSecondChunk(ChunkActor):
        def __call__(self, batch):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 2 and not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)  # the worker process dies mid-run, without cleaning up
            return super().__call__(batch)

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import the tests
    people = lfw_people[:12]
    runner = RayRunner(workers=2, actor_class=KilledOnSecondChunk)
    results = facelens.enroll_people(str(tmp_path / "gallery"), people, runner=runner)
    assert marker.exists(), "no actor was killed: the test did not test a fault"
    assert runner.stats.failed == 0  # the dead actor's chunk was retried on a restarted one
    enrolled = gallery_faces(tmp_path / "gallery")  # no duplicates (checked inside)
    names = {name for name, _ in people}
    local = {key: value for key, value in gallery_faces(local_enrol[0]).items() if key[0] in names}
    assert_same(local, enrolled)

    again = facelens.enroll_people(str(tmp_path / "gallery"), people, runner=RayRunner(workers=2))
    assert sum(len(r.added) for r in again) == 0  # a re-run writes nothing twice
    assert all(s["reason"].startswith(("already enrolled", "2 faces")) or "similar size" in s["reason"]
               for r in again for s in r.skipped)
    assert gallery_faces(tmp_path / "gallery").keys() == enrolled.keys()
    assert sum(len(r.added) for r in results) == len(enrolled)


def test_ray_enrol_into_postgres_equals_local_enrol(ray_cluster, lfw_people, local_enrol, postgres_url, monkeypatch):
    """The multi-node gallery: the actors write PostgreSQL themselves (the driver cannot: its writes fail here),
    and the gallery holds the same faces as the local folder enrol, with the same adds and refusals."""
    import uuid

    from facelens.distributed import RayRunner
    from facelens.gallery.postgres import PostgresGallery

    def driver_write(*_args, **_kwargs):
        raise AssertionError("the driver wrote to the gallery")

    monkeypatch.setattr(PostgresGallery, "_insert_people", driver_write)  # this process only, not the actors
    monkeypatch.setattr(PostgresGallery, "add_faces_once", driver_write, raising=True)
    people, collection = lfw_people[:8], f"ray-{uuid.uuid4().hex[:8]}"
    runner = RayRunner(workers=2)
    with open_gallery(postgres_url, collection=collection) as store:
        results = facelens.enroll_people(store, people, runner=runner)
    names = {name for name, _ in people}
    local = {key: value for key, value in gallery_faces(local_enrol[0]).items() if key[0] in names}
    assert len(local) >= 8
    enrolled = gallery_faces(postgres_url, collection)
    assert_same(local, enrolled)
    local_results = [r for r in local_enrol[1] if r.name in names]
    assert [(r.name, r.skipped) for r in results] == [(r.name, r.skipped) for r in local_results]
    assert [len(r.added) for r in results] == [len(r.added) for r in local_results]
    with open_gallery(postgres_url, collection=collection) as store:
        ids = {f.face_id for f in store.faces()}
    assert sorted(i for r in results for i in r.added) == sorted(ids)


def test_actor_killed_after_writing_its_chunk_to_postgres_adds_nothing_twice(ray_cluster, lfw_people, local_enrol,
                                                                             postgres_url, tmp_path):
    """An actor dies after its chunk's transaction committed and before the driver heard of it: Ray retries the
    chunk, whose write finds its faces there and adds nothing; every image is reported once, as added."""
    import uuid

    import ray.cloudpickle

    from facelens.distributed.runner import ChunkActor, RayRunner

    marker = tmp_path / "killed"

    class KilledAfterWriting(ChunkActor):
        def __call__(self, batch):
            answer = super().__call__(batch)  # computes and writes (the sink runs in here)
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 2 and not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)
            return answer

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    people, collection = lfw_people[:12], f"ray-{uuid.uuid4().hex[:8]}"
    runner = RayRunner(workers=2, actor_class=KilledAfterWriting)
    with open_gallery(postgres_url, collection=collection) as store:
        results = facelens.enroll_people(store, people, runner=runner)
    assert marker.exists(), "no actor was killed: the test did not test a fault"
    assert runner.stats.failed == 0
    enrolled = gallery_faces(postgres_url, collection)  # no duplicates (checked inside)
    names = {name for name, _ in people}
    local = {key: value for key, value in gallery_faces(local_enrol[0]).items() if key[0] in names}
    assert_same(local, enrolled)
    assert sum(len(r.added) for r in results) == len(enrolled)  # the retried chunk's faces count once, as added
    assert not any(s["reason"].startswith("already enrolled") for r in results for s in r.skipped)


def test_cli_enroll_and_identify_on_ray(ray_cluster, lfw_people, tmp_path):
    """The console script with --ray auto joins the running (test) cluster and prints a summary on stderr."""
    root = tmp_path / "people"
    for name, images in lfw_people[:4]:
        (root / name).mkdir(parents=True)
        for image in images:
            (root / name / Path(image).name).symlink_to(image)
    exe = str(Path(sys.executable).parent / "facelens")
    enrol = subprocess.run([exe, "enroll", "--from-folders", str(root), "-g", str(tmp_path / "g"), "--ray", "auto",
                            "--json"], capture_output=True, text=True, timeout=300)
    assert enrol.returncode in (0, 1), enrol.stderr
    count = sum(len(images) for _, images in lfw_people[:4])
    assert f"ray: {count} images" in enrol.stderr and "images/s" in enrol.stderr
    name, images = lfw_people[0]
    found = subprocess.run([exe, "identify", images[0], "-g", str(tmp_path / "g"), "--ray", "auto", "--json",
                            "--output", str(tmp_path / "names.parquet")], capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stderr
    assert name in found.stdout and "ray: 1 images" in found.stderr
    pq = pytest.importorskip("pyarrow.parquet")
    assert [row["name"] for row in pq.read_table(tmp_path / "names.parquet").to_pylist()] == [name]


def test_uri_inputs_are_listed_and_read_by_the_workers(ray_cluster, lfw_people, tmp_path):
    """Inputs given as URIs (file:// here; s3:// and gs:// take the same pyarrow.fs path) are listed on the
    driver, read by the actors, and named by their URI; a missing object fails alone."""
    from facelens.cli.options import expand_inputs
    from facelens.distributed import RayRunner
    from facelens.engine import FaceAnalyzer

    name, images = next((n, i) for n, i in lfw_people if len(i) >= 3)
    uris = expand_inputs([f"file://{Path(images[0]).parent}"]) + ["file:///nonexistent/none.jpg"]
    assert uris[:-1] == [f"file://{p}" for p in images]
    remote = list(FaceAnalyzer(runner=RayRunner(workers=2)).run(uris))
    local = list(FaceAnalyzer(workers=1).run(images))
    assert [r.source for r in remote] == uris
    for a, b in zip(remote, local):
        assert a.error is None and np.array_equal(a.faces.embedding, b.faces.embedding)
    assert remote[-1].error is not None and "file:///nonexistent/none.jpg" in remote[-1].error


def test_without_ray_the_option_says_how_to_get_it(tmp_path):
    """The base install has no Ray: --ray is a usage error (exit 2) naming the extra. Ray is hidden here."""
    code = ("import sys; sys.modules['ray'] = None; sys.argv = ['facelens', 'embed', '--ray', 'auto', sys.argv[1]]; "
            "from facelens.cli import main; main()")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "any.jpg")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'facelens[ray]'" in proc.stderr
    assert proc.stdout == ""


def test_a_chunk_that_kills_every_attempt_fails_alone(ray_cluster, lfw_people):
    """A poison chunk (its actor dies on every attempt) fails its own images; every other image is answered."""
    import ray.cloudpickle

    from facelens.distributed.runner import ChunkActor, RayRunner
    from facelens.engine import FaceAnalyzer

    paths = [p for _, images in lfw_people for p in images][:24]
    poison = paths[9]  # in the second chunk of 8

    class DiesOnPoison(ChunkActor):
        def __call__(self, batch):
            import pickle

            if any(poison in sources for _, sources in map(pickle.loads, batch["payload"])):
                os._exit(1)
            return super().__call__(batch)

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    runner = RayRunner(workers=2, task_retries=1, actor_class=DiesOnPoison)
    results = list(FaceAnalyzer(chunk_size=8, runner=runner).run(paths))
    assert [r.source for r in results] == paths  # input order, nothing lost
    failed = [r.source for r in results if r.error is not None]
    assert failed == paths[8:16]  # exactly the poison chunk
    assert all("died on every attempt" in r.error for r in results[8:16])
    assert runner.stats.failed == 8 and runner.stats.images == 24
