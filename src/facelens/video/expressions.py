"""Expression over time: the engine's expression head on every frame of a track, smoothed, summarised and spotted.

Each followed face gets the analysis task's expression probabilities on every frame (``facelens video --analyze``).
Per track they are smoothed with a centred sliding window (:data:`WINDOW_SECONDS`, as the ABAW video-FER entries
smooth frame-level predictions), then :mod:`facelens.analyze.temporal` gives the share of time per expression
(summary) and the episodes of each non-neutral expression with their onset, apex (peak of the smoothed probability)
and offset, as video frame numbers and seconds. A person's summary pools their tracks' smoothed frames; the video's
pools everyone's. The annotated video shows a trailing (causal) window of the same length, since it is drawn as the
frames go by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facelens.analyze.temporal import episodes, smooth, summarize

#: Length of the smoothing window in seconds of video (5 frames at 25 fps; always an odd number of frames, >= 1).
WINDOW_SECONDS = 0.2


def window_frames(fps: float | None, seconds: float = WINDOW_SECONDS) -> int:
    """The smoothing window in frames for this frame rate (odd, so that it is centred)."""
    frames = max(1, int(round((fps or 25.0) * seconds)))
    return frames if frames % 2 else frames + 1


@dataclass
class ExpressionTrack:
    """A track's per-frame expression probabilities (as the head gave them) with their frame numbers and times."""

    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    probabilities: list[np.ndarray] = field(default_factory=list)

    def add(self, frame: int, time: float, probabilities: np.ndarray) -> None:
        self.frames.append(frame)
        self.times.append(time)
        self.probabilities.append(np.asarray(probabilities, np.float32))

    def __len__(self) -> int:
        return len(self.frames)

    def recent(self, window: int) -> np.ndarray:
        """Mean of the last ``window`` frames' probabilities (what the annotated video shows now)."""
        return np.mean(self.probabilities[-window:], axis=0).astype(np.float32)

    def smoothed(self, window: int) -> np.ndarray:
        return smooth(np.stack(self.probabilities), "window", window=window)


def _neutral(labels: Sequence[str]) -> str | None:
    return "neutral" if "neutral" in labels else None


def _episodes(track: ExpressionTrack, smoothed: np.ndarray, labels: Sequence[str], fps: float) -> list[dict[str, Any]]:
    """Episodes with onset/apex/offset as video frame numbers (the sequence may skip frames the face was lost in)."""
    found = episodes(smoothed, labels, neutral=_neutral(labels), timestamps=track.times)
    out = []
    for e in found:
        record = e.to_dict()
        record.update(onset=track.frames[e.onset], apex=track.frames[e.apex], offset=track.frames[e.offset])
        out.append(record)
    return out


def track_expression(track: ExpressionTrack, labels: Sequence[str], fps: float, window: int) -> dict[str, Any] | None:
    """One track's expression record: summary, episodes and the smoothed series (None when never analysed)."""
    if not len(track):
        return None
    smoothed = track.smoothed(window)
    return {
        "labels": list(labels),
        "window": window,
        "summary": summarize(smoothed, labels, fps=fps).to_dict(),
        "episodes": _episodes(track, smoothed, labels, fps),
        "series": {
            "frame": list(track.frames),
            "time": [round(t, 3) for t in track.times],
            "probabilities": np.round(smoothed.astype(np.float64), 3).tolist(),
        },
    }


def pooled_expression(
    records: Sequence[tuple[int, dict[str, Any]]], labels: Sequence[str], fps: float
) -> dict[str, Any] | None:
    """A person's (or the whole video's) expression: the summary of their tracks' smoothed frames together, and
    every track's episodes (each with its ``track``), in time order. ``records``: (track id, track record)."""
    records = [(tid, r) for tid, r in records if r is not None]
    if not records:
        return None
    frames = np.concatenate([np.asarray(r["series"]["probabilities"], np.float64) for _, r in records])
    found = [{**e, "track": tid} for tid, r in records for e in r["episodes"]]
    return {
        "labels": list(labels),
        "summary": summarize(frames, labels, fps=fps).to_dict(),
        "episodes": sorted(found, key=lambda e: (e["onset_time"], e["label"])),
    }


def episodes_text(record: dict[str, Any] | None) -> str:
    """Episodes in one CSV cell: ``label onset-offset`` (frames), separated by ``;``."""
    if not record:
        return ""
    return "; ".join(f"{e['label']} {e['onset']}-{e['offset']}" for e in record["episodes"])


__all__ = ["WINDOW_SECONDS", "ExpressionTrack", "episodes_text", "pooled_expression", "track_expression", "window_frames"]
