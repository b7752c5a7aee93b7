"""One result type per image: :class:`ImageResult` holding its faces as one :class:`Faces` of parallel columns.

Every stage fills its own column (the detector box/score/landmarks, the embedder ``embedding``, identification
``name``/``identity_score``/``threshold``/``candidates``, the analysis heads, liveness, tracking); a column is
``None`` when its stage did not run. ``faces[mask]``, ``faces[[2, 0]]`` and ``faces[1:]`` give ``Faces``;
``faces[i]`` and iteration give :class:`FaceResult` records. ``to_dict`` is the one JSON form every door emits,
and :func:`json_schema` (or the ``ImageRecord`` TypedDict with ``pydantic.TypeAdapter``) is its schema.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from typing_extensions import NotRequired, TypedDict

from facelens.types import BoxGeometry, DetectedFace

# -- the JSON form (also the service's schema) -----------------------------------------------------------


class CandidateRecord(TypedDict):
    name: str
    score: float
    face_id: int


class IdentityRecord(TypedDict):
    name: str | None
    label: str
    score: float
    threshold: float
    candidates: list[CandidateRecord]


class AdaptedExpressionRecord(TypedDict):
    method: str
    label: str
    score: float
    probabilities: dict[str, float]


class ExpressionRecord(TypedDict):
    label: str
    score: float
    probabilities: dict[str, float]
    adapted: NotRequired[AdaptedExpressionRecord]  # after test-time adaptation to the subject (facelens.analyze.adapt)


class AgeRecord(TypedDict):
    years: float
    confidence: float


class GenderRecord(TypedDict):
    label: str
    confidence: float


class PoseRecord(TypedDict):
    yaw: float
    pitch: float
    roll: float


class QualityRecord(TypedDict):
    score: float
    components: dict[str, float]
    sharpness: float
    brightness: float
    clipped: float
    face_size: float
    pose: PoseRecord
    reasons: list[str]


class LivenessRecord(TypedDict):
    score: float
    is_live: bool


class HeadRecord(TypedDict):
    name: str
    label: str | None
    score: float
    probabilities: dict[str, float]
    from_base: bool


class FaceRecord(TypedDict):
    """One face: only the keys of the stages that ran."""

    box: list[float]
    score: float
    landmarks: list[list[float]]
    landmarks68: NotRequired[list[list[float]]]
    embedding: NotRequired[list[float]]
    identity: NotRequired[IdentityRecord]
    quality: NotRequired[QualityRecord]
    expression: NotRequired[ExpressionRecord]
    blendshapes: NotRequired[dict[str, float]]
    action_units: NotRequired[dict[str, float]]
    age: NotRequired[AgeRecord]
    gender: NotRequired[GenderRecord]
    liveness: NotRequired[LivenessRecord]
    head: NotRequired[HeadRecord]
    track_id: NotRequired[int]
    errors: NotRequired[dict[str, str]]


class ImageRecord(TypedDict):
    path: str
    width: int
    height: int
    faces: list[FaceRecord]
    error: str | None
    model_id: NotRequired[str]  # the model of the faces' embeddings, when they are in the record


def json_schema(record: type = ImageRecord) -> dict[str, Any]:
    """JSON schema of an image (default) or face record, generated from the TypedDicts above."""
    from pydantic import TypeAdapter

    return TypeAdapter(record).json_schema()


# -- columns ------------------------------------------------------------------------------------------------


def _round(values: Any, digits: int) -> Any:
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


def _column(values: Sequence[Any]) -> np.ndarray:
    """An object column (names, per-face structures) that numpy will not try to broadcast."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


#: Columns that hold one entry per face (everything except ``model_id`` and ``expression_labels``).
_PER_FACE = (
    "box", "score", "landmarks", "landmarks68", "embedding", "name", "identity_score", "threshold", "candidates",
    "quality", "expression", "blendshapes", "age", "age_confidence", "gender", "gender_confidence", "liveness_score",
    "is_live", "head", "track_id", "person", "errors", "expression_features", "expression_adapted",
)  # fmt: skip


