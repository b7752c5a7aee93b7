"""The engine's chunks on Ray Data: one row per chunk, ``map_batches`` with an actor class that loads the models
once per actor and runs :func:`facelens.engine.safe_chunk` — the very function the local pool runs — so a chunk
gives the same :class:`~facelens.result.ImageResult` records on a cluster as on one machine.

What stays on the driver: the listing (the rows), the gallery's searches (identification, per chunk as results
arrive), writes to a folder gallery, and the order of the results. Workers read their own inputs (local paths on a
shared file system, or ``s3://``/``gs://`` objects through pyarrow.fs). A chunk may carry a *sink*, a picklable
callable the actor applies to the chunk's results after computing them: enrolment into PostgreSQL writes each
chunk's faces from the actor that computed them (:mod:`facelens.distributed.enrol`), so on many nodes the writes
run in parallel instead of through the driver.

Faults: Ray restarts an actor that dies and retries its chunk (``max_task_retries``); without a sink the map is
pure, and with one the sink's write is idempotent (a retried chunk adds nothing twice); the driver keeps the first
copy of each chunk it receives. A chunk that kills its actor every time fails alone, as in the local pool: its
images come back with ``error`` set.
"""

from __future__ import annotations

import logging
import pickle
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from facelens.distributed import require_ray
from facelens.distributed.listing import is_remote, read_remote
from facelens.engine import Plan, _picklable
from facelens.io.image import describe_source
from facelens.result import ImageResult

log = logging.getLogger(__name__)

#: Attempts of a chunk whose actor died before it counts as failed (a poison image must not loop forever).
TASK_RETRIES = 3
#: Object store of a local Ray started here: small, since images travel as paths and results are small.
LOCAL_OBJECT_STORE_BYTES = 500 * 2**20


def connect(address: str = "auto", num_cpus: int | None = None,
            object_store_memory: int | None = LOCAL_OBJECT_STORE_BYTES) -> None:
    """Join the Ray cluster at ``address`` (``ray://host:10001`` or ``host:6379``); ``auto``: the running cluster
    ($RAY_ADDRESS or one started on this machine by ``ray start``), else a local Ray on this machine's cores."""
    ray = require_ray()
    if ray.is_initialized():
        return
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address != "auto":
        ray.init(address=address, **quiet)
        return
    try:
        ray.init(address="auto", **quiet)
    except ConnectionError:  # no cluster running: a local one, sized for this machine
        ray.init(num_cpus=num_cpus, object_store_memory=object_store_memory, include_dashboard=False, **quiet)


@dataclass
class RunStats:
    """What a run did, for the summary line."""

    images: int = 0
    faces: int = 0
    failed: int = 0
    seconds: float = 0.0
    retried_chunks: int = 0
    skipped: int = 0  # images already done (a re-run's), never dispatched

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "faces": self.faces, "failed": self.failed, "skipped": self.skipped,
                "seconds": round(self.seconds, 3), "images_per_second": round(self.images_per_second, 3)}

    def line(self) -> str:
        skipped = f"; {self.skipped} already done, skipped" if self.skipped else ""
        return (f"{self.images} images, {self.faces} faces, {self.failed} failed in {self.seconds:.1f} s "
                f"({self.images_per_second:.2f} images/s){skipped}")


def run_sources(plan: Plan, sources: Sequence[Any]) -> list[ImageResult]:
    """One chunk in this process: object-store inputs are read here, then the local engine's chunk function runs;
    results carry the input's own name (the URI, not ``<N bytes>``)."""
    from facelens.engine import _run_chunk_in_worker

    labels = [describe_source(s) for s in sources]
    loaded: list[Any] = []
    failures: dict[int, ImageResult] = {}
    for i, source in enumerate(sources):
        if is_remote(source):
            try:
                loaded.append(read_remote(source))
            except Exception as exc:  # noqa: BLE001  (one unreadable object fails alone)
                failures[i] = ImageResult(labels[i], error=str(exc))
                loaded.append(b"")
        else:
            loaded.append(source)
    results = _run_chunk_in_worker(plan, loaded)
    out = []
    for i, result in enumerate(results):
        if i in failures:
            out.append(failures[i])
        elif result.source != labels[i]:
            out.append(replace(result, source=labels[i],
                               error=result.error.replace(result.source, labels[i]) if result.error else None))
        else:
            out.append(result)
    return out


class ChunkActor:
    """A Ray Data actor: runs whole chunks; the plan's models load on its first chunk and stay loaded (the plan
    travels with each chunk, a few hundred bytes, so the actor has no constructor arguments to lose on a restart)."""

    def __init__(self) -> None:
        self.started = False

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        done, written = [], []
        for payload, job in zip(batch["payload"], batch["job"]):
            plan, sources = pickle.loads(payload)
            sink, tags = pickle.loads(job)
            if not self.started:
                from facelens.engine import _init_worker

                _init_worker(plan.threads or 1)  # its share of cores for ONNX/OpenCV, fresh model caches
                self.started = True
            results = run_sources(plan, sources)
            written.append(pickle.dumps(sink(results, tags) if sink is not None else None))
            done.append(pickle.dumps(results))
        return {"chunk": np.asarray(batch["chunk"]), "results": np.array(done, dtype=object),
                "written": np.array(written, dtype=object)}


