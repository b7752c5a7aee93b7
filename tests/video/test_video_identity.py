"""Tracking and identity building blocks: association geometry, temporal voting, anonymous clustering."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.types import DetectedFace, Face
from facelens.video.identity import BEST_FACES, UnknownPeople, keep_best, tally
from facelens.video.tracking import Sample, Track, assign, iou_matrix


def _sample(name, quality, similarity=0.95, embedding=None):
    det = DetectedFace(box=np.zeros(4, np.float32), score=1.0, landmarks=np.zeros((5, 2), np.float32))
    vec = np.ones(128, np.float32) / np.sqrt(128) if embedding is None else np.asarray(embedding, np.float32)
    face = Face(detection=det, embedding=vec, model_id="dlib_resnet_v1")
    return Sample(face, quality, 0.0, 0, np.zeros((2, 2, 3), np.uint8), name, similarity)


def test_video_iou_and_assignment():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    b = np.array([[21, 21, 31, 31], [0, 0, 10, 5], [100, 100, 110, 110]], np.float32)
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 1] == pytest.approx(0.5) and iou[1, 0] == pytest.approx(81 / 119)
    assert iou[:, 2].max() == 0.0
    assert sorted(assign(iou, 0.3)) == [(0, 1), (1, 0)]
    assert assign(iou, 0.6) == [(1, 0)]


def test_video_vote_grows_with_agreeing_evidence_and_weighs_quality():
    one = tally([_sample("ada", 0.8)])
    more = tally([_sample("ada", 0.8) for _ in range(4)])
    assert one.name == more.name == "ada"
    assert 0.5 < one.confidence < more.confidence < 1.0
    # a sharp frontal face outweighs two poor ones that disagree
    mixed = tally([_sample("ada", 0.9), _sample(None, 0.2, 0.5), _sample(None, 0.2, 0.5)])
    assert mixed.name == "ada" and mixed.confidence < one.confidence  # disagreement pulls confidence down
    assert tally([_sample(None, 0.5), _sample(None, 0.5)]).name is None
    assert tally([]).confidence == 0.0


def test_video_keep_best_holds_the_highest_quality_faces():
    samples = []
    for q in (0.1, 0.5, 0.3, 0.9, 0.2, 0.7, 0.05):
        keep_best(samples, _sample("x", q))
    assert sorted(s.quality for s in samples) == [0.2, 0.3, 0.5, 0.7, 0.9][-BEST_FACES:]


def _track(track_id, vectors, first=0, last=0):
    track = Track(track_id, np.zeros(4, np.float32), first, first / 25, last, last / 25)
    track.samples = [_sample(None, 0.5, embedding=v) for v in vectors]
    return track


def test_video_unknown_tracks_of_one_person_share_a_label(facenet):
    """Real embeddings: the walker's faces split over two tracks, one after the other, get one label; a person seen
    in the same frames never gets his label, even where the embeddings are alike (with CenterFace boxes the boy
    walking beside him embeds at similarity 0.93 to him with dlib's model, above its threshold of 0.907)."""
    timeline = facenet.timeline
    first_faces = next(r for r in facenet.results if r.faces).faces
    walker_track = int(min(first_faces, key=lambda f: abs((f.box[0] + f.box[2]) / 2 - 960)).track_id)
    walker = next(p for p in timeline.people if walker_track in p.tracks)
    others = [p for p in timeline.people if p.person != walker.person and p.embeddings is not None]
    assert len(walker.embeddings) >= 2 and others
    from facelens.decide import profile

    clusters = UnknownPeople(threshold=profile(timeline.model_id).verify_threshold)
    half = len(walker.embeddings) // 2
    first = clusters.label_for(_track(1, walker.embeddings[:half], 0, 49))
    second = clusters.label_for(_track(2, walker.embeddings[half:], 50, 104))
    assert first == second == "unknown-1"
    for k, other in enumerate(others):  # seen with him in the clip
        assert clusters.label_for(_track(3 + k, other.embeddings, 0, 104)) != first


def test_video_faces_seen_together_are_different_people(hamilton, facenet):
    """Two faces in one frame are two people: no frame shows one label twice (before the cannot-link rule, three
    passers-by in the facenet clip's first frame, and four audience faces in the Hamilton clip's last shot, were each
    one unknown person)."""
    for processed in (hamilton, facenet):
        for result in processed.results:
            labels = [f.person for f in result.faces if f.person]
            assert len(labels) == len(set(labels)), (processed.clip.name, result.index, labels)


def test_video_assignment_is_optimal():
    """``assign`` finds the maximum-total-score matching (checked against every permutation), any shape."""
    from itertools import permutations

    rng = np.random.default_rng(3)
    for n, m in [(1, 1), (2, 3), (3, 2), (4, 4), (5, 3), (3, 6)]:
        for _ in range(20):
            score = rng.random((n, m))
            pairs = assign(score, 0.0)
            assert len(pairs) == min(n, m)
            assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
            if n <= m:
                best = max(sum(score[i, p[i]] for i in range(n)) for p in permutations(range(m), n))
            else:
                best = max(sum(score[p[j], j] for j in range(m)) for p in permutations(range(n), m))
            assert sum(score[r, c] for r, c in pairs) == pytest.approx(best)
