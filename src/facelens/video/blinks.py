"""Blinks per track in video, and the active evidence they add to a track's passive liveness.

With ``analyze`` or ``liveness``, every followed face gets its eye openness measured on every frame by the active
check's signal (:func:`facelens.liveness.active.eye_openness`: ``blendshapes`` by default when LiteRT is installed,
else ``ear``), and each track's blinks are found in that series by the same algorithm as ``facelens liveness CLIP``
(:func:`facelens.liveness.active.find_blinks`). The timeline row carries them as ``blinks``: the signal, the count,
each blink's start/end (seconds and video frames) and the seconds over which the eyes were measured.

With ``liveness`` the row also gets ``liveness_verdict``, the passive decision combined with that evidence by
:func:`liveness_verdict`. Blinking is evidence for a live face, but its *absence* is only evidence over a long
enough span: people at rest blink about 15-20 times a minute, with gaps mostly under 10 s (longer when reading or
concentrating), so a track seen for a few seconds without a blink says nothing, while one followed for
:data:`NO_BLINK_SPAN_S` or more without any is reported as passive-live-but-no-blink. No span is turned into a
pass or a fail that was not measured: the rule, the count and the span are all in the row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facelens.liveness.active import check_signal, eye_openness, find_blinks
from facelens.result import Faces

#: Seconds of measured eyes without a blink after which a passive pass is reported as ``no_blink``.
NO_BLINK_SPAN_S = 10.0

#: ``liveness_verdict`` values: what the passive check and the blinks say together.
VERDICTS = {
    "live": "passive pass and at least one blink",
    "no_blink": f"passive pass but no blink over {NO_BLINK_SPAN_S:g} s or more of measured eyes",
    "passive_only": f"passive pass, no blink yet, eyes measured for less than {NO_BLINK_SPAN_S:g} s: not enough "
    "to judge actively",
    "spoof": "passive fail (blinks do not overrule it: a replayed video blinks too)",
}


def liveness_verdict(passive_live: bool | None, blinks: dict[str, Any] | None) -> str | None:
    """The track's verdict (a key of :data:`VERDICTS`) from its passive decision and its blink record; None when
    the passive check never ran on it."""
    if passive_live is None:
        return None
    if not passive_live:
        return "spoof"
    if blinks is not None and blinks["count"] > 0:
        return "live"
    if blinks is not None and blinks["measured_s"] >= NO_BLINK_SPAN_S:
        return "no_blink"
    return "passive_only"


@dataclass
class EyeSeries:
    """One track's eye openness per frame it was measured in."""

    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    openness: list[float] = field(default_factory=list)


class BlinkCounter:
    """Eye openness of every followed face on every frame, per track; blinks per track at the end."""

    def __init__(self, signal: str | None = None) -> None:
        self.signal = check_signal(signal)
        self.tracks: dict[int, EyeSeries] = {}

    def observe(self, image: np.ndarray, faces: Faces, track_ids: list[int], index: int, now: float) -> None:
        """Measure the eyes of this frame's followed faces (rows of ``faces``, one per id in ``track_ids``)."""
        if not track_ids:
            return
        values = eye_openness(self.signal, image, faces.detections())
        for track_id, value in zip(track_ids, values):
            series = self.tracks.setdefault(int(track_id), EyeSeries())
            series.frames.append(index)
            series.times.append(now)
            series.openness.append(float(value))

    def record(self, track_id: int) -> dict[str, Any] | None:
        """The track's blink record for the timeline (None when its eyes were never measured)."""
        series = self.tracks.get(int(track_id))
        if series is None or not series.frames:
            return None
        times = np.asarray(series.times, np.float64)
        found = find_blinks(times, np.asarray(series.openness), frames=np.asarray(series.frames))
        return {
            "signal": self.signal,
            "count": len(found),
            "blinks": found,
            "measured_s": round(float(times[-1] - times[0]), 3),
            "frames": len(series.frames),
        }


def blink_times_text(record: dict[str, Any] | None) -> str:
    """Blink start times in one CSV cell (seconds, separated by ``;``)."""
    if not record:
        return ""
    return "; ".join(f"{b['start']:.2f}" for b in record["blinks"])


__all__ = ["NO_BLINK_SPAN_S", "VERDICTS", "BlinkCounter", "blink_times_text", "liveness_verdict"]