@dataclass
class RayRunner:
    """Runs :class:`~facelens.engine.FaceAnalyzer` chunks on Ray Data (``FaceAnalyzer(runner=RayRunner(...))``).

    ``workers``: actors (default: one per CPU of the cluster divided by ``cpus_per_worker``);
    ``preserve_order``: results in input order (the engine's contract, and what enrolment needs) — off, they come
    as chunks finish; ``worker_writes``: enrolment into a PostgreSQL gallery is written by the actors (off: by the
    driver, as a folder gallery always is); ``actor_class``: the class run per actor (:class:`ChunkActor`; tests
    subclass it to kill an actor mid-run). ``stats`` holds the last run's figures.
    """

    address: str = "auto"
    workers: int | None = None
    cpus_per_worker: int = 1
    object_store_memory: int | None = LOCAL_OBJECT_STORE_BYTES
    preserve_order: bool = True
    task_retries: int = TASK_RETRIES
    worker_writes: bool = True
    actor_class: type = ChunkActor
    stats: RunStats = field(default_factory=RunStats, init=False)

    def start(self) -> None:
        from facelens.engine import default_workers

        connect(self.address, num_cpus=self.workers * self.cpus_per_worker if self.workers else default_workers(),
                object_store_memory=self.object_store_memory)

    def actors(self) -> int:
        ray = require_ray()
        self.start()
        if self.workers:
            return self.workers
        return max(1, int(ray.cluster_resources().get("CPU", 1)) // self.cpus_per_worker)

    def writes_gallery(self, store: Any) -> bool:
        """Whether the actors write enrolment into ``store`` themselves (a gallery every node reaches: PostgreSQL)."""
        return self.worker_writes and hasattr(store, "add_faces_once")

    def chunks(self, plan: Plan, batches: Iterable[Sequence[Any]]) -> Iterator[list[ImageResult]]:
        """Each batch's results (one list per batch, in input order unless ``preserve_order`` is off)."""
        for _, results, _ in self.chunks_with_sink(plan, batches):
            yield results

    def chunks_with_sink(self, plan: Plan, batches: Iterable[Sequence[Any]], sink: Any = None,
                         tags: Sequence[Any] | None = None) -> Iterator[tuple[int, list[ImageResult], Any]]:
        """(batch index, results, what ``sink(results, tags[index])`` returned in the actor) per batch; the sink's
        answer is None for a batch no actor could finish (its images failed)."""
        ray = require_ray()
        started = time.perf_counter()
        actors = self.actors()
        self.stats = RunStats()
        plan = replace(plan, threads=self.cpus_per_worker)
        batches = [[_picklable(s) for s in b] for b in batches]  # the listing: serial, on the driver
        if not batches:
            return
        rows = [{"chunk": i, "payload": pickle.dumps((plan, b)),
                 "job": pickle.dumps((sink, tags[i] if tags is not None else None))} for i, b in enumerate(batches)]
        with warnings.catch_warnings():  # Ray 2.60 has no named parameter for the retries yet (pinned < 2.64)
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
                self.actor_class, batch_size=1,
                # one chunk per actor at a time: an actor that dies takes only its own chunk with it, never a queued one
                compute=ray.data.ActorPoolStrategy(size=min(actors, len(rows)), max_tasks_in_flight_per_actor=1),
                num_cpus=self.cpus_per_worker,
                max_task_retries=self.task_retries, max_restarts=-1,
            )
        context = dataset.context  # this dataset's own copy of Ray Data's settings
        context.max_errored_blocks = -1  # a chunk that fails every retry fails its images, not the run
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # the CLI draws its own bar from the results
        seen: set[int] = set()
        waiting: dict[int, list[ImageResult]] = {}
        following = 0
        for row in dataset.iter_rows():
            index = int(row["chunk"])
            if index in seen:  # a retried chunk delivered twice: keep the first
                continue
            seen.add(index)
            results = pickle.loads(row["results"]), pickle.loads(row["written"])
            if not self.preserve_order:
                yield index, self._count(results[0], started), results[1]
                continue
            waiting[index] = results
            while following in waiting:
                results = waiting.pop(following)
                yield following, self._count(results[0], started), results[1]
                following += 1
        for index, batch in enumerate(batches):  # chunks no actor could finish: their images failed
            if index not in seen:
                log.warning("chunk %d (%d images) failed on every attempt", index, len(batch))
                waiting[index] = [ImageResult(describe_source(s), error=f"{describe_source(s)}: the Ray worker "
                                              f"died on every attempt ({self.task_retries + 1})") for s in batch], None
        for index in sorted(waiting):
            yield index, self._count(waiting[index][0], started), waiting[index][1]

    def _count(self, results: list[ImageResult], started: float) -> list[ImageResult]:
        self.stats.images += len(results)
        self.stats.faces += sum(len(r.faces) for r in results)
        self.stats.failed += sum(r.error is not None for r in results)
        self.stats.seconds = time.perf_counter() - started
        return results


__all__ = ["ChunkActor", "RayRunner", "RunStats", "connect", "run_sources"]
