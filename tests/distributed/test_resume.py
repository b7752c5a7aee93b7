"""A re-run skips what is done: images the gallery already holds for their person are never dispatched (to Ray or
to the local pool), after a complete run and after an interrupted one; what is left is computed and the gallery
ends as a single complete run leaves it."""

from __future__ import annotations

import pytest

import facelens
from facelens.distributed.resume import ALREADY_ENROLLED
from enrol_checks import assert_same, gallery_faces

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")]


class Interrupted(Exception):
    pass


def counting_runner(**options):
    """A RayRunner that records every image it is given to dispatch."""
    from facelens.distributed.runner import RayRunner

    class Counting(RayRunner):
        def chunks_with_sink(self, plan, batches, sink=None, tags=None):
            batches = [list(b) for b in batches]
            self.dispatched = getattr(self, "dispatched", []) + [s for b in batches for s in b]
            yield from super().chunks_with_sink(plan, batches, sink, tags)

    return Counting(**options)


def interrupt_after(count: int):
    def progress(done, _total):
        if done >= count:
            raise Interrupted
    return progress


def not_added(results) -> list[str]:
    return [s["source"] for r in results for s in r.skipped]


def test_rerun_after_a_complete_ray_run_dispatches_only_what_left_no_face(ray_cluster, lfw_people, local_enrol,
                                                                          tmp_path):
    people = lfw_people[:6]
    location = str(tmp_path / "gallery")
    first = facelens.enroll_people(location, people, runner=counting_runner(workers=2))
    enrolled = gallery_faces(location)
    again_runner = counting_runner(workers=2)
    again = facelens.enroll_people(location, people, runner=again_runner)
    # only the images that left nothing in the gallery (no face, several faces) go out again
    assert again_runner.dispatched == not_added(first)
    assert sum(len(r.added) for r in again) == 0
    skipped = {s["source"]: s["reason"] for r in again for s in r.skipped}
    assert sum(reason == ALREADY_ENROLLED for reason in skipped.values()) == len(enrolled)
    assert again_runner.stats.skipped == len(enrolled) and again_runner.stats.images == len(not_added(first))
    assert "already done, skipped" in again_runner.stats.line()
    assert gallery_faces(location).keys() == enrolled.keys()


def test_rerun_after_an_interrupted_ray_run_computes_only_the_rest(ray_cluster, lfw_people, local_enrol, tmp_path):
    people = lfw_people[:10]
    total = sum(len(images) for _, images in people)
    location = str(tmp_path / "gallery")
    with pytest.raises(Interrupted):
        facelens.enroll_people(location, people, runner=counting_runner(workers=2),
                               progress=interrupt_after(total // 2))
    partial = gallery_faces(location)
    assert 0 < len(partial) < total  # the interruption left some people written, not all
    runner = counting_runner(workers=2)
    facelens.enroll_people(location, people, runner=runner)
    assert len(runner.dispatched) == total - len(partial)  # the done images were not sent again
    assert not {source for _, source in partial} & set(runner.dispatched)
    names = {name for name, _ in people}
    local = {key: value for key, value in gallery_faces(local_enrol[0]).items() if key[0] in names}
    assert_same(local, gallery_faces(location))  # the resumed gallery is the one a single run makes, bit for bit


def test_local_rerun_skips_what_is_done(lfw_people, local_enrol, tmp_path, monkeypatch):
    """The same code path without Ray: the local pool is given only what is not done."""
    from facelens.engine import FaceAnalyzer

    people = lfw_people[:10]
    total = sum(len(images) for _, images in people)
    location = str(tmp_path / "gallery")
    with pytest.raises(Interrupted):
        facelens.enroll_people(location, people, workers=1, progress=interrupt_after(total // 2))
    partial = gallery_faces(location)
    assert 0 < len(partial) < total
    given: list = []
    run = FaceAnalyzer.run

    def counted(self, images, progress=None):
        images = list(images)
        given.extend(images)
        return run(self, images, progress)

    monkeypatch.setattr(FaceAnalyzer, "run", counted)
    results = facelens.enroll_people(location, people, workers=1)
    assert len(given) == total - len(partial)
    assert sum(s["reason"] == ALREADY_ENROLLED for r in results for s in r.skipped) == len(partial)
    names = {name for name, _ in people}
    local = {key: value for key, value in gallery_faces(local_enrol[0]).items() if key[0] in names}
    assert_same(local, gallery_faces(location))
