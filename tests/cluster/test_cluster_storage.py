"""The photo library's storage on both backends (folder and PostgreSQL), with real LFW embeddings and no model
run: photos and detections stored, clustered into anonymous people, corrected, a changed photo replaced."""

from __future__ import annotations

import numpy as np


def _photos(lfw_split, people: int = 3, each: int = 4):
    from facelens.gallery.library import ScannedFace, ScannedPhoto

    by_person, vectors = lfw_split
    out, truth = [], []
    for person in sorted(by_person)[:people]:
        for path in [p for p in by_person[person] if p in vectors][:each]:
            out.append(ScannedPhoto(path, 1.0, 100, f"hash-{path}", [ScannedFace([10, 10, 90, 90], 1.0, 0.8, vectors[path])]))
            truth.append(person)
    return out, truth


def test_library_storage_cluster_and_corrections(gallery_at, lfw_split):
    from facelens.cluster import cluster_pending, merge_people, name_person, not_person, split_person
    from facelens.gallery import open_gallery

    photos, truth = _photos(lfw_split)
    with open_gallery(**gallery_at("library")) as g:
        ids = g.library_put(photos)
        assert [len(i) for i in ids] == [1] * len(photos)
        assert set(g.library_photos()) == {p.path for p in photos}
        report = cluster_pending(g)
        people = {d.detection_id: d.person for d in g.detections()}
        assert report.clustered + report.attached + report.unclustered == len(photos)
        assert len({p for p in people.values() if p}) >= 2
        assert g.face_count() == sum(p is not None for p in people.values())
        # each cluster holds one true person
        by_cluster: dict[str, set[str]] = {}
        for (detection, person), who in zip(sorted(people.items()), truth):
            if person:
                by_cluster.setdefault(person, set()).add(who)
        assert all(len(v) == 1 for v in by_cluster.values())

        first, second = sorted(by_cluster)[:2]
        members = [d.detection_id for d in g.detections(person=first)]
        moved = split_person(g, first, members[:1])
        assert [d.detection_id for d in g.detections(person=moved)] == members[:1]
        assert not_person(g, members[1:2], first) == 1
        name_person(g, second, "Bea")
        bea = {d.detection_id for d in g.detections(person="Bea")}
        merge_people(g, moved, "Bea")
        assert bea | set(members[:1]) == {d.detection_id for d in g.detections(person="Bea")}
        assert moved not in g.person_ids()
        marked = g.detections(with_embeddings=True, ids=members[1:2])[0]
        assert first in {c.name for c in g.search(marked.embedding[None], k=5)[0]}
        assert first not in {c.name for c in g.drop_excluded(marked.embedding[None], g.search(marked.embedding[None], k=5))[0]}

        cluster_pending(g)
        assert g.detections(ids=members[1:2])[0].person != first
        # a changed photo: its old detection and face go, the new one waits
        changed = photos[0]
        from dataclasses import replace

        before = g.face_count()
        had_face = g.detections(ids=ids[0])[0].face_id is not None
        g.library_put([replace(changed, content_hash="other", mtime=2.0)])
        assert ids[0][0] not in {d.detection_id for d in g.detections()}
        assert g.face_count() == before - int(had_face)
        assert np.isclose(g.library_photos()[changed.path].mtime, 2.0)
