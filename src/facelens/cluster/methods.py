"""Clustering methods on embeddings, with cannot-link constraints: faces of one photo never share a person, and a
face never joins a person it was marked "not this person" for.

- ``hdbscan`` (the default): scikit-learn's HDBSCAN (excess of mass) on the new faces together with those that
  already have a person; each cluster is then cut by average linkage at ``LINK_CUT`` (dlib's; other models' at
  the same false-match rate, :func:`distances_for`) (HDBSCAN alone chains
  look-alikes: BCubed precision 0.887 → 0.970 on LFW with the cut) and split where it holds a cannot-link pair
  (greedy, nearest to its centre first).
- ``incremental``: Immich's rule. Each face looks for neighbours within ``eps``; it joins the person of its
  nearest neighbour that has one (a person of the gallery or one made earlier in this run), or, with at least
  ``min_size`` neighbours (itself included), starts a new person; the rest are tried once more at the end (their
  "nightly pass") and otherwise wait for a later run.

Both take unit vectors and Euclidean distances (for unit vectors ``d = sqrt(2 - 2 cos)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

METHODS = ("hdbscan", "incremental")
#: Smallest group that becomes a person, per method. Measured on the 1,926 LFW DevTest images (BCubed F, see
#: ``python benchmarks/cluster.py --sweep``): HDBSCAN with 2 beats 3 (0.940 vs 0.909 at a 0.40 cut); the
#: incremental rule keeps Immich's 3 (with 2 every look-alike pair starts a person).
MIN_SIZE = {"hdbscan": 2, "incremental": 3}
#: Average-linkage distance at which an HDBSCAN cluster is cut (unit vectors; the dlib ResNet verify threshold,
#: cos 0.9066, is distance 0.432). BCubed F on the 1,926 LFW DevTest images for cuts 0.33 / 0.35 / 0.36 / 0.38 /
#: 0.40: 0.924 / 0.946 / 0.951 / 0.945 / 0.940 in one run, and 0.927 / 0.948 / 0.950 / 0.931 / 0.908 when the
#: library comes in two halves (every other file, then the rest): 0.36 keeps a split library as good as a whole one.
LINK_CUT = 0.36
#: Neighbour distance of the incremental rule for dlib ResNet unit vectors (cos 0.946), chosen by BCubed F on LFW
#: DevTest: eps 0.30 / 0.33 / 0.36 / 0.40 gave 0.851 / 0.895 / 0.885 / 0.611 (Immich's 0.5 merges nearly all).
INCREMENTAL_EPS = 0.33
#: The model the two distances above were measured on. A known person takes part in an HDBSCAN run only with a
#: face within the cut of a new face (a new face farther from every face of a cluster cannot end up in it): on the
#: 1,926 LFW images split in halves the second run's BCubed F is the same with and without this (0.950).
MEASURED_ON = "dlib_resnet_v1"


def distances_for(model_id: str | None) -> dict[str, float]:
    """Each method's distance for ``model_id``'s vectors: dlib's measured cut and eps carried over at the same
    impostor false-match rate (each model's measured profile, :mod:`facelens.decide`), since what a distance means
    differs between models (SFace's different-person pairs sit far lower than dlib's). None: dlib's own."""
    if model_id is None or model_id == MEASURED_ON:
        return {"hdbscan": LINK_CUT, "incremental": INCREMENTAL_EPS}
    from facelens.decide import profile, similarity_to_distance

    measured, target = profile(MEASURED_ON), profile(model_id)
    out = {}
    for method, distance in (("hdbscan", LINK_CUT), ("incremental", INCREMENTAL_EPS)):
        fmr = measured.fmr_at(1.0 - distance * distance / 2.0)
        out[method] = similarity_to_distance(target.threshold_for_fmr(fmr))
    return out


@dataclass
class Problem:
    """Faces to cluster (``vectors``, their ``photos``) and faces that already have a person (``known_*``)."""

    vectors: np.ndarray  # [n, d] unit
    photos: np.ndarray  # [n] photo id per face
    known_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # [m, d]
    known_people: Sequence[str] = ()  # [m]
    known_photos: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # [m]
    banned: list[set[str]] | None = None  # per face: people it must not join

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, np.float32).reshape(len(self.vectors), -1)
        self.photos = np.asarray(self.photos, np.int64)
        if self.banned is None:
            self.banned = [set() for _ in range(len(self.vectors))]
        if len(self.known_vectors) == 0:
            self.known_vectors = np.zeros((0, self.vectors.shape[1]), np.float32)
        # faces of a photo that already has a person cannot join that person
        taken: dict[int, set[str]] = {}
        for photo, person in zip(np.asarray(self.known_photos).tolist(), self.known_people):
            taken.setdefault(photo, set()).add(person)
        for i, photo in enumerate(self.photos.tolist()):
            self.banned[i] |= taken.get(photo, set())


