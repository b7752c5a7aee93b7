"""Who a track is: temporal voting over its best faces, and anonymous people for the tracks nobody in the gallery is.

Each embedded face of a track asks the gallery (open-set, the gallery's own FPIR threshold) and casts a vote for the
name it gets, or for "unknown", weighted by the face's quality score (``facelens.analyze.quality``): a sharp frontal
face counts more than a blurred profile. The track's identity is the heaviest vote, and its confidence is the
Laplace-smoothed quality-weighted share of that vote, ``(w_winner + 1) / (w_total + 2)``: one good face gives about
2/3, agreeing faces push it towards 1, disagreeing faces pull it down, so it is revised as evidence grows.

Tracks left unknown are grouped into anonymous people ``unknown-1``, ``unknown-2``… across the video: a track's
pooled template joins the anonymous person whose template is most similar if that similarity clears the embedding
model's measured verification threshold (``facelens.decide``), otherwise it starts a new one. Two faces seen in the same
frames are two people (a cannot-link constraint, as in face clustering of video): a track never joins a person one of
whose tracks it overlaps in time. On facenet-pytorch's crowd clip the small faces of passers-by embed close to each
other (similarity ~0.9 against a threshold of 0.907), and without the constraint three people in the first frame
were one ``unknown-1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facelens.video.tracking import Sample, Track

#: A face's vote never weighs less than this, so a track of only poor faces still gets a decision.
MIN_WEIGHT = 0.05
#: Embedded faces kept per track (the best by quality); more adds cost and little evidence.
BEST_FACES = 5


@dataclass(frozen=True)
class Vote:
    """A track's current identity: ``name`` None means unknown to the gallery."""

    name: str | None
    confidence: float
    score: float
    votes: int


def tally(samples: list[Sample]) -> Vote:
    """Quality-weighted vote over a track's embedded faces (see the module docstring)."""
    if not samples:
        return Vote(None, 0.0, 0.0, 0)
    weights: dict[str | None, float] = {}
    sims: dict[str | None, list[float]] = {}
    for s in samples:
        w = max(s.quality, MIN_WEIGHT)
        weights[s.name] = weights.get(s.name, 0.0) + w
        sims.setdefault(s.name, []).append(s.similarity)
    winner = max(weights, key=lambda k: (weights[k], k is not None))
    total = sum(weights.values())
    confidence = (weights[winner] + 1.0) / (total + 2.0)
    return Vote(winner, confidence, float(np.mean(sims[winner])), len(sims[winner]))


@dataclass
class Anonymous:
    label: str
    templates: dict[int, np.ndarray] = field(default_factory=dict)  # track id -> pooled track template
    spans: dict[int, Track] = field(default_factory=dict, repr=False)  # track id -> the track (its frames so far)

    def overlaps(self, track: Track) -> bool:
        """Whether one of this person's tracks was seen in the same frames as ``track``."""
        return any(other.id != track.id and other.first_frame <= track.last_frame and
                   track.first_frame <= other.last_frame for other in self.spans.values())

    @property
    def tracks(self) -> list[int]:
        return sorted(self.templates)

    @property
    def template(self) -> np.ndarray | None:
        if not self.templates:
            return None
        vec = np.mean(np.stack(list(self.templates.values())), axis=0)
        return vec / max(float(np.linalg.norm(vec)), 1e-12)


class UnknownPeople:
    """Online clustering of unknown tracks into ``unknown-N`` labels (see the module docstring)."""

    def __init__(self, threshold: float, prefix: str = "unknown") -> None:
        self.threshold = threshold
        self.prefix = prefix
        self.people: list[Anonymous] = []

    def label_for(self, track: Track) -> str | None:
        """The anonymous label of an unknown track (assigned once, its template refreshed as the track grows)."""
        template = track.template()
        if template is None:
            return None
        current = next((p for p in self.people if track.id in p.templates), None)
        if current is not None:
            current.templates[track.id] = template
            return current.label
        scored = [(float(p.template @ template), p) for p in self.people
                  if p.template is not None and not p.overlaps(track)]
        if scored:
            sim, person = max(scored, key=lambda item: item[0])
            if sim >= self.threshold:
                person.templates[track.id] = template
                person.spans[track.id] = track
                return person.label
        person = Anonymous(f"{self.prefix}-{len(self.people) + 1}", {track.id: template}, {track.id: track})
        self.people.append(person)
        return person.label

    def release(self, track: Track) -> None:
        """A track turned out to be a gallery person: drop it from its anonymous group (an emptied group keeps its
        number, so labels already shown never change meaning)."""
        for person in self.people:
            person.templates.pop(track.id, None)
            person.spans.pop(track.id, None)


def keep_best(samples: list[Sample], new: Sample, limit: int = BEST_FACES) -> bool:
    """Add ``new`` to a track's samples if it is among the ``limit`` best by quality; returns whether it was kept."""
    if len(samples) < limit:
        samples.append(new)
        return True
    worst = min(range(len(samples)), key=lambda i: samples[i].quality)
    if new.quality > samples[worst].quality:
        samples[worst] = new
        return True
    return False
