"""Many images through the pipeline on every core: a process pool, results back in input order.

dlib releases no GIL-free parallelism of its own on CPU, so processes (each with its models loaded once) are
what uses both cores. Bad inputs come back as per-item errors; they never stop the batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from facelens.errors import FacelensError

_WORKER_PIPELINE = None


@dataclass(frozen=True)
class BatchItem:
    index: int
    source: str
    faces: list[dict[str, Any]]
    error: str | None
    embeddings: list[list[float]] | None = None


def _init_worker(options: dict[str, Any], threads: int | None = None) -> None:
    global _WORKER_PIPELINE
    from facelens.pipeline import FacePipeline

    if threads:  # each worker's onnxruntime sessions get its share of the cores, not all of them
        os.environ.setdefault("FACELENS_EMBED_THREADS", str(threads))

    _WORKER_PIPELINE = FacePipeline(**options)


def _run_one(args: tuple[int, str, bool, bool]) -> BatchItem:
    index, source, embed, largest_only = args
    pipe = _WORKER_PIPELINE
    assert pipe is not None
    try:
        if embed:
            found = pipe.process(source, largest_only=largest_only)
            faces = [f.to_dict(with_embedding=True) for f in found.faces]
        else:
            faces = [d.to_dict() for d in pipe.detect(source)]
            if largest_only:
                faces = faces[:1]
        return BatchItem(index, source, faces, None)
    except FacelensError as exc:
        return BatchItem(index, source, [], str(exc))
    except Exception as exc:  # a decoder or model failure on one input must not end the batch
        return BatchItem(index, source, [], f"{source}: {exc.__class__.__name__}: {exc}")


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def run_batch(
    sources: Sequence[str],
    embed: bool = True,
    workers: int | None = None,
    largest_only: bool = False,
    on_item: Callable[[BatchItem], None] | None = None,
    **pipeline_options: Any,
) -> Iterator[BatchItem]:
    """Yield one :class:`BatchItem` per source, in input order."""
    workers = workers or default_workers()
    jobs = [(i, str(s), embed, largest_only) for i, s in enumerate(sources)]
    if workers <= 1 or len(jobs) <= 1:
        _init_worker(pipeline_options)
        for job in jobs:
            item = _run_one(job)
            if on_item:
                on_item(item)
            yield item
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), initializer=_init_worker,
                             initargs=(pipeline_options, max(1, (os.cpu_count() or 1) // workers))) as pool:
        for item in pool.map(_run_one, jobs, chunksize=max(1, min(16, len(jobs) // (workers * 4) or 1))):
            if on_item:
                on_item(item)
            yield item