@dataclass
class Outcome:
    """Per face: ``person`` (an existing person it joins) or ``group`` (a new person, numbered from 0), or neither."""

    person: list[str | None]
    group: np.ndarray  # int [n], -1: none

    @property
    def labels(self) -> np.ndarray:
        """One label per face for evaluation: groups as numbers, existing people after them, -1 for none."""
        names = {name: i for i, name in enumerate(sorted({p for p in self.person if p is not None}))}
        offset = int(self.group.max()) + 1 if len(self.group) else 0
        return np.array([names[p] + offset if p is not None else g for p, g in zip(self.person, self.group)], np.int64)


def cluster(problem: Problem, method: str = "hdbscan", min_size: int | None = None, eps: float | None = None,
            model_id: str | None = None) -> Outcome:
    """``eps``: the incremental rule's neighbour distance, or HDBSCAN's average-linkage cut (default: the method's
    distance for ``model_id``'s vectors, see :func:`distances_for`)."""
    if method not in METHODS:
        raise ValueError(f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)}")
    size = MIN_SIZE[method] if min_size is None else min_size
    if size < 2:
        raise ValueError(f"a cluster needs at least 2 faces, got min_size {size}")
    distance = distances_for(model_id)[method] if eps is None else eps
    if method == "hdbscan":
        return hdbscan(problem, size, distance)
    if method == "incremental":
        return incremental(problem, size, distance)
    raise ValueError(f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)}")


def hdbscan(problem: Problem, min_size: int = 2, cut: float = LINK_CUT) -> Outcome:
    """Clusters over the new faces together with the faces that already have a person (so a run over a library
    in parts finds what one run over all of it would): a cluster holding known faces gives its new faces to their
    person (majority, never one banned for the face), one with none becomes a new group. Known faces never move."""
    from collections import Counter

    from sklearn.cluster import HDBSCAN

    n = len(problem.vectors)
    group = np.full(n, -1, np.int64)
    person: list[str | None] = [None] * n
    near = _near_known(problem, cut)
    m = len(near)
    known_people = [problem.known_people[j] for j in near.tolist()]
    vectors = np.concatenate([problem.known_vectors[near], problem.vectors]) if m else problem.vectors
    photos = np.concatenate([np.asarray(problem.known_photos, np.int64)[near], problem.photos]) if m else problem.photos
    if n == 0 or n + m < min_size:
        return Outcome(person, group)
    labels = HDBSCAN(min_cluster_size=min_size, min_samples=1, metric="euclidean",
                     cluster_selection_method="eom", copy=True).fit_predict(vectors)
    labels = _split_conflicts(vectors, photos, _cut(vectors, labels, cut))
    taken: dict[int, set[str]] = {}  # people given a face of each photo in this run
    next_group = 0
    for label in sorted(set(labels.tolist()) - {-1}):
        members = np.flatnonzero(labels == label)
        known, new = members[members < m], members[members >= m] - m
        if len(known):
            votes = Counter(known_people[j] for j in known.tolist()).most_common()
            for i in new.tolist():
                banned = problem.banned[i] | taken.get(int(problem.photos[i]), set())
                choice = next((name for name, _ in votes if name not in banned), None)
                if choice is not None:
                    person[i] = choice
                    taken.setdefault(int(problem.photos[i]), set()).add(choice)
        elif len(new) >= min_size:
            group[new] = next_group
            next_group += 1
    return Outcome(person, group)


