"""The timeline of a video: who appeared when, one row per track, saved as JSON (complete) or CSV (the rows).

Anonymous people keep a few pooled embeddings in the JSON, so ``facelens video enroll TIMELINE unknown-2 --name
Ada`` can add them to a gallery without reprocessing the video.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from facelens.errors import VideoError

CSV_COLUMNS = (
    "person", "track", "first_seen", "last_seen", "frames", "confidence", "score", "named", "thumbnail", "liveness",
    "is_live", "expression", "episodes", "blinks", "blink_times", "liveness_verdict",
)  # fmt: skip


@dataclass(frozen=True)
class TrackRecord:
    """One appearance: a track's person label (gallery name or ``unknown-N``), times in seconds from the start,
    frames in which the face was seen, identity confidence, mean similarity of the winning votes, thumbnail path,
    and with liveness on the mean passive-liveness score of its faces and the decision (None when not checked)."""

    person: str
    track: int
    first_seen: float
    last_seen: float
    frames: int
    confidence: float
    score: float = 0.0
    named: bool = False
    thumbnail: str = ""
    liveness: float | None = None
    is_live: bool | None = None
    expression: dict[str, Any] | None = field(default=None, repr=False)  # with --analyze, see video.expressions
    # with --analyze or --liveness: signal, count, blinks, measured_s (see video.blinks)
    blinks: dict[str, Any] | None = field(default=None, repr=False)
    liveness_verdict: str | None = None  # with --liveness: passive + blinks, see video.blinks.VERDICTS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def csv_row(self) -> dict[str, Any]:
        """The CSV columns: the expression as its dominant label and its episodes in one cell, the blink count
        and the blinks' start times."""
        row = {k: v for k, v in self.to_dict().items() if k not in ("expression", "blinks")}
        row["expression"] = row["episodes"] = row["blinks"] = row["blink_times"] = ""
        if self.expression:
            from facelens.video.expressions import episodes_text

            row["expression"], row["episodes"] = self.expression["summary"]["dominant"], episodes_text(self.expression)
        if self.blinks:
            from facelens.video.blinks import blink_times_text

            row["blinks"], row["blink_times"] = self.blinks["count"], blink_times_text(self.blinks)
        return row


@dataclass(frozen=True)
class PersonRecord:
    """Everything one person (named or anonymous) did in the video; ``embeddings`` only for anonymous people."""

    person: str
    named: bool
    tracks: list[int]
    first_seen: float
    last_seen: float
    frames: int
    confidence: float
    thumbnail: str = ""
    embeddings: list[list[float]] = field(default_factory=list, repr=False)
    expression: dict[str, Any] | None = field(default=None, repr=False)  # summary and episodes over their tracks

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Timeline:
    """Who appeared when. ``complete`` is False when the source ended early (``error`` says why); the rows then
    cover the video up to that point."""

    source: str
    fps: float
    frames: int
    duration: float
    tracks: list[TrackRecord]
    people: list[PersonRecord] = field(default_factory=list)
    model_id: str = ""
    complete: bool = True
    error: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    expression: dict[str, Any] | None = None  # with --analyze: the whole video's expression summary and episodes

    def person(self, label: str) -> PersonRecord:
        for p in self.people:
            if p.person == label:
                return p
        raise KeyError(
            f"no person {label!r} in this timeline (has: {', '.join(p.person for p in self.people) or 'none'})"
        )

    @property
    def names(self) -> list[str]:
        """Gallery names found, in order of first appearance."""
        return [p.person for p in sorted(self.people, key=lambda p: p.first_seen) if p.named]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "fps": self.fps,
            "frames": self.frames,
            "duration": self.duration,
            "complete": self.complete,
            "error": self.error,
            "model_id": self.model_id,
            "tracks": [t.to_dict() for t in self.tracks],
            "people": [p.to_dict() for p in self.people],
            "stats": self.stats,
            "expression": self.expression,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.tracks:
            writer.writerow(row.csv_row())
        return buffer.getvalue()

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON (``.json``) or CSV (``.csv``) by the file's extension."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = self.to_csv() if path.suffix.lower() == ".csv" else self.to_json()
        path.write_text(text, encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timeline:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["tracks"] = [TrackRecord(**t) for t in data.get("tracks", [])]
        values["people"] = [PersonRecord(**p) for p in data.get("people", [])]
        return cls(**values)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Timeline:
        """Read a timeline written by :meth:`save` (a CSV gives the track rows only)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise VideoError(f"{path}: cannot read timeline ({exc.strerror})") from exc
        try:
            if path.suffix.lower() == ".csv":
                rows = list(csv.DictReader(io.StringIO(text)))
                tracks = [_row(r) for r in rows]
                return cls(source=str(path), fps=0.0, frames=0, duration=0.0, tracks=tracks, people=people_of(tracks))
            return cls.from_dict(json.loads(text))
        except (ValueError, TypeError, KeyError) as exc:
            raise VideoError(f"{path}: not a facelens timeline ({exc})") from exc


def _row(r: dict[str, str]) -> TrackRecord:
    return TrackRecord(
        person=r["person"],
        track=int(r["track"]),
        first_seen=float(r["first_seen"]),
        last_seen=float(r["last_seen"]),
        frames=int(r["frames"]),
        confidence=float(r["confidence"]),
        score=float(r.get("score") or 0.0),
        named=str(r.get("named")).lower() == "true",
        thumbnail=r.get("thumbnail") or "",
        liveness=float(r["liveness"]) if r.get("liveness") else None,
        is_live={"true": True, "false": False}.get(str(r.get("is_live")).lower()),
        liveness_verdict=r.get("liveness_verdict") or None,
    )  # the expression and blink records are in the JSON timeline only (the CSV has their summaries)


def people_of(
    tracks: list[TrackRecord],
    embeddings: dict[str, np.ndarray] | None = None,
    thumbnails: dict[str, str] | None = None,
) -> list[PersonRecord]:
    """Per-person summary of track rows (confidence: frame-weighted mean over the person's tracks)."""
    groups: dict[str, list[TrackRecord]] = {}
    for t in tracks:
        groups.setdefault(t.person, []).append(t)
    out = []
    for label, rows in groups.items():
        frames = sum(r.frames for r in rows)
        conf = sum(r.confidence * r.frames for r in rows) / max(frames, 1)
        vectors = (embeddings or {}).get(label)
        out.append(
            PersonRecord(
                person=label,
                named=rows[0].named,
                tracks=[r.track for r in rows],
                first_seen=min(r.first_seen for r in rows),
                last_seen=max(r.last_seen for r in rows),
                frames=frames,
                confidence=round(conf, 4),
                thumbnail=(thumbnails or {}).get(label, max(rows, key=lambda r: r.confidence).thumbnail),
                embeddings=[] if vectors is None else np.round(np.asarray(vectors, float), 6).tolist(),
            )
        )
    return sorted(out, key=lambda p: p.first_seen)
