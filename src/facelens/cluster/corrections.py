"""The user's corrections, stored so that no later clustering run or identification undoes them.

- :func:`name_person`: give a cluster (or anyone) a name; naming it as an existing person merges the two.
- :func:`merge_people`: one person's faces join another's; what was said of the first is said of the second.
- :func:`split_person`: move chosen faces to a new or existing person; they are marked "not" the first.
- :func:`remove_faces`: dismiss faces (not a face, a stranger in the background): they never come back.
- :func:`not_person`: "these faces are not this person": they leave it and never join it again, and
  identification never gives that name to the same face (see ``Gallery.excluded_names``).
- :func:`different_people`: "these two people are different": they can never be merged.

Two faces of one photo are never the same person: a merge or a move that would break that is refused.
Faces are named by their detection id (``facelens cluster`` prints it per face).
"""

from __future__ import annotations

from collections.abc import Sequence

from facelens.errors import GalleryError, NotFoundError
from facelens.gallery.base import Gallery, _check_name, now
from facelens.gallery.library import ASSIGNED, DIFFERENT, NOT_PERSON, PENDING, REMOVED, Detection


def _pid(gallery: Gallery, name: str) -> int:
    found = gallery.person_ids().get(name)
    if found is None:
        raise NotFoundError(f"no person named {name!r} in gallery {gallery.collection!r}")
    return found


def _detections(gallery: Gallery, detection_ids: Sequence[int]) -> list[Detection]:
    wanted = [int(i) for i in detection_ids]
    found = gallery.detections(with_embeddings=True, ids=wanted)
    missing = sorted(set(wanted) - {d.detection_id for d in found})
    if missing:
        raise NotFoundError(f"no detection with id {', '.join(map(str, missing))} in gallery {gallery.collection!r}")
    return found


def _check_photos(moving: Sequence[Detection], staying: Sequence[Detection], target: str) -> None:
    clash = sorted({d.path for d in moving} & {d.path for d in staying})
    if clash:
        raise GalleryError(f"{target!r} already has a face in {clash[0]}" + (f" and {len(clash) - 1} more photos"
                           if len(clash) > 1 else "") + ": two faces of one photo are never the same person")


def _drop_empty_clusters(gallery: Gallery) -> None:
    """An anonymous cluster whose faces all left is no person any more."""
    from facelens.cluster.library import is_anonymous

    for person in gallery.people():
        if person.face_count == 0 and is_anonymous(person.name):
            gallery.remove(person.name)


def are_different(gallery: Gallery, a: str, b: str) -> bool:
    pa, pb = _pid(gallery, a), _pid(gallery, b)
    return (DIFFERENT, min(pa, pb), max(pa, pb)) in set(gallery.constraints())


def merge_people(gallery: Gallery, source: str, target: str) -> int:
    """Move every face of ``source`` to ``target`` and remove ``source``; returns how many faces moved."""
    if source == target:
        raise GalleryError("cannot merge a person with themselves")
    source_id, target_id = _pid(gallery, source), _pid(gallery, target)
    if are_different(gallery, source, target):
        raise GalleryError(f"{source!r} and {target!r} were marked different people; a merge would undo that")
    moving = gallery.detections(with_embeddings=True, person=source)
    _check_photos(moving, gallery.detections(person=target), target)
    linked = {d.face_id for d in moving}
    enrolled = [f for f in gallery.faces(source, with_embeddings=True) if f.face_id not in linked]
    if enrolled:  # faces enrolled from photos outside the library travel as they are
        import numpy as np

        gallery.add_faces(target, np.stack([f.embedding for f in enrolled]),
                          [{"source": f.source, "content_hash": f.content_hash, "box": f.box, "score": f.score}
                           for f in enrolled])
    gallery.assign_detections(target, moving)
    with gallery._library() as (conn, sql):
        sql.move_person_constraints(conn, source_id, target_id, now())
    gallery.remove(source)
    return len(moving) + len(enrolled)


def name_person(gallery: Gallery, person: str, name: str) -> str:
    """Name a person (a cluster ``unknown-N`` typically): every face in it is enrolled under ``name``. Naming it as
    someone who exists already merges the two."""
    name = _check_name(name)
    if name == person:
        return name
    if name in gallery.person_ids():
        merge_people(gallery, person, name)
    else:
        gallery.rename(person, name)
    return name


def split_person(gallery: Gallery, person: str, detection_ids: Sequence[int], into: str | None = None) -> str:
    """Move these faces of ``person`` to ``into`` (an existing person or a new name; default a new ``unknown-N``).
    The faces are marked not ``person``, and a new person is marked different from ``person``."""
    from facelens.cluster.library import next_anonymous

    person_id = _pid(gallery, person)
    moving = _detections(gallery, detection_ids)
    strangers = [d.detection_id for d in moving if d.person != person]
    if strangers:
        raise GalleryError(f"detections {strangers} are not faces of {person!r}")
    people = gallery.person_ids()
    target = _check_name(into) if into is not None else next_anonymous(people)()
    if target == person:
        raise GalleryError("split needs another person to move the faces to")
    existed = target in people
    if existed:
        _check_photos(moving, gallery.detections(person=target), target)
    gallery.assign_detections(target, moving)
    stamp = now()
    with gallery._library() as (conn, sql):
        for d in moving:
            sql.add_constraint(conn, NOT_PERSON, d.detection_id, person_id, stamp)
        if not existed:
            sql.add_constraint(conn, DIFFERENT, person_id, _pid(gallery, target), stamp)
    _drop_empty_clusters(gallery)
    return target


def remove_faces(gallery: Gallery, detection_ids: Sequence[int]) -> int:
    """Dismiss faces: they leave their person and never cluster or enrol again."""
    found = _detections(gallery, detection_ids)
    gallery.set_detection_state([d.detection_id for d in found], REMOVED)
    _drop_empty_clusters(gallery)
    return len(found)


def not_person(gallery: Gallery, detection_ids: Sequence[int], person: str) -> int:
    """"These faces are not ``person``": those that are leave it (to wait for the next clustering run, which never
    puts them back), and identification never names the same face ``person``. Returns how many left."""
    person_id = _pid(gallery, person)
    found = _detections(gallery, detection_ids)
    stamp = now()
    with gallery._library() as (conn, sql):
        for d in found:
            sql.add_constraint(conn, NOT_PERSON, d.detection_id, person_id, stamp)
    leaving = [d.detection_id for d in found if d.person == person and d.state == ASSIGNED]
    if leaving:
        gallery.set_detection_state(leaving, PENDING)
        _drop_empty_clusters(gallery)
    return len(leaving)


def different_people(gallery: Gallery, a: str, b: str) -> None:
    """"These two people are different": a merge of them is refused from now on."""
    if a == b:
        raise GalleryError("a person cannot be different from themselves")
    gallery.add_constraint(DIFFERENT, _pid(gallery, a), _pid(gallery, b))