def _near_known(problem: Problem, reach: float) -> np.ndarray:
    """Indices of the faces of every known person with a face within ``reach`` of some new face: the only people
    a new face can join, so a run that adds a few photos to a large library clusters a neighbourhood, not all."""
    m = len(problem.known_vectors)
    if m == 0 or len(problem.vectors) == 0:
        return np.zeros(0, np.int64)
    limit = 1.0 - reach * reach / 2.0
    close = np.zeros(m, bool)
    for start in range(0, m, 4096):
        close[start : start + 4096] = (problem.known_vectors[start : start + 4096] @ problem.vectors.T).max(axis=1) >= limit
    people = {problem.known_people[j] for j in np.flatnonzero(close).tolist()}
    return np.array([j for j, name in enumerate(problem.known_people) if name in people], np.int64)


def _cut(vectors: np.ndarray, labels: np.ndarray, cut: float) -> np.ndarray:
    """Each cluster cut into its average-linkage subclusters at distance ``cut``."""
    from sklearn.cluster import AgglomerativeClustering

    out = np.full(len(labels), -1, np.int64)
    next_label = 0
    for label in sorted(set(labels.tolist()) - {-1}):
        members = np.flatnonzero(labels == label)
        parts = np.zeros(len(members), np.int64)
        if len(members) > 1:
            parts = AgglomerativeClustering(n_clusters=None, distance_threshold=cut,
                                            linkage="average").fit_predict(vectors[members])
        out[members] = parts + next_label
        next_label += int(parts.max()) + 1
    return out


def _split_conflicts(vectors: np.ndarray, photos: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each cluster as groups with no two faces of one photo: faces nearest the centre first, each into the first
    group it does not conflict with."""
    out = np.full(len(labels), -1, np.int64)
    next_group = 0
    for label in sorted(set(labels.tolist()) - {-1}):
        members = np.flatnonzero(labels == label)
        centre = vectors[members].mean(axis=0)
        members = members[np.argsort(-(vectors[members] @ centre))]
        groups: list[list[int]] = []
        seen: list[set[int]] = []
        for i in members.tolist():
            for g, taken in enumerate(seen):
                if photos[i] not in taken:
                    groups[g].append(i)
                    taken.add(int(photos[i]))
                    break
            else:
                groups.append([i])
                seen.append({int(photos[i])})
        for members_of in groups:
            out[members_of] = next_group
            next_group += 1
    return out


def incremental(problem: Problem, min_size: int = 3, eps: float = INCREMENTAL_EPS) -> Outcome:
    n, m = len(problem.vectors), len(problem.known_vectors)
    everything = np.concatenate([problem.known_vectors, problem.vectors]) if m else problem.vectors
    # owner of each face in ``everything``: a person name, a new group (int), or None; filled as the run goes
    owner: list[str | int | None] = [*problem.known_people, *([None] * n)]
    photo_of = np.concatenate([np.asarray(problem.known_photos, np.int64), problem.photos])
    limit = 1.0 - eps * eps / 2.0  # cosine at distance eps
    new_groups = 0
    deferred: list[int] = []

    # every face's neighbours within eps, nearest first, in blocks of new faces (one matrix product per block)
    close_to: list[np.ndarray] = []
    for start in range(0, n, 1024):
        sims = problem.vectors[start : start + 1024] @ everything.T
        for row in sims:
            close = np.flatnonzero(row >= limit)
            close_to.append(close[np.argsort(-row[close])])
    in_photo: dict[int, list[int]] = {}
    for j, photo in enumerate(photo_of.tolist()):
        in_photo.setdefault(photo, []).append(j)

    def neighbours(i: int) -> np.ndarray:
        return close_to[i]

    def taken_in_photo(i: int) -> set[str | int]:
        return {owner[j] for j in in_photo[int(problem.photos[i])] if owner[j] is not None and j != m + i}

    def join(i: int, close: np.ndarray) -> bool:
        banned: set = problem.banned[i] | taken_in_photo(i)
        for j in close.tolist():
            if j != m + i and owner[j] is not None and owner[j] not in banned:
                owner[m + i] = owner[j]
                return True
        return False

    for i in range(n):
        close = neighbours(i)
        if join(i, close):
            continue
        if len(close) >= min_size:
            owner[m + i] = new_groups
            new_groups += 1
        else:
            deferred.append(i)
    for i in deferred:  # the second pass: join a person now within reach, never start one
        join(i, neighbours(i))
    person: list[str | None] = []
    group = np.full(n, -1, np.int64)
    for i in range(n):
        label = owner[m + i]
        if isinstance(label, int):
            group[i] = label
            person.append(None)
        else:
            person.append(label)
    return Outcome(person, group)