@dataclass
class Faces:
    """The faces of one image as parallel columns (largest first as detected). ``None`` = stage did not run.

    ``quality`` holds :class:`facelens.analyze.quality.Quality` objects, ``candidates`` lists of
    :class:`facelens.gallery.Candidate`, ``head`` custom-head results, ``errors`` a dict ``{head: message}`` per
    face (``None`` where every head answered).
    """

    box: np.ndarray  # float32 [n, 4] x1, y1, x2, y2
    score: np.ndarray  # float32 [n] detector confidence
    landmarks: np.ndarray  # float32 [n, 5, 2] (facelens.types.LANDMARK_ORDER)
    landmarks68: np.ndarray | None = None  # float32 [n, 68, 2]
    embedding: np.ndarray | None = None  # float32 [n, d], L2-normalised
    model_id: str | None = None  # the embedding model
    name: np.ndarray | None = None  # object [n]: the person, None = unknown
    identity_score: np.ndarray | None = None  # float32 [n] best candidate's similarity
    threshold: np.ndarray | None = None  # float32 [n] the open-set threshold applied
    candidates: np.ndarray | None = None  # object [n] of list[Candidate]
    quality: np.ndarray | None = None  # object [n] of Quality
    expression: np.ndarray | None = None  # float32 [n, len(expression_labels)] probabilities
    expression_labels: tuple[str, ...] = ()
    expression_features: np.ndarray | None = None  # float32 [n, d] the expression model's features (adaptation only)
    expression_adapted: np.ndarray | None = None  # float32 [n, len(expression_labels)] after adapting to the subject
    adapt_method: str | None = None  # the adaptation method of expression_adapted
    blendshapes: np.ndarray | None = None  # float32 [n, 52] (facelens.analyze.blendshapes.BLENDSHAPES order)
    age: np.ndarray | None = None  # float32 [n] years
    age_confidence: np.ndarray | None = None
    gender: np.ndarray | None = None  # object [n] "male" / "female"
    gender_confidence: np.ndarray | None = None
    liveness_score: np.ndarray | None = None  # float32 [n] 0..1, higher = live
    is_live: np.ndarray | None = None  # bool [n]
    head: np.ndarray | None = None  # object [n] of HeadResult
    track_id: np.ndarray | None = None  # int64 [n]
    person: np.ndarray | None = None  # object [n]: who a track is across a video (a name or unknown-N)
    errors: np.ndarray | None = None  # object [n] of dict[str, str] | None

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, np.float32).reshape(-1, 4)
        n = len(self.box)
        self.score = np.asarray(self.score, np.float32).reshape(n)
        self.landmarks = np.asarray(self.landmarks, np.float32).reshape(n, 5, 2)
        for name in _PER_FACE:
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"Faces column {name!r} has {len(value)} rows for {n} faces")

    def __repr__(self) -> str:
        ran = [name for name in _PER_FACE[3:] if getattr(self, name) is not None]
        return f"Faces(n={len(self)}, columns={['box', 'score', 'landmarks', *ran]})"

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def empty(cls) -> Faces:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    @classmethod
    def from_detections(cls, detections: Sequence[DetectedFace]) -> Faces:
        if not detections:
            return cls.empty()
        with68 = all(d.landmarks68 is not None for d in detections)
        return cls(
            box=np.stack([d.box for d in detections]),
            score=np.array([d.score for d in detections], np.float32),
            landmarks=np.stack([d.landmarks for d in detections]),
            landmarks68=np.stack([d.landmarks68 for d in detections]) if with68 else None,
        )

    def detections(self) -> list[DetectedFace]:
        """The detector's view of each face (what the analysis heads and liveness models take)."""
        return [
            DetectedFace(
                box=self.box[i],
                score=float(self.score[i]),
                landmarks=self.landmarks[i],
                landmarks68=None if self.landmarks68 is None else self.landmarks68[i],
            )
            for i in range(len(self))
        ]

    def add_error(self, index: int, task: str, message: str) -> None:
        """Record that ``task`` failed for face ``index`` (the other heads still answer)."""
        if self.errors is None:
            self.errors = _column([None] * len(self))
        self.errors[index] = {**(self.errors[index] or {}), task: message}

    # -- sequence behaviour -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.box)

    def __getitem__(self, index: Any) -> Any:
        """An int gives one :class:`FaceResult`; a slice, boolean mask or index array gives ``Faces``."""
        if isinstance(index, (int, np.integer)):
            n = len(self)
            if not -n <= index < n:
                raise IndexError(f"face {index} out of range for {n} faces")
            return FaceResult(self, int(index) % n)
        if isinstance(index, slice):
            rows = np.arange(len(self))[index]
        else:
            rows = np.asarray(index)
            if rows.dtype == bool:
                if rows.shape != (len(self),):
                    raise IndexError(f"boolean mask of shape {rows.shape} for {len(self)} faces")
                rows = np.flatnonzero(rows)
            elif rows.size == 0:
                rows = rows.astype(np.int64)
            elif not np.issubdtype(rows.dtype, np.integer):
                raise IndexError(f"faces can be indexed by int, slice, boolean mask or index array, not {rows.dtype}")
        columns = {name: (None if getattr(self, name) is None else getattr(self, name)[rows]) for name in _PER_FACE}
        return replace(self, **columns)

    def __iter__(self) -> Iterator[FaceResult]:
        return (FaceResult(self, i) for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Faces):
            return NotImplemented
        return self.to_list(with_embedding=True) == other.to_list(with_embedding=True)

    # -- derived columns ----------------------------------------------------------------------------
    @property
    def area(self) -> np.ndarray:
        return np.clip(self.box[:, 2] - self.box[:, 0], 0, None) * np.clip(self.box[:, 3] - self.box[:, 1], 0, None)

    @property
    def label(self) -> np.ndarray | None:
        """The name, or ``"unknown"`` where nobody cleared the threshold (None when identification did not run)."""
        if self.name is None:
            return None
        people = self.person if self.person is not None else [None] * len(self)
        return _column([n or p or "unknown" for n, p in zip(self.name, people)])

    @property
    def known(self) -> np.ndarray | None:
        return None if self.name is None else np.array([n is not None for n in self.name], bool)

    @property
    def expression_label(self) -> np.ndarray | None:
        if self.expression is None:
            return None
        return _column([self.expression_labels[int(k)] for k in self.expression.argmax(1)] if len(self) else [])

    @property
    def quality_score(self) -> np.ndarray | None:
        if self.quality is None:
            return None
        return np.array([np.nan if q is None else q.score for q in self.quality], np.float32)

    def largest(self) -> Faces:
        """The largest face alone (empty when there is none)."""
        return self[np.argsort(-self.area, kind="stable")[:1]]

    def best(self) -> Faces:
        """The face with the highest detector score alone."""
        return self[np.argsort(-self.score, kind="stable")[:1]]

    # -- JSON ---------------------------------------------------------------------------------------
    def to_list(self, with_embedding: bool = False) -> list[FaceRecord]:
        return [face.to_dict(with_embedding) for face in self]

    @classmethod
    def from_list(cls, records: Sequence[dict[str, Any]], model_id: str | None = None) -> Faces:
        """Faces back from their ``to_dict`` records (the inverse of :meth:`to_list`)."""
        if not records:
            return cls.empty()
        faces = cls(
            box=[r["box"] for r in records],
            score=[r["score"] for r in records],
            landmarks=[r["landmarks"] for r in records],
        )
        first = records[0]
        if "landmarks68" in first:
            faces.landmarks68 = np.array([r["landmarks68"] for r in records], np.float32)
        if "embedding" in first:
            faces.embedding = np.array([r["embedding"] for r in records], np.float32)
            faces.model_id = model_id
        if "identity" in first:
            from facelens.gallery.base import Candidate

            ids = [r["identity"] for r in records]
            faces.name = _column([i["name"] for i in ids])
            faces.identity_score = np.array([i["score"] for i in ids], np.float32)
            faces.threshold = np.array([i["threshold"] for i in ids], np.float32)
            faces.candidates = _column([[Candidate(**c) for c in i["candidates"]] for i in ids])
            if any(i["label"] not in (i["name"], "unknown") for i in ids):
                faces.person = _column([i["label"] for i in ids])
        if "quality" in first:
            from facelens.analyze.quality import Pose, Quality

            faces.quality = _column(
                [
                    Quality(**{**q, "pose": Pose(**q["pose"]), "reasons": tuple(q["reasons"])})
                    for q in (r["quality"] for r in records)
                ]
            )
        if "expression" in first:
            faces.expression_labels = tuple(first["expression"]["probabilities"])
            faces.expression = np.array(
                [[r["expression"]["probabilities"][k] for k in faces.expression_labels] for r in records], np.float32
            )
        if "blendshapes" in first:
            from facelens.analyze.blendshapes import BLENDSHAPES

            faces.blendshapes = np.array([[r["blendshapes"][k] for k in BLENDSHAPES] for r in records], np.float32)
        if "age" in first:
            faces.age = np.array([r["age"]["years"] for r in records], np.float32)
            faces.age_confidence = np.array([r["age"]["confidence"] for r in records], np.float32)
        if "gender" in first:
            faces.gender = _column([r["gender"]["label"] for r in records])
            faces.gender_confidence = np.array([r["gender"]["confidence"] for r in records], np.float32)
        if "liveness" in first:
            faces.liveness_score = np.array([r["liveness"]["score"] for r in records], np.float32)
            faces.is_live = np.array([r["liveness"]["is_live"] for r in records], bool)
        if "head" in first:
            from facelens.analyze.heads import HeadResult

            faces.head = _column([HeadResult(**r["head"]) for r in records])
        if "track_id" in first:
            faces.track_id = np.array([r["track_id"] for r in records], np.int64)
        if any("errors" in r for r in records):
            faces.errors = _column([r.get("errors") for r in records])
        return faces


