"""The one orchestration every door uses: :class:`FaceAnalyzer` turns images into :class:`~facelens.result.ImageResult`.

Work is cut into chunks of images. For each chunk one process (a pool on every core; in-process for a single
image or ``workers=1``) decodes every image, detects them with one ``detector.detect_many`` call, aligns every
face with ``embedder.crops`` and embeds all the chunk's crops in ONE ``embedder.embed_crops`` call, then runs the
requested analysis heads on the whole chunk. Models load once per process and stay loaded between runs (the pool
is shared by every analyzer of this process). Identification searches the gallery in the calling process, one
batched ``gallery.search`` per chunk: the gallery is never sent to workers. A bad input comes back as an
``ImageResult`` with ``error`` set; it never stops the run.

dlib has no GIL-free parallelism of its own on CPU, so processes are what uses every core; each worker's ONNX
sessions get ``cores // workers`` threads (``threads_per_worker``) so that the workers do not oversubscribe.
Workers start from a fork server (see :func:`start_method`); a worker that dies fails its chunk and the pool is
renewed. A script that does its work at top level (no ``if __name__ == "__main__":``) runs in-process instead.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from facelens.decide import ThresholdPolicy
from facelens.detect import DEFAULT_DETECTOR
from facelens.embed import DEFAULT_EMBEDDER
from facelens.errors import FacelensError, ModelMismatchError, NoFaceError
from facelens.io.image import describe_source
from facelens.result import Faces, ImageResult, _column

log = logging.getLogger(__name__)

#: Tasks by name. ``detect`` always runs; ``identify`` needs a gallery (and implies ``embed``).
TASKS = ("detect", "embed", "analyze", "liveness", "identify")
#: Which face of an image to keep when an operation needs one (None keeps every face); ``centre``: the face nearest
#: the image centre, the labelled face of datasets cut around one person (LFW).
SELECTIONS = ("largest", "best", "only", "centre")
#: What a subject of test-time adaptation is when ``adapt_group`` is a name (a callable picks it per result).
ADAPT_GROUPS = ("folder", "image", "all")
#: Images per chunk: large enough to batch the embedder, small enough to keep every worker busy.
CHUNK_SIZE = 8

Progress = Callable[[int, int | None], None]


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Plan:
    """What a worker needs to know to run a chunk (picklable; workers cache their stages per plan)."""

    detector: str = DEFAULT_DETECTOR
    embedder: str = DEFAULT_EMBEDDER
    min_face_size: int = 20
    upsample: int | None = None
    max_pixels: int | None = None
    landmarks68: bool = False
    embed: bool = True
    select: str | None = None
    heads: tuple[str, ...] | None = None  # None: the analyze task is off
    custom_head: Any = None
    expression_runtime: str = "onnxruntime"
    expression_model: str | None = None  # None: analyze.expression.DEFAULT_EXPRESSION_MODEL
    expression_features: bool = False  # keep the expression features (test-time adaptation)
    face_crops: bool = False
    liveness: tuple[str, str | None, float | None] | None = None  # (model, fusion file, threshold)
    content_hash: bool = False
    keep_images: bool = False
    threads: int | None = None  # ONNX intra-op threads per worker (None: the runtime's default)

    def key(self) -> tuple:
        head = self.custom_head
        return (*(getattr(self, f) for f in self.__dataclass_fields__ if f != "custom_head"),
                str(head) if isinstance(head, (str, Path)) else id(head))


# -- what runs inside a worker (or in-process) -----------------------------------------------------------


class Models:
    """The detector and embedder of one configuration in this process, each loaded on first use (see :func:`models`)."""

    def __init__(self, detector: str = DEFAULT_DETECTOR, embedder: str = DEFAULT_EMBEDDER, min_face_size: int = 20,
                 upsample: int | None = None, max_pixels: int | None = None, landmarks68: bool = False,
                 embed_threads: int | None = None) -> None:
        import facelens.models.catalog  # noqa: F401  (registers the core model specs)

        self.detector_name = detector
        self.embedder_name = embedder
        self.embed_threads = embed_threads
        self.detector_options: dict[str, Any] = {"min_face_size": min_face_size, "landmarks68": landmarks68}
        if upsample is not None:
            self.detector_options["upsample"] = upsample
        self.max_pixels = max_pixels
        self._lock = threading.Lock()
        self._detector: Any = None
        self._embedder: Any = None

    @property
    def detector(self) -> Any:
        if self._detector is None:
            with self._lock:  # threads asking at once load it once
                if self._detector is None:
                    from facelens.detect import get_detector

                    self._detector = get_detector(self.detector_name, **self.detector_options)
        return self._detector

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = self._load_embedder()
        return self._embedder

    def _load_embedder(self) -> Any:
        from facelens.embed import get_embedder

        if self.embed_threads is not None:
            # ONNX embedders take a per-session thread count (so pool workers do not oversubscribe the cores);
            # the dlib embedder has none and runs single-threaded anyway
            try:
                return get_embedder(self.embedder_name, threads=self.embed_threads)
            except TypeError:
                pass
        return get_embedder(self.embedder_name)

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    def decode(self, source: Any) -> np.ndarray:
        from facelens.io.image import decode_image

        return decode_image(source, max_pixels=self.max_pixels)


_MODELS: dict[tuple, Models] = {}
_MODELS_LOCK = threading.Lock()


def models(detector: str = DEFAULT_DETECTOR, embedder: str = DEFAULT_EMBEDDER, min_face_size: int = 20,
           upsample: int | None = None, max_pixels: int | None = None, landmarks68: bool = False,
           embed_threads: int | None = None) -> Models:
    """The shared :class:`Models` of this configuration: every analyzer (and any code that needs a detector or an
    embedder by itself) of this process uses the same loaded models."""
    key = (detector, embedder, min_face_size, upsample, max_pixels, landmarks68, embed_threads)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = Models(*key)
        return _MODELS[key]


class _Stages:
    """The loaded models for one plan, in this process."""

    def __init__(self, plan: Plan) -> None:
        self.pipeline = models(detector=plan.detector, embedder=plan.embedder, min_face_size=plan.min_face_size,
                               upsample=plan.upsample, max_pixels=plan.max_pixels, landmarks68=plan.landmarks68,
                               embed_threads=plan.threads)
        self.analyzer = None
        if plan.heads is not None:
            from facelens.analyze.api import Analyzer

            self.analyzer = Analyzer(plan.heads, custom_head=plan.custom_head,
                                     expression_runtime=plan.expression_runtime,
                                     expression_model=plan.expression_model,
                                     expression_features=plan.expression_features)
        self.checker = None
        if plan.liveness is not None:
            from facelens.liveness.checker import get_checker

            self.checker = get_checker(*plan.liveness)


_STAGES: dict[tuple, _Stages] = {}
_STAGES_LOCK = threading.Lock()


def _stages(plan: Plan) -> _Stages:
    key = plan.key()
    with _STAGES_LOCK:
        if key not in _STAGES:
            _STAGES[key] = _Stages(plan)
        return _STAGES[key]


def _message(source: str, exc: BaseException) -> str:
    if isinstance(exc, FacelensError):
        return str(exc)
    return f"{source}: {exc.__class__.__name__}: {exc}"


def _selected(result: ImageResult, faces: Faces, select: str | None) -> Faces:
    if select is None or not len(faces):
        return faces
    if select == "largest":
        return faces[:1]  # detectors return faces largest first
    if select == "best":
        return faces.best()
    if select == "centre":
        from facelens.evaluate.protocols import centred_face

        i = centred_face(faces.box, (result.height, result.width))
        return faces[i : i + 1]
    if len(faces) > 1:  # "only"
        exc = NoFaceError(f"{result.source}: {len(faces)} faces found where exactly one was expected")
        result.error, result.exception = str(exc), exc
        return Faces.empty()
    return faces


def fill_faces(plan: Plan, images: Sequence[np.ndarray | None], faces: dict[int, Faces]) -> None:
    """The stages after detection for faces already found: embed every face (all crops in one batch), run the
    analysis heads and liveness; ``faces`` maps an index into ``images`` to that image's :class:`Faces`. Drivers
    that find faces themselves (video follows them between detections) call it on the faces they keep."""
    stages = _stages(plan)
    pipe = stages.pipeline
    # align every face, embed all crops of the chunk at once
    if plan.embed and faces:
        embedder = pipe.embedder
        crops = []
        for i, found in faces.items():
            if len(found):
                crops += embedder.crops(images[i], found.detections())  # landmark-aligned embedders use them
        vectors = embedder.embed_crops(crops) if crops else np.zeros((0, embedder.dim), np.float32)
        start = 0
        for i, found in faces.items():
            count = len(found)
            found.embedding = np.asarray(vectors[start : start + count], np.float32).reshape(count, embedder.dim)
            found.model_id = embedder.model_id
            start += count
    # heads on the whole chunk; a head that fails reports it in each face's errors, the others still answer
    ready = [i for i in faces if len(faces[i])]
    if stages.analyzer is not None and ready:
        stages.analyzer.fill([images[i] for i in ready], [faces[i] for i in ready], face_crops=plan.face_crops)
    if stages.checker is not None and ready:
        from facelens.liveness.checker import fill_liveness

        for i in ready:
            fill_liveness(images[i], faces[i], stages.checker)


def run_chunk(plan: Plan, sources: Sequence[Any]) -> list[ImageResult]:
    """Decode, detect, align, embed and analyse a chunk of images; one result per source, in order."""
    stages = _stages(plan)
    pipe = stages.pipeline
    results: list[ImageResult] = []
    images: list[np.ndarray | None] = []
    for source in sources:
        label = describe_source(source)
        try:
            image = pipe.decode(source)
        except Exception as exc:  # noqa: BLE001  (one unreadable input must not end the chunk)
            results.append(ImageResult(label, error=_message(label, exc), exception=exc))
            images.append(None)
            continue
        results.append(ImageResult(label, width=image.shape[1], height=image.shape[0]))
        images.append(image)
    live = [i for i, image in enumerate(images) if image is not None]

    # detect: one call for the chunk (a failure falls back to per-image, so only the bad image fails)
    detections: dict[int, list] = {}
    if plan.face_crops:
        from facelens.analyze.api import whole_detection

        for i in live:
            detections[i] = [whole_detection(images[i])]
    else:
        try:
            detections = dict(zip(live, pipe.detector.detect_many([images[i] for i in live])))
        except Exception:  # noqa: BLE001  (find the image that fails: per image)
            for i in live:
                try:
                    detections[i] = pipe.detector.detect(images[i])
                except Exception as exc:  # noqa: BLE001  (only that image fails)
                    results[i].error, results[i].exception = _message(results[i].source, exc), exc
    faces: dict[int, Faces] = {}
    for i, found in detections.items():
        faces[i] = _selected(results[i], Faces.from_detections(found), plan.select)

    fill_faces(plan, images, faces)

    for i, found in faces.items():
        if results[i].error is None:
            results[i].faces = found
    if plan.content_hash:
        from facelens.gallery.base import content_hash

        for i in live:
            results[i].content_hash = content_hash(images[i])
    if plan.keep_images:
        for i in live:
            results[i].image = images[i]
    return results


def safe_chunk(plan: Plan, sources: Sequence[Any]) -> list[ImageResult]:
    """:func:`run_chunk`, and when a stage fails for the whole chunk, each image again on its own, so that only
    the image that makes it fail comes back with an error."""
    try:
        return run_chunk(plan, sources)
    except Exception as exc:  # noqa: BLE001  (a bad input never stops the run)
        if len(sources) > 1:
            return [result for source in sources for result in safe_chunk(plan, [source])]
        label = describe_source(sources[0])
        return [ImageResult(label, error=_message(label, exc), exception=exc)]


def _run_chunk_in_worker(plan: Plan, sources: Sequence[Any]) -> list[ImageResult]:
    results = safe_chunk(plan, sources)
    for result in results:  # exceptions may not unpickle; their message travels in ``error``
        if result.exception is not None and not isinstance(result.exception, FacelensError):
            result.exception = None
    return results


def _init_worker(threads: int) -> None:
    """In each new worker: its share of the cores for onnxruntime and OpenCV, and no model inherited from the
    parent (a forked copy of a runtime session with threads must not be used)."""
    global _STAGES_LOCK
    os.environ.setdefault("FACELENS_EMBED_THREADS", str(threads))
    global _MODELS_LOCK
    # this process has one thread now: fresh locks (a parent thread may have held one at fork) and empty caches
    _STAGES_LOCK, _MODELS_LOCK = threading.Lock(), threading.Lock()
    _STAGES.clear()
    _MODELS.clear()
    try:
        import cv2

        cv2.setNumThreads(threads)
    except Exception as exc:  # noqa: BLE001  (threads are only a hint)
        log.debug("could not set OpenCV threads: %s", exc)


# -- the shared pool ------------------------------------------------------------------------------------

_POOLS: dict[tuple[int, int], ProcessPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def start_method() -> str:
    """How workers start: ``$FACELENS_START_METHOD``, else ``forkserver`` on POSIX, ``spawn`` elsewhere.

    Not ``fork``: a pool that starts workers on demand forks while its own manager thread holds locks, and the
    new worker hangs (measured: the second enrolment through one pool never returned)."""
    import multiprocessing

    wanted = os.environ.get("FACELENS_START_METHOD")
    if wanted:
        if wanted not in multiprocessing.get_all_start_methods():
            raise ValueError(f"FACELENS_START_METHOD={wanted!r}: use one of {multiprocessing.get_all_start_methods()}")
        return wanted
    return "forkserver" if os.name == "posix" else "spawn"


_UNGUARDED_WARNED = False


def main_is_importable() -> bool:
    """Whether new workers may import the ``__main__`` script, as forkserver/spawn workers do: true for the
    console scripts, ``python -m``, notebooks and scripts whose work sits under ``if __name__ == "__main__":``;
    false for a script doing its work at top level (its workers would run it again instead of serving)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or getattr(main, "__spec__", None) is not None:  # interactive, -c, or -m (imported by module name)
        return True
    try:
        source = Path(path).read_text(errors="replace")
    except OSError:
        return True
    return "__name__" in source and "__main__" in source


