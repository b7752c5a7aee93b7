"""Find the people in folders of unlabelled photos: every face detected and embedded once (later runs process only
new or changed files), faces that clear the open-set threshold attached to the gallery's people, the rest
clustered into anonymous people ``unknown-N`` — so naming a cluster once enrols every face in it.

A file is unchanged when its size and modification time are what the library recorded, or, when they moved,
its bytes hash the same. Low-quality faces (see :class:`QualityGate`) are stored as detections but neither cluster
nor enrol.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facelens.cluster.methods import Problem, cluster
from facelens.decide import DEFAULT_FPIR, ThresholdPolicy
from facelens.detect import DEFAULT_DETECTOR
from facelens.gallery.base import Gallery
from facelens.gallery.library import ASSIGNED, LOW_QUALITY, NOT_PERSON, PENDING, Detection, ScannedFace, ScannedPhoto

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
ANONYMOUS = re.compile(r"^unknown-(\d+)$")
#: Photos stored per transaction while a run processes files (an interrupted run keeps what it stored).
STORE_EVERY = 64
DEFAULT_METHOD = "hdbscan"


@dataclass(frozen=True)
class QualityGate:
    """Faces under ``min_quality`` (the quality score of analyze/quality.py, 0..1) or with a shorter box side under
    ``min_size`` pixels are kept as detections but neither cluster nor enrol. ``None`` turns a check off.

    Default: a quality score of 0.15 drops 2 % of LFW DevTest faces (the blurred, dark and turned-away ones:
    ``python benchmarks/cluster.py`` prints the share it gates)."""

    min_quality: float | None = 0.15
    min_size: float | None = 24.0

    def passes(self, quality: float | None, box: Sequence[float]) -> bool:
        side = min(box[2] - box[0], box[3] - box[1])
        if self.min_size is not None and side < self.min_size:
            return False
        return self.min_quality is None or quality is None or quality >= self.min_quality


@dataclass
class ClusterReport:
    """What a run did: files seen / processed / unchanged / failed, faces found, and where the pending faces went."""

    files: int = 0
    processed: int = 0
    unchanged: int = 0
    forgotten: int = 0  # photos deleted from the folders since the last run (their faces went too)
    failed: list[dict[str, str]] = field(default_factory=list)
    faces_found: int = 0
    low_quality: int = 0
    attached: int = 0  # pending faces that joined an existing person (open-set decision)
    clustered: int = 0  # pending faces put in new anonymous people
    new_people: list[str] = field(default_factory=list)
    unclustered: int = 0  # pending faces still waiting
    method: str = DEFAULT_METHOD
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        return out


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


def image_files(paths: Iterable[str | Path]) -> list[str]:
    """Files as given, folders searched recursively for images (sorted); absolute paths, the library's keys."""
    out: list[str] = []
    for item in paths:
        path = Path(item).expanduser()
        if path.is_dir():
            out += [str(p.resolve()) for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        else:
            out.append(str(path.resolve()))
    return list(dict.fromkeys(out))


def cluster_photos(
    gallery: Gallery,
    paths: Iterable[str | Path],
    detector: str = DEFAULT_DETECTOR,
    embedder: str | None = None,
    method: str = DEFAULT_METHOD,
    gate: QualityGate = QualityGate(),
    min_size: int | None = None,
    eps: float | None = None,
    threshold: float | None = None,
    fpir: float = DEFAULT_FPIR,
    workers: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    runner: Any = None,
) -> ClusterReport:
    """Detect and embed the faces of new or changed photos, then cluster every pending face (see
    :func:`cluster_pending`). Unreadable files are listed in ``failed`` and retried on the next run; photos deleted
    from the given folders since an earlier run are forgotten with their faces. ``runner`` runs the detection and
    embedding elsewhere (a :class:`facelens.distributed.RayRunner`); storing and clustering stay here. Faces are
    embedded with the gallery's own model (``embedder``, if given, must make that model's vectors)."""
    from facelens.embed import embedder_for_model
    from facelens.engine import FaceAnalyzer

    started = time.perf_counter()
    report = ClusterReport(method=method)
    paths = list(paths)
    files = image_files(paths)
    report.files = len(files)
    known = gallery.library_photos()
    folders = [str(Path(p).expanduser().resolve()) for p in paths if Path(p).expanduser().is_dir()]
    present = set(files)
    gone = [path for path in known if path not in present and not Path(path).exists()
            and any(path.startswith(folder.rstrip("/") + "/") for folder in folders)]
    if gone:  # deleted from a folder this run covers: its faces leave the gallery too
        report.forgotten = gallery.library_forget(gone)
    todo: list[tuple[str, float, int, str]] = []
    for path in files:
        try:
            stat = Path(path).stat()
        except OSError as exc:
            report.failed.append({"path": path, "error": f"{exc.__class__.__name__}: {exc.strerror or exc}"})
            continue
        seen = known.get(path)
        if seen is not None and seen.error is None and seen.mtime == stat.st_mtime and seen.size == stat.st_size:
            report.unchanged += 1
            continue
        digest = file_digest(path)
        if seen is not None and seen.error is None and seen.content_hash == digest:  # touched, not changed
            gallery.library_touch(path, stat.st_mtime, stat.st_size)
            report.unchanged += 1
            continue
        todo.append((path, stat.st_mtime, stat.st_size, digest))
    if todo:
        engine = FaceAnalyzer(detector=detector, embedder=embedder or embedder_for_model(gallery.model_id),
                              tasks=("embed", "analyze"), heads=("quality",), workers=workers, runner=runner)
        gallery.check_model(engine.model_id)
        batch: list[ScannedPhoto] = []
        for (path, mtime, size, digest), result in zip(todo, engine.run([t[0] for t in todo], progress=progress)):
            report.processed += 1
            if result.error is not None:
                report.failed.append({"path": path, "error": result.error})
                batch.append(ScannedPhoto(path, mtime, size, digest, (), error=result.error))
            else:
                faces = []
                for face in result.faces:
                    quality = face.quality.score if face.quality is not None else None
                    box = [float(v) for v in face.box]
                    state = PENDING if gate.passes(quality, box) else LOW_QUALITY
                    report.low_quality += state == LOW_QUALITY
                    faces.append(ScannedFace(box, float(face.score), quality, face.embedding, state))
                report.faces_found += len(faces)
                batch.append(ScannedPhoto(path, mtime, size, digest, faces))
            if len(batch) >= STORE_EVERY:
                gallery.library_put(batch)
                batch = []
        if batch:
            gallery.library_put(batch)
    outcome = cluster_pending(gallery, method=method, min_size=min_size, eps=eps, threshold=threshold, fpir=fpir)
    for name in ("attached", "clustered", "new_people", "unclustered"):
        setattr(report, name, getattr(outcome, name))
    report.seconds = time.perf_counter() - started
    return report


def next_anonymous(names: Iterable[str]) -> Callable[[], str]:
    """A source of fresh ``unknown-N`` names after the highest one in use."""
    top = max((int(m.group(1)) for m in map(ANONYMOUS.match, names) if m), default=0)
    counter = iter(range(top + 1, 1 << 62))
    return lambda: f"unknown-{next(counter)}"


def is_anonymous(name: str) -> bool:
    return ANONYMOUS.match(name) is not None


def banned_people(gallery: Gallery, detections: Sequence[Detection]) -> list[set[str]]:
    """Per detection, the people it must never join: "not this person" constraints (by person id, so renames keep
    them) and the people of the other faces of its photo."""
    names = {pid: name for name, pid in gallery.person_ids().items()}
    by_detection: dict[int, set[str]] = {}
    for kind, a, b in gallery.constraints():
        if kind == NOT_PERSON and b in names:
            by_detection.setdefault(a, set()).add(names[b])
    return [set(by_detection.get(d.detection_id, set())) for d in detections]


def cluster_pending(
    gallery: Gallery,
    method: str = DEFAULT_METHOD,
    min_size: int | None = None,
    eps: float | None = None,
    threshold: float | None = None,
    fpir: float = DEFAULT_FPIR,
) -> ClusterReport:
    """Give the library's pending faces a person: first the open-set decision against the gallery's people
    (named and anonymous: ``threshold`` or ``fpir`` as in identify), then ``method`` on what is left together with
    the library's faces that have a person: what clusters with those joins their person, new clusters become new
    people ``unknown-N``. Faces already with a person are never moved: corrections stick."""
    started = time.perf_counter()
    report = ClusterReport(method=method)
    everything = gallery.detections(with_embeddings=True)
    pending = [d for d in everything if d.state == PENDING]
    known = [d for d in everything if d.state == ASSIGNED]
    if not pending:
        report.seconds = time.perf_counter() - started
        return report
    banned = banned_people(gallery, pending)
    vectors = np.stack([d.embedding for d in pending])
    photos = np.array([d.photo_id for d in pending], np.int64)
    # same-photo exclusion against people already in the photo
    in_photo: dict[int, set[str]] = {}
    for d in known:
        in_photo.setdefault(d.photo_id, set()).add(str(d.person))
    for i, d in enumerate(pending):
        banned[i] |= in_photo.get(d.photo_id, set())

    joins: dict[str, list[Detection]] = {}
    left = list(range(len(pending)))

    def take(offers: list[tuple[float, int, str]]) -> None:
        """Best offer first; a person takes one face per photo and never a face banned from it."""
        nonlocal left
        placed: set[int] = set()
        for _, i, name in sorted(offers, key=lambda o: -o[0]):
            if i in placed or name in banned[i]:
                continue
            placed.add(i)
            joins.setdefault(name, []).append(pending[i])
            for j in np.flatnonzero(photos == photos[i]).tolist():
                banned[j].add(name)
        left = [i for i in left if i not in placed]
        report.attached += len(placed)

    if gallery.person_count():  # the open-set decision, as identify makes it
        limit = ThresholdPolicy.for_identify(threshold, fpir).threshold(gallery.model_id, gallery.face_count())
        ranked = gallery.search(vectors, k=5)
        take([(c.score, i, c.name) for i, row in enumerate(ranked) for c in row if c.score >= limit])
    fresh = next_anonymous(p.name for p in gallery.people())
    if left:
        problem = Problem(
            vectors[left], photos[left],
            known_vectors=np.stack([d.embedding for d in known]) if known else np.zeros((0, vectors.shape[1])),
            known_people=[str(d.person) for d in known], known_photos=np.array([d.photo_id for d in known], np.int64),
            banned=[banned[i] for i in left],
        )  # fmt: skip
        outcome = cluster(problem, method, min_size=min_size, eps=eps, model_id=gallery.model_id)
        groups: dict[int, list[Detection]] = {}
        for i, person, group in zip(left, outcome.person, outcome.group.tolist()):
            if person is not None:
                joins.setdefault(person, []).append(pending[i])
                report.attached += 1
            elif group >= 0:
                groups.setdefault(group, []).append(pending[i])
        for members in groups.values():
            name = fresh()
            gallery.assign_detections(name, members)
            report.new_people.append(name)
            report.clustered += len(members)
    for name, members in joins.items():
        gallery.assign_detections(name, members)
    report.unclustered = len(pending) - report.attached - report.clustered
    report.seconds = time.perf_counter() - started
    return report