@dataclass(frozen=True)
class FaceResult(BoxGeometry):
    """One face of a :class:`Faces`: its columns' values as attributes (``None`` where a stage did not run)."""

    faces: Faces = field(repr=False)
    index: int

    def _get(self, name: str) -> Any:
        column = getattr(self.faces, name)
        return None if column is None else column[self.index]

    @property
    def box(self) -> np.ndarray:
        return self.faces.box[self.index]

    @property
    def score(self) -> float:
        return float(self.faces.score[self.index])

    @property
    def landmarks(self) -> np.ndarray:
        return self.faces.landmarks[self.index]

    @property
    def embedding(self) -> np.ndarray | None:
        return self._get("embedding")

    @property
    def name(self) -> str | None:
        return self._get("name")

    @property
    def label(self) -> str | None:
        """The name, or in a video the track's person (``unknown-N``), else ``"unknown"`` (None when
        identification did not run)."""
        if self.faces.name is None:
            return None
        return self.name or self.person or "unknown"

    @property
    def identity_score(self) -> float | None:
        value = self._get("identity_score")
        return None if value is None else float(value)

    @property
    def threshold(self) -> float | None:
        value = self._get("threshold")
        return None if value is None else float(value)

    @property
    def candidates(self) -> list[Any] | None:
        return self._get("candidates")

    @property
    def quality(self) -> Any:
        return self._get("quality")

    @property
    def expression(self) -> dict[str, float] | None:
        probs = self._get("expression")
        return None if probs is None else dict(zip(self.faces.expression_labels, map(float, probs)))

    @property
    def expression_label(self) -> str | None:
        probs = self._get("expression")
        return None if probs is None else self.faces.expression_labels[int(np.argmax(probs))]

    @property
    def blendshapes(self) -> dict[str, float] | None:
        from facelens.analyze.blendshapes import BLENDSHAPES

        scores = self._get("blendshapes")
        return None if scores is None else dict(zip(BLENDSHAPES, map(float, scores)))

    @property
    def age(self) -> float | None:
        value = self._get("age")
        return None if value is None else float(value)

    @property
    def gender(self) -> str | None:
        return self._get("gender")

    @property
    def liveness_score(self) -> float | None:
        value = self._get("liveness_score")
        return None if value is None else float(value)

    @property
    def is_live(self) -> bool | None:
        value = self._get("is_live")
        return None if value is None else bool(value)

    @property
    def person(self) -> str | None:
        """Who the face's track is in a video: a gallery name or ``unknown-N`` (None outside video)."""
        return self._get("person")

    @property
    def track_id(self) -> int | None:
        value = self._get("track_id")
        return None if value is None else int(value)

    @property
    def errors(self) -> dict[str, str] | None:
        return self._get("errors")

    def detection(self) -> DetectedFace:
        return DetectedFace(box=self.box, score=self.score, landmarks=self.landmarks, landmarks68=self._get("landmarks68"))

    def to_dict(self, with_embedding: bool = False) -> FaceRecord:
        f, i = self.faces, self.index
        out: dict[str, Any] = {
            "box": _round(f.box[i], 1),
            "score": round(float(f.score[i]), 4),
            "landmarks": _round(f.landmarks[i], 1),
        }
        if f.landmarks68 is not None:
            out["landmarks68"] = _round(f.landmarks68[i], 1)
        if with_embedding and f.embedding is not None:
            out["embedding"] = _round(f.embedding[i], 6)
        if f.name is not None:
            out["identity"] = {
                "name": f.name[i],
                "label": (f.person[i] if f.person is not None else None) or f.name[i] or "unknown",
                "score": round(float(f.identity_score[i]), 4) if f.identity_score is not None else 0.0,
                "threshold": round(float(f.threshold[i]), 4) if f.threshold is not None else 0.0,
                "candidates": [c.to_dict() for c in (f.candidates[i] if f.candidates is not None else [])],
            }
        if f.quality is not None and f.quality[i] is not None:
            out["quality"] = f.quality[i].to_dict()
        if f.expression is not None:
            probs = {k: round(float(v), 4) for k, v in zip(f.expression_labels, f.expression[i])}
            top = int(np.argmax(f.expression[i]))
            out["expression"] = {
                "label": f.expression_labels[top],
                "score": round(float(f.expression[i][top]), 4),
                "probabilities": probs,
            }
            if f.expression_adapted is not None:
                adapted = f.expression_adapted[i]
                best = int(np.argmax(adapted))
                out["expression"]["adapted"] = {
                    "method": f.adapt_method or "",
                    "label": f.expression_labels[best],
                    "score": round(float(adapted[best]), 4),
                    "probabilities": {k: round(float(v), 4) for k, v in zip(f.expression_labels, adapted)},
                }
        if f.blendshapes is not None:
            from facelens.analyze.blendshapes import ACTION_UNITS, BLENDSHAPES, action_units

            out["blendshapes"] = {k: round(float(v), 4) for k, v in zip(BLENDSHAPES, f.blendshapes[i])}
            out["action_units"] = dict(zip(ACTION_UNITS, _round(action_units(f.blendshapes[i])[0], 4)))
        if f.age is not None:
            out["age"] = {"years": round(float(f.age[i]), 1), "confidence": round(float(f.age_confidence[i]), 4)}
        if f.gender is not None:
            out["gender"] = {"label": f.gender[i], "confidence": round(float(f.gender_confidence[i]), 4)}
        if f.liveness_score is not None:
            out["liveness"] = {"score": round(float(f.liveness_score[i]), 4), "is_live": bool(f.is_live[i])}
        if f.head is not None and f.head[i] is not None:
            out["head"] = {"name": f.head[i].name, **f.head[i].to_dict()}
        if f.track_id is not None:
            out["track_id"] = int(f.track_id[i])
        if f.errors is not None and f.errors[i]:
            out["errors"] = dict(f.errors[i])
        return out  # type: ignore[return-value]