def _pool(workers: int, threads: int) -> ProcessPoolExecutor:
    """One pool per (workers, threads) for the whole process, so models load once per worker, not per call."""
    import multiprocessing

    with _POOLS_LOCK:
        key = (workers, threads)
        if key not in _POOLS:
            context = multiprocessing.get_context(start_method())
            _POOLS[key] = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                                              initargs=(threads,))
        return _POOLS[key]


def _discard_pool(pool: ProcessPoolExecutor) -> None:
    """Forget a broken pool (a worker died) so the next chunk gets a fresh one."""
    with _POOLS_LOCK:
        for key, value in list(_POOLS.items()):
            if value is pool:
                del _POOLS[key]
    pool.shutdown(wait=False, cancel_futures=True)


@atexit.register
def shutdown_pools() -> None:
    """Stop the worker processes (they also go when this process exits)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


def _picklable(source: Any) -> Any:
    """File objects cannot cross to a worker: read them here."""
    if hasattr(source, "read"):
        return source.read()
    if isinstance(source, memoryview):
        return source.tobytes()
    return source


# -- the analyzer ---------------------------------------------------------------------------------------


@dataclass
class FaceAnalyzer:
    """Images in, one :class:`ImageResult` per image out, in input order.

    ``tasks``: any of :data:`TASKS` (``detect`` always runs). ``analyze`` runs the ``heads`` (expression,
    age_gender, quality) and an optional ``custom_head``; ``liveness`` the passive checker; ``identify`` names
    faces against ``gallery`` with ``policy`` (default: FPIR 1 % for the gallery's size), ``k`` candidates and
    the metadata filter ``where`` — with liveness on, a face judged a spoof is never named. Faces are embedded by
    ``embedder``, else by the model the gallery (or a custom head on embeddings) was built with, else the default.
    ``select`` keeps one face per image (largest, best, only, centre) before embedding. ``workers``: processes (default
    every core; a single image always runs in this process).
    """

    detector: str = DEFAULT_DETECTOR
    embedder: str | None = None  # None: the gallery's own model (see embedder_for_model), else DEFAULT_EMBEDDER
    tasks: Sequence[str] = ("detect", "embed")
    gallery: Any = None
    k: int = 3
    policy: ThresholdPolicy | None = None
    where: dict[str, Any] | None = None
    heads: Sequence[str] | None = None
    custom_head: Any = None
    expression_runtime: str = "onnxruntime"
    expression_model: str | None = None
    adapt: str | None = None  # test-time adaptation of the expression head by subject (facelens.analyze.adapt)
    adapt_group: Any = "folder"  # the subject of a result: folder | image | all | callable(ImageResult) -> key
    face_crops: bool = False
    liveness_model: str | None = None
    liveness_fusion: str | Path | None = None
    liveness_threshold: float | None = None
    select: str | None = None
    workers: int | None = None
    threads_per_worker: int | None = None
    chunk_size: int = CHUNK_SIZE
    min_face_size: int = 20
    upsample: int | None = None
    max_pixels: int | None = None
    landmarks68: bool = False
    content_hash: bool = False
    keep_images: bool = False
    runner: Any = None  # runs the chunks elsewhere, e.g. facelens.distributed.RayRunner; None: this machine's pool
    _threshold: float | None = field(default=None, init=False, repr=False)
    _adapter: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        tasks = set(self.tasks) | {"detect"}
        unknown = tasks - set(TASKS)
        if unknown:
            raise ValueError(f"unknown tasks {sorted(unknown)}; choose from {', '.join(TASKS)}")
        if "identify" in tasks:
            if self.gallery is None:
                raise ValueError("the identify task needs a gallery")
            tasks.add("embed")
        if self.custom_head is not None and isinstance(self.custom_head, (str, Path)):
            from facelens.analyze.heads import CustomHead

            self.custom_head = CustomHead.load(self.custom_head)
        if self.embedder is None:  # the model a gallery (or a head trained on embeddings) was built with
            from facelens.embed import embedder_for_model

            head_model = (getattr(self.custom_head, "model_ids", None) or {}).get("embedding")
            model = self.gallery.model_id if self.gallery is not None else head_model
            if head_model and model != head_model and "embedding" in getattr(self.custom_head, "features", ()):
                raise ModelMismatchError(f"the custom head was trained on {head_model!r} embeddings; the gallery "
                                         f"holds {model!r} ones")
            self.embedder = embedder_for_model(model) if model else DEFAULT_EMBEDDER
        from facelens.embed import EMBEDDERS

        if self.embedder not in EMBEDDERS:
            raise ValueError(f"unknown embedder {self.embedder!r}; choose one of {', '.join(EMBEDDERS)}")
        if self.custom_head is not None and "embedding" in getattr(self.custom_head, "features", ()):
            tasks.add("embed")
        if self.select is not None and self.select not in SELECTIONS:
            raise ValueError(f"unknown face selection {self.select!r}: use {', '.join(SELECTIONS)}")
        if "identify" in tasks and self.policy is not None and self.policy.min_quality is not None:
            # a quality gate needs each face's quality: the quality head alone unless analysis was asked for
            if "analyze" not in tasks:
                self.heads = ("quality",)
            elif self.heads is not None:
                self.heads = tuple(dict.fromkeys((*self.heads, "quality")))
            tasks.add("analyze")
        self.tasks = tuple(t for t in TASKS if t in tasks)
        if "analyze" in tasks:
            from facelens.analyze.api import HEADS, check_heads

            self.heads = HEADS if self.heads is None else self.heads
            check_heads(self.heads)
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.adapt is not None:
            self._check_adapt()

    def _check_adapt(self) -> None:
        """Adaptation needs the expression head and a linear head to adapt: both checked before any image."""
        from facelens.analyze.adapt import ADAPT_METHODS, LinearHead, SubjectAdapter
        from facelens.analyze.expression import get_expression_model

        if self.adapt not in ADAPT_METHODS:
            raise ValueError(f"unknown adaptation method {self.adapt!r}; choose from {', '.join(ADAPT_METHODS)}")
        if "analyze" not in self.tasks or "expression" not in (self.heads or ()):
            raise ValueError("adaptation adapts the expression head: run the analyze task with the expression head")
        if not callable(self.adapt_group) and self.adapt_group not in ADAPT_GROUPS:
            raise ValueError(f"unknown adaptation group {self.adapt_group!r}; choose from {', '.join(ADAPT_GROUPS)}")
        head = LinearHead.of(get_expression_model(self.expression_model, self.expression_runtime))
        self._adapter = SubjectAdapter(self.adapt, head)

    # -- configuration ------------------------------------------------------------------------------
    def plan(self, workers: int = 1) -> Plan:
        threads = self.threads_per_worker
        if threads is None and workers > 1:
            threads = max(1, default_workers() // workers)
        liveness = None
        if "liveness" in self.tasks:
            from facelens.liveness.checker import DEFAULT_MODEL

            fusion = str(self.liveness_fusion) if self.liveness_fusion else None
            liveness = (self.liveness_model or DEFAULT_MODEL, fusion, self.liveness_threshold)
        return Plan(
            detector=self.detector, embedder=self.embedder, min_face_size=self.min_face_size, upsample=self.upsample,
            max_pixels=self.max_pixels, landmarks68=self.landmarks68, embed="embed" in self.tasks, select=self.select,
            heads=tuple(self.heads) if "analyze" in self.tasks and self.heads is not None else None,
            custom_head=self.custom_head if "analyze" in self.tasks else None,
            expression_runtime=self.expression_runtime, expression_model=self.expression_model,
            expression_features=self.adapt is not None, face_crops=self.face_crops, liveness=liveness,
            content_hash=self.content_hash, keep_images=self.keep_images, threads=threads,
        )  # fmt: skip

    def loaded_models(self) -> Models:
        """The detector and embedder this analyzer runs in this process (shared; each loads on first use)."""
        return _stages(self.plan()).pipeline

    @property
    def model_id(self) -> str:
        """The embedding model's id (loads the embedder in this process)."""
        return self.loaded_models().model_id

    def threshold(self) -> float:
        """The open-set threshold for the gallery as it is now (computed once per run); probes of another model
        than the gallery's are refused here, before any image is processed."""
        self.gallery.check_model(self.model_id)
        policy = self.policy or ThresholdPolicy.for_identify()
        return policy.threshold(self.model_id, self.gallery.face_count())

    # -- running ------------------------------------------------------------------------------------
    def run_one(self, image: Any) -> ImageResult:
        """One image, in this process (its decoded pixels kept on the result for drawing)."""
        plan = replace(self.plan(), keep_images=True)
        if "identify" in self.tasks:
            self._threshold = self.threshold()
        result = safe_chunk(plan, [image])[0]
        if "identify" in self.tasks:
            self._identify([result])
        return result

    def run(self, images: Iterable[Any], progress: Progress | None = None) -> Iterator[ImageResult]:
        """Every image's result, in input order; ``progress(done, total)`` after each (total None if unknown)."""
        total = len(images) if isinstance(images, Sized) else None
        workers = self.workers or default_workers()
        if total is not None and total <= 1:
            workers = 1
        if self.runner is None and workers > 1 and start_method() != "fork" and not main_is_importable():
            global _UNGUARDED_WARNED
            if not _UNGUARDED_WARNED:
                script = getattr(sys.modules["__main__"], "__file__", "__main__")
                log.warning("%s does its work at import time: running in this process only; put it under "
                            "`if __name__ == \"__main__\":` to use every core", script)
                _UNGUARDED_WARNED = True
            workers = 1
        chunk_size = self.chunk_size
        if total is not None and workers > 1:
            chunk_size = max(1, min(chunk_size, -(-total // workers)))
        if "identify" in self.tasks:
            self._threshold = self.threshold()
        done = 0
        for results in self._chunks(images, workers, chunk_size):
            if "identify" in self.tasks:
                self._identify(results)
            if self._adapter is not None:
                for result in results:
                    if result.error is None and len(result.faces):
                        self.adapt_faces(result.faces, self._subject(result))
            for result in results:
                done += 1
                if progress is not None:
                    progress(done, total)
                yield result

    def _chunks(self, images: Iterable[Any], workers: int, chunk_size: int) -> Iterator[list[ImageResult]]:
        batches = _batched(images, chunk_size)
        if self.runner is not None:  # the same chunks and plan, run by another executor (Ray)
            yield from self.runner.chunks(self.plan(1), batches)
            return
        if workers <= 1:
            plan = self.plan(1)
            for batch in batches:
                yield safe_chunk(plan, batch)
            return
        plan = self.plan(workers)
        pending: deque[tuple[Future, list[Any]]] = deque()
        for batch in batches:
            batch = [_picklable(s) for s in batch]
            pool = _pool(workers, plan.threads or 1)
            try:
                future = pool.submit(_run_chunk_in_worker, plan, batch)
            except BrokenProcessPool:
                _discard_pool(pool)
                future = _pool(workers, plan.threads or 1).submit(_run_chunk_in_worker, plan, batch)
            pending.append((future, batch))
            while len(pending) >= 2 * workers:
                yield self._collect(*pending.popleft())
        while pending:
            yield self._collect(*pending.popleft())

    @staticmethod
    def _collect(future: Future, batch: list[Any]) -> list[ImageResult]:
        try:
            return future.result()
        except BrokenProcessPool as exc:  # a worker died (killed, out of memory): this chunk fails, the pool is renewed
            with _POOLS_LOCK:
                broken = [pool for pool in _POOLS.values() if pool._broken]
            for pool in broken:
                _discard_pool(pool)
            log.warning("a worker died on a chunk of %d images: %s", len(batch), exc)
            return [ImageResult(describe_source(s), error=_message(describe_source(s), exc)) for s in batch]
        except Exception as exc:  # noqa: BLE001  (a worker that could not send a result fails its chunk only)
            log.warning("a worker failed on a chunk of %d images: %s", len(batch), exc)
            return [ImageResult(describe_source(s), error=_message(describe_source(s), exc)) for s in batch]

    def _subject(self, result: ImageResult) -> Any:
        if callable(self.adapt_group):
            return self.adapt_group(result)
        if self.adapt_group == "all":
            return "all"
        if self.adapt_group == "image":
            return result.source
        return str(Path(result.source).parent)

    def adapt_faces(self, faces: Faces, subjects: Any) -> None:
        """Adapt the expression of ``faces`` (in order) to their subject: one key for every face, or one per face
        (a video's track ids). Fills ``expression_adapted`` beside the unadapted ``expression``; each subject keeps
        its own state in this analyzer (``reset_adaptation`` forgets it)."""
        if self._adapter is None or faces.expression_features is None:
            return
        keys = list(subjects) if isinstance(subjects, (list, tuple, np.ndarray)) else [subjects] * len(faces)
        adapted = np.empty_like(faces.expression)
        for row, (key, feats) in enumerate(zip(keys, faces.expression_features)):
            adapted[row] = self._adapter.update(key, feats[None])[0]
        faces.expression_adapted, faces.adapt_method = adapted, self.adapt
        faces.expression_features = None  # served their purpose; records never carry them

    def reset_adaptation(self, subject: Any = None) -> None:
        if self._adapter is not None:
            self._adapter.reset(subject)

    def identify(self, results: list[ImageResult]) -> None:
        """Name the faces of results whose faces are embedded already (drivers that embed themselves, e.g. video),
        with the same search, threshold policy and ``where`` filter as :meth:`run`."""
        if self._threshold is None:
            self._threshold = self.threshold()
        self._identify(results)

    def _identify(self, results: list[ImageResult]) -> None:
        """Name the faces of a chunk: one batched search, one threshold; spoofs (liveness on) stay unknown."""
        from facelens.decide import open_set_names

        rows = [r for r in results if r.error is None and len(r.faces) and r.faces.embedding is not None]
        for r in results:
            if r.error is None and r.faces.embedding is not None and not len(r.faces):
                _fill_identity(r.faces, [], [], [], self._threshold)
        if not rows:
            return
        vectors = np.concatenate([r.faces.embedding for r in rows])
        ranked = self.gallery.search(vectors, self.k, where=self.where)
        ranked = self.gallery.drop_excluded(vectors, ranked)  # faces marked "not this person" (cluster corrections)
        gate = self.policy.min_quality if self.policy is not None else None
        quality = np.concatenate([r.faces.quality_score if r.faces.quality is not None else np.full(len(r.faces), np.nan)
                                  for r in rows]) if gate is not None else None
        names, scores = open_set_names(ranked, self._threshold, quality, gate)
        start = 0
        for r in rows:
            n = len(r.faces)
            picked = list(names[start : start + n])
            if "liveness" in self.tasks:  # unchecked (the checker failed) counts as not live
                live = r.faces.is_live if r.faces.is_live is not None else np.zeros(n, bool)
                picked = [name if ok else None for name, ok in zip(picked, live)]
            _fill_identity(r.faces, picked, scores[start : start + n], ranked[start : start + n], self._threshold)
            start += n


def _fill_identity(faces: Faces, names: list, scores: list, candidates: list, threshold: float | None) -> None:
    faces.name = _column(names)
    faces.identity_score = np.asarray(scores, np.float32).reshape(len(faces))
    faces.threshold = np.full(len(faces), threshold or 0.0, np.float32)
    faces.candidates = _column(candidates)


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


__all__ = [
    "CHUNK_SIZE", "SELECTIONS", "TASKS", "FaceAnalyzer", "Models", "Plan", "default_workers", "fill_faces", "models",
    "run_chunk", "safe_chunk",
]  # fmt: skip