@dataclass
class ImageResult:
    """What the engine says about one input: its size, its faces, or why it could not be read.

    ``image`` (the decoded RGB pixels, for drawing) and ``content_hash`` are never serialised. Iterating,
    ``len`` and indexing go to :attr:`faces`."""

    source: str
    width: int = 0
    height: int = 0
    faces: Faces = field(default_factory=Faces.empty)
    error: str | None = None
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    content_hash: str | None = field(default=None, repr=False, compare=False)
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_for_error(self) -> ImageResult:
        """Raise the typed error that made this input fail (library verbs on one image raise, batches don't)."""
        if self.error is not None:
            if self.exception is not None:
                raise self.exception
            from facelens.errors import FacelensError

            raise FacelensError(self.error)
        return self

    def __len__(self) -> int:
        return len(self.faces)

    def __iter__(self) -> Iterator[FaceResult]:
        return iter(self.faces)

    def __getitem__(self, index: Any) -> Any:
        return self.faces[index]

    def to_dict(self, with_embedding: bool = False) -> ImageRecord:
        record: ImageRecord = {
            "path": self.source,
            "width": int(self.width),
            "height": int(self.height),
            "faces": self.faces.to_list(with_embedding),
            "error": self.error,
        }
        if with_embedding and self.faces.model_id:  # vectors are only comparable with the same model's
            record["model_id"] = self.faces.model_id
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any], model_id: str | None = None) -> ImageResult:
        return cls(
            source=record["path"],
            width=record["width"],
            height=record["height"],
            faces=Faces.from_list(record["faces"], model_id or record.get("model_id")),
            error=record["error"],
        )


__all__ = [
    "FaceRecord",
    "FaceResult",
    "Faces",
    "ImageRecord",
    "ImageResult",
    "json_schema",
]
